"""CA-MKD's feature term: values against numpy, gradient through its weights, the heads it reads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.distill.composition import bind_loss, feature_shapes
from mtkd.distill.composite_fit import fit_composite
from mtkd.distill.fit import SplitArrays, init_students, unstack
from mtkd.distill.teacher_features import pool_feature_shapes, pool_features, pool_heads
from mtkd.distill.terms import ca_mkd_feature_values
from mtkd.errors import ConfigError
from mtkd.distill.loss_config import LossTerm
from mtkd.fusion import make_strategy
from mtkd.distill.config import TrainConfig
from mtkd.models import ModelSpec
from mtkd.teachers import load_pool

RNG = np.random.default_rng(2)
B, C = 6, 5
DIMS = (4, 3, 4)


def arrays():
    students = [RNG.normal(size=(B, d)) for d in DIMS]
    teachers = [RNG.normal(size=(B, d)) for d in DIMS]
    heads = [{"kernel": RNG.normal(size=(d, C)), "bias": RNG.normal(size=C)} for d in DIMS]
    labels = RNG.integers(0, C, B)
    return students, teachers, heads, labels


def numpy_values(students, teachers, heads, labels):
    k = len(students)
    ce = np.zeros((B, k))
    for j, (s, h) in enumerate(zip(students, heads)):
        z = s @ h["kernel"] + h["bias"]
        z = z - z.max(axis=1, keepdims=True)
        ce[:, j] = -(z[np.arange(B), labels] - np.log(np.exp(z).sum(axis=1)))
    e = np.exp(ce - ce.max(axis=1, keepdims=True))
    c = (1 - e / e.sum(axis=1, keepdims=True)) / (k - 1)
    mse = np.stack([np.mean((s - t) ** 2, axis=1) for s, t in zip(students, teachers)], axis=1)
    return c * mse


def test_values_against_numpy():
    students, teachers, heads, labels = arrays()
    got = ca_mkd_feature_values(
        [jnp.asarray(s, jnp.float32) for s in students], [jnp.asarray(t, jnp.float32) for t in teachers],
        jnp.asarray(labels), {}, jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), heads))
    np.testing.assert_allclose(np.asarray(got), numpy_values(students, teachers, heads, labels), rtol=1e-5)


def test_the_weights_carry_gradient():
    """The derivative with respect to an adapted student feature matches central differences of
    the numpy formula, in which the head-based weights move with the feature."""
    students, teachers, heads, labels = arrays()
    with jax.enable_x64(True):
        def total(first):
            values = ca_mkd_feature_values([first] + [jnp.asarray(s) for s in students[1:]],
                                           [jnp.asarray(t) for t in teachers], jnp.asarray(labels), {},
                                           jax.tree.map(jnp.asarray, heads))
            return values.sum()

        grad = np.asarray(jax.grad(total)(jnp.asarray(students[0])))
    eps = 1e-6
    for i, j in [(0, 0), (3, 2), (5, 1)]:
        plus, minus = [s.copy() for s in students], [s.copy() for s in students]
        plus[0][i, j] += eps
        minus[0][i, j] -= eps
        numeric = (numpy_values(plus, teachers, heads, labels).sum()
                   - numpy_values(minus, teachers, heads, labels).sum()) / (2 * eps)
        assert grad[i, j] == pytest.approx(numeric, rel=1e-5)
    # ... and the weights' share of it is not zero: holding them fixed changes the gradient.
    fixed = 2 * (students[0] - teachers[0]) / DIMS[0] * numpy_values(students, teachers, heads, labels)[:, :1] \
        / np.mean((students[0] - teachers[0]) ** 2, axis=1, keepdims=True)
    assert not np.allclose(grad, fixed, rtol=1e-3)


def test_teacher_layer_must_be_the_heads_input():
    with pytest.raises(ConfigError, match="teacher_layer must be 'embedding'"):
        LossTerm("ca_mkd_feature", options={"teacher_layer": "conv_0"})


def test_trains_with_the_pools_heads(mnist1d, tiny_pool_dir):
    pool = load_pool(tiny_pool_dir, mnist1d)
    spec = ModelSpec("mlp", {"widths": [16]})
    graphdef, params = init_students(spec, (40,), 10, [0])
    loss = bind_loss([{"loss": "ce"}, {"loss": "ca_mkd_feature", "weight": 50.0}], pool.names,
                     feature_shapes(graphdef, unstack(params, 0), (40,)), pool_feature_shapes(pool, mnist1d))
    heads = pool_heads(pool, loss)
    # The heads are each model's own `head` layer: applied to its embedding they give its logits.
    embedding = pool.features(mnist1d, "embedding")["val"]
    logits = pool.logits(mnist1d)["val"]
    for k, head in enumerate(heads):
        np.testing.assert_allclose(np.asarray(embedding[k] @ head["kernel"] + head["bias"]), np.asarray(logits[k]),
                                   rtol=1e-4, atol=1e-4)
    n = 1024
    train = SplitArrays(jnp.asarray(mnist1d.x_train[:n]), jnp.asarray(mnist1d.y_train[:n]),
                        pool.logits(mnist1d)["train"][:, :n])
    features = jax.tree.map(lambda f: f[:n], pool_features(pool, mnist1d, loss)["train"])
    val = SplitArrays(jnp.asarray(mnist1d.x_val), jnp.asarray(mnist1d.y_val))
    result = fit_composite(spec, (40,), 10, train, val, make_strategy("uniform", pool.strategy_context()),
                           loss.config, TrainConfig(epochs=2, batch_size=128), [0], teacher_features=features,
                           teacher_names=pool.names, teacher_heads=heads)
    terms = np.asarray(result.history[-1]["terms"])[0]
    assert np.all(np.isfinite(terms)) and terms[1] > 0
    with pytest.raises(ConfigError, match="teacher_heads lacks"):
        fit_composite(spec, (40,), 10, train, val, make_strategy("uniform", pool.strategy_context()), loss.config,
                      TrainConfig(epochs=1), [0], teacher_features=features, teacher_names=pool.names)
