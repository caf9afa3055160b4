"""Composite losses: per-teacher weighting against numpy, adapters, config errors, a short fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.distill.composite_fit import fit_composite
from mtkd.distill.composition import bind_loss, feature_shapes
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit, init_students, unstack
from mtkd.distill.loss_config import LossConfig
from mtkd.distill.objective import distillation_loss
from mtkd.distill.teacher_features import check_teacher_layers, pool_feature_shapes, pool_features
from mtkd.errors import ConfigError, UnknownNameError
from mtkd.fusion import make_strategy
from mtkd.losses import rkd_distance
from mtkd.models import ModelSpec
from mtkd.teachers import load_pool


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_ce(z, y):
    return -np.log(softmax(z)[np.arange(len(y)), y])


def np_kl(p, q):
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


def np_kd(s, t, temperature):
    """(B,) T^2 KL(p_t^T || p_s^T), written from docs/methods.md, Distillation objective."""
    return temperature**2 * np_kl(softmax(t / temperature), softmax(s / temperature))


def np_dkd(s, t, y, alpha, beta, temperature):
    """(B,) alpha TCKD + beta NCKD, written from docs/methods.md, Distillation losses, example by example."""
    out = []
    for b in range(len(y)):
        ps, pt = softmax(s[b] / temperature), softmax(t[b] / temperature)
        bs, bt = np.array([ps[y[b]], 1 - ps[y[b]]]), np.array([pt[y[b]], 1 - pt[y[b]]])
        others = [c for c in range(s.shape[1]) if c != y[b]]
        hs, ht = softmax(s[b, others] / temperature), softmax(t[b, others] / temperature)
        out.append(temperature**2 * (alpha * np_kl(bt, bs) + beta * np_kl(ht, hs)))
    return np.array(out)


def problem(num_teachers=3, batch=6, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    student = (rng.normal(size=(batch, classes)) * 2).astype(np.float64)
    teachers = (rng.normal(size=(num_teachers, batch, classes)) * 2).astype(np.float64)
    labels = rng.integers(0, classes, size=batch)
    return student, teachers, labels


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def call(loss, student, labels, teachers, weights, features=None, teacher_features=None, adapters=None):
    return loss(student, features or {}, labels, teachers, teacher_features or {}, weights, adapters or {}, 1.0)


def test_ce_plus_kd_with_one_teacher_is_the_distillation_loss(x64):
    student, teachers, labels = problem(num_teachers=1)
    alpha, temperature = 0.3, 4.0
    expected = np.mean(alpha * np_ce(student, labels) + (1 - alpha) * np_kd(student, teachers[0], temperature))
    target = softmax(teachers[0] / temperature)
    reference = distillation_loss(student, labels, target, np.ones(6, bool), alpha, temperature)
    for fused in (False, True):
        config = LossConfig.from_dicts([{"loss": "ce", "weight": alpha},
                                        {"loss": "kd", "weight": 1 - alpha, "temperature": temperature,
                                         "fused": fused}])
        value, terms = call(bind_loss(config, ["t"], {}), student, labels, teachers, np.ones((6, 1)))
        np.testing.assert_allclose(value, expected, rtol=1e-10)
        np.testing.assert_allclose(value, reference, rtol=1e-10)
        np.testing.assert_allclose(terms[0], np_ce(student, labels).mean(), rtol=1e-10)


def test_per_teacher_terms_are_weighted_per_example(x64):
    student, teachers, labels = problem()
    weights = np.random.default_rng(1).uniform(0, 2, size=(6, 3))
    weights[2] = 0.0        # no teacher on example 2
    weights[4, 1] = 0.0     # teacher 1 skipped on example 4
    config = LossConfig.from_dicts([
        {"loss": "ce", "weight": 0.5},
        {"loss": "kd", "weight": 2.0, "temperature": 3.0},
        {"loss": "dkd", "weight": 1.5, "alpha": 1.0, "beta": 8.0, "temperature": 4.0},
        {"loss": "kd", "weight": 1.0, "temperature": 2.0, "fused": True},
        {"loss": "kd", "weight": 1.0, "temperature": 2.0, "teachers": ["c"]},
    ])
    value, terms = call(bind_loss(config, ["a", "b", "c"], {}), student, labels, teachers, weights)

    def mixed(per_teacher):  # per_teacher (K, B): sum_k w L / sum_k w per example, 0 without teachers
        out = np.zeros(6)
        for b in range(6):
            if weights[b].sum() > 0:
                out[b] = sum(weights[b, k] * per_teacher[k, b] for k in range(3)) / weights[b].sum()
        return out.mean()

    kd = mixed(np.stack([np_kd(student, teachers[k], 3.0) for k in range(3)]))
    dkd = mixed(np.stack([np_dkd(student, teachers[k], labels, 1.0, 8.0, 4.0) for k in range(3)]))
    fused = []
    for b in range(6):
        if weights[b].sum() == 0:
            fused.append(0.0)
            continue
        q = sum(weights[b, k] * softmax(teachers[k, b] / 2.0) for k in range(3)) / weights[b].sum()
        fused.append(4.0 * np_kl(q, softmax(student[b] / 2.0)))
    only_c = np.mean(np.where(weights[:, 2] > 0, np_kd(student, teachers[2], 2.0), 0.0))
    expected_terms = [np_ce(student, labels).mean(), kd, dkd, np.mean(fused), only_c]
    np.testing.assert_allclose(terms, expected_terms, rtol=1e-9)
    np.testing.assert_allclose(value, np.dot([0.5, 2.0, 1.5, 1.0, 1.0], expected_terms), rtol=1e-9)


def test_relational_terms_use_the_batch_mean_weight_of_each_teacher(x64):
    rng = np.random.default_rng(2)
    student = rng.normal(size=(5, 4))
    teacher_embeddings = (rng.normal(size=(5, 3)), rng.normal(size=(5, 7)))
    weights = np.array([[1.0, 0.0], [1.0, 2.0], [0.0, 2.0], [1.0, 0.0], [1.0, 1.0]])
    loss = bind_loss([{"loss": "rkd_distance"}], ["a", "b"], {"embedding": (4,)},
                     [{"embedding": (3,)}, {"embedding": (7,)}])
    value, _ = call(loss, np.zeros((5, 2)), np.zeros(5, int), np.zeros((2, 5, 2)), weights,
                    {"embedding": student}, {"embedding": teacher_embeddings})
    mean_w = weights.mean(axis=0)
    per_teacher = [float(rkd_distance(student, t)) for t in teacher_embeddings]
    np.testing.assert_allclose(value, np.dot(mean_w, per_teacher) / mean_w.sum(), rtol=1e-10)


def test_all_zero_selection_is_the_ce_only_loss_and_leaves_adapters_alone():
    student, teachers, labels = problem(num_teachers=2, seed=3)
    student, teachers = student.astype(np.float32), teachers.astype(np.float32)
    rng = np.random.default_rng(3)
    features = {"hidden": jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)}
    teacher_features = {"embedding": (jnp.asarray(rng.normal(size=(6, 3)), jnp.float32),
                                      jnp.asarray(rng.normal(size=(6, 5)), jnp.float32))}
    config = LossConfig.from_dicts([
        {"loss": "ce", "weight": 0.7},
        {"loss": "kd", "weight": 0.3, "temperature": 4.0},
        {"loss": "kd", "weight": 0.3, "temperature": 4.0, "fused": True},
        {"loss": "hint", "weight": 2.0, "student_layer": "hidden", "teacher_layer": "embedding"},
        {"loss": "rkd_angle", "weight": 5.0, "student_layer": "hidden"},
    ])
    loss = bind_loss(config, ["a", "b"], {"hidden": (4,)}, [{"embedding": (3,)}, {"embedding": (5,)}])
    adapters = loss.init_adapters(jax.random.key(0))

    def objective(adapters, logits, weights):
        return loss(logits, features, labels, teachers, teacher_features, weights, adapters, 1.0)[0]

    zeros = jnp.zeros((6, 2))
    value = objective(adapters, student, zeros)
    np.testing.assert_allclose(value, 0.7 * np_ce(student.astype(np.float64), labels).mean(), rtol=1e-6)
    adapter_grads, logit_grads = jax.grad(objective, argnums=(0, 1))(adapters, jnp.asarray(student), zeros)
    assert all(np.all(np.asarray(g) == 0.0) for g in jax.tree.leaves(adapter_grads))
    ce_grads = jax.grad(lambda z: 0.7 * jnp.mean(-jax.nn.log_softmax(z)[jnp.arange(6), labels]))(jnp.asarray(student))
    np.testing.assert_allclose(logit_grads, ce_grads, rtol=1e-5, atol=1e-7)
    # With teachers selected, the adapters do learn.
    adapter_grads = jax.grad(objective)(adapters, student, jnp.ones((6, 2)))
    assert all(np.any(np.asarray(g) != 0.0) for g in jax.tree.leaves(adapter_grads))


def test_hint_adapters_map_to_each_teachers_shape():
    student_shapes = {"hidden_1": (16,), "conv_0": (40, 8)}
    teacher_shapes = [{"embedding": (32,), "conv_0": (40, 32)}, {"embedding": (7,), "block_0": (40, 4)}]
    config = [{"loss": "hint", "student_layer": "hidden_1", "teacher_layer": "embedding"},
              {"loss": "hint", "student_layer": "conv_0", "teacher_layer": {"a": "conv_0", "b": "block_0"}},
              {"loss": "attention_transfer", "student_layer": "conv_0", "teacher_layer": "conv_0",
               "teachers": ["a"]}]
    loss = bind_loss(config, ["a", "b"], student_shapes, teacher_shapes)
    adapters = loss.init_adapters(jax.random.key(1))
    shapes = jax.tree.map(lambda a: a.shape, adapters)
    assert shapes == {"term_0": {"a": {"kernel": (16, 32), "bias": (32,)}, "b": {"kernel": (16, 7), "bias": (7,)}},
                      "term_1": {"a": {"kernel": (8, 32), "bias": (32,)}, "b": {"kernel": (8, 4), "bias": (4,)}}}
    assert loss.feature_layers() == {"embedding": (0, 1), "conv_0": (0,), "block_0": (1,)}
    # Applied to a batch, every adapted feature has its teacher's shape, so the hints are finite.
    rng = np.random.default_rng(0)
    features = {"hidden_1": rng.normal(size=(3, 16)), "conv_0": rng.normal(size=(3, 40, 8))}
    teacher_features = {"embedding": (rng.normal(size=(3, 32)), rng.normal(size=(3, 7))),
                        "conv_0": (rng.normal(size=(3, 40, 32)), None), "block_0": (None, rng.normal(size=(3, 40, 4)))}
    _, terms = loss(np.zeros((3, 2)), features, np.zeros(3, int), np.zeros((2, 3, 2)), teacher_features,
                    np.ones((3, 2)), adapters, 1.0)
    assert terms.shape == (3,) and np.all(np.isfinite(terms)) and np.all(terms > 0)


@pytest.mark.parametrize("term,message", [
    ({"loss": "hint", "student_layer": "conv_1", "teacher_layer": "conv_0"},
     r"student layer 'conv_1' \(B, 20, 8\) -> teacher 'a' layer 'conv_0' \(B, 40, 32\): spatial sizes differ"),
    ({"loss": "hint", "student_layer": "hidden", "teacher_layer": "conv_0"},
     r"'hidden' \(B, 16\) -> teacher 'a' layer 'conv_0' \(B, 40, 32\): cannot map"),
    ({"loss": "hint", "student_layer": "conv_0", "teacher_layer": "conv_0", "adapter": "identity"},
     r"adapter = 'identity'"),
    ({"loss": "attention_transfer", "student_layer": "conv_1", "teacher_layer": "conv_0"},
     r"'conv_1' \(B, 20, 8\).*same spatial size"),
    ({"loss": "hint", "student_layer": "conv_9", "teacher_layer": "conv_0"},
     r"student model 'cnn1d' has no feature 'conv_9'; it has conv_0, conv_1, hidden"),
    ({"loss": "hint", "student_layer": "conv_0", "teacher_layer": "block_0"},
     r"teacher 'a' has no feature 'block_0'; it has conv_0"),
    ({"loss": "kd", "teachers": ["z"]}, r"names teacher\(s\) z not in the pool; teachers: a"),
])
def test_shape_and_layer_errors_name_layers_and_shapes(term, message):
    student_shapes = {"conv_0": (40, 8), "conv_1": (20, 8), "hidden": (16,)}
    with pytest.raises(ConfigError, match=message):
        bind_loss([term], ["a"], student_shapes, [{"conv_0": (40, 32)}], student_name="cnn1d")


@pytest.mark.parametrize("terms,error,message", [
    ([{"loss": "ce", "weight": -1.0}], ConfigError, "weight must be a finite number >= 0"),
    ([{"loss": "kd", "temperature": 0}], ConfigError, "temperature must be a finite number > 0"),
    ([{"loss": "dkd", "temperature": -2.0}], ConfigError, "temperature must be"),
    ([{"loss": "dkd", "beta": -1}], ConfigError, "beta must be"),
    ([{"loss": "kd", "temprature": 4}], ConfigError, "no option\\(s\\) temprature; it accepts fused, teachers"),
    ([{"loss": "hint", "student_layer": "a"}], ConfigError, "needs teacher_layer"),
    ([{"loss": "ce", "teachers": ["a"]}], ConfigError, "uses no teacher"),
    ([{"loss": "kd", "warmup": 2}], ConfigError, "warmup"),
    ([{"loss": "mystery"}], UnknownNameError, "unknown loss term 'mystery'"),
    ([], ConfigError, "lists no loss terms"),
    ([{"weight": 1.0}], ConfigError, "`loss` key"),
])
def test_config_is_validated_on_construction(terms, error, message):
    with pytest.raises(error, match=message):
        LossConfig.from_dicts(terms)


def test_config_round_trips_through_dicts():
    raw = [{"loss": "ce", "weight": 1.0},
           {"loss": "dkd", "weight": 1.0, "alpha": 1, "beta": 8, "temperature": 4, "warmup": 0.1},
           {"loss": "hint", "weight": 0.5, "student_layer": "hidden_1", "teacher_layer": {"a": "embedding"}}]
    config = LossConfig.from_dicts(raw)
    assert config.terms[2].teachers == ("a",)  # a teacher_layer table selects its teachers
    assert LossConfig.from_dicts(config.to_dicts()) == config


def test_pool_features_are_read_per_teacher_and_bad_layers_name_the_teacher(mnist1d, tiny_pool_dir):
    pool = load_pool(tiny_pool_dir, mnist1d)
    graphdef, params = init_students(ModelSpec("cnn1d", {"channels": [4]}), (40,), 10, [0])
    student = feature_shapes(graphdef, unstack(params, 0), (40,))
    loss = bind_loss([{"loss": "attention_transfer", "student_layer": "conv_0", "teacher_layer": {"cnn": "conv_0"}},
                      {"loss": "hint", "student_layer": "embedding", "teacher_layer": "embedding"}],
                     pool.names, student, pool_feature_shapes(pool, mnist1d))
    features = pool_features(pool, mnist1d, loss)
    assert [None if f is None else f.shape for f in features["train"]["conv_0"]] == [None, None, (3600, 40, 8)]
    assert [f.shape for f in features["val"]["embedding"]] == [(400, 32), (400, 32), (400, 160)]
    # bind_loss given the teachers' real shapes would already refuse; the pool check names the architecture.
    bad = bind_loss([{"loss": "hint", "student_layer": "embedding", "teacher_layer": "conv_0"}], pool.names, student,
                    [{"conv_0": (160,)}] * 3)
    with pytest.raises(ConfigError, match=r"teacher 'mlp_a' \(mlp\) has no feature 'conv_0'; it has embedding, hidden_0"):
        check_teacher_layers(bad, pool, mnist1d)


def _splits(mnist1d, teacher_logits, n=1024):
    train = SplitArrays(jnp.asarray(mnist1d.x_train[:n]), jnp.asarray(mnist1d.y_train[:n]), teacher_logits[:, :n])
    val = SplitArrays(jnp.asarray(mnist1d.x_val), jnp.asarray(mnist1d.y_val))
    test = SplitArrays(jnp.asarray(mnist1d.x_test), jnp.asarray(mnist1d.y_test))
    return train, val, test


def test_fit_composite_with_fused_kd_reproduces_fit(mnist1d, tiny_pool_dir):
    """ce (alpha) + fused kd (1 - alpha) is `fit`'s loss: same seeds, same batches, same numbers."""
    pool = load_pool(tiny_pool_dir, mnist1d)
    train, val, test = _splits(mnist1d, pool.logits(mnist1d)["train"])
    spec, config = ModelSpec("mlp", {"widths": [16]}), TrainConfig(epochs=2, batch_size=128, alpha=0.3, temperature=4.0)
    uniform = make_strategy("uniform", pool.strategy_context())
    loss = [{"loss": "ce", "weight": 0.3}, {"loss": "kd", "weight": 0.7, "temperature": 4.0, "fused": True}]
    composite = fit_composite(spec, (40,), 10, train, val, uniform, loss, config, [0, 1], test=test,
                              teacher_names=pool.names)
    reference = fit(spec, (40,), 10, train, val, uniform, config, [0, 1], test=test)
    for ours, theirs in zip(composite.history, reference.history):
        np.testing.assert_allclose(ours["train_loss"], theirs["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(ours["val_accuracy"], theirs["val_accuracy"], atol=1e-6)
    np.testing.assert_allclose(composite.test_accuracy, reference.test_accuracy, atol=1e-6)


def test_fit_composite_with_hints_returns_a_sane_fit_result(mnist1d, tiny_pool_dir, tmp_path):
    pool = load_pool(tiny_pool_dir, mnist1d)
    spec = ModelSpec("mlp", {"widths": [32, 16]})
    graphdef, params = init_students(spec, (40,), 10, [0])
    loss = bind_loss([{"loss": "ce"}, {"loss": "kd", "weight": 0.5, "temperature": 4.0},
                      {"loss": "hint", "weight": 0.5, "student_layer": "hidden_1", "teacher_layer": "embedding"}],
                     pool.names, feature_shapes(graphdef, unstack(params, 0), (40,)), pool_feature_shapes(pool, mnist1d))
    features = pool_features(pool, mnist1d, loss)["train"]
    train, val, test = _splits(mnist1d, pool.logits(mnist1d)["train"], n=3600)
    result = fit_composite(spec, (40,), 10, train, val, make_strategy("uniform", pool.strategy_context()),
                           loss.config, TrainConfig(epochs=3, batch_size=128), [0, 1], test=test,
                           teacher_features=features, teacher_names=pool.names,
                           metrics_path=tmp_path / "metrics.jsonl")
    assert result.seeds == [0, 1] and len(result.history) == 3
    history_val = np.array([record["val_accuracy"] for record in result.history])
    np.testing.assert_allclose(result.val_accuracy, history_val.max(axis=0))
    assert result.best_epoch == (history_val.argmax(axis=0) + 1).tolist()
    assert all(0.2 < a <= 1.0 for a in result.test_accuracy)  # above chance (0.1) after 3 epochs
    last = result.history[-1]
    assert np.array(last["terms"]).shape == (2, 3) and np.all(np.array(last["terms"]) > 0)
    assert np.allclose(last["selection"], 1.0)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
    # The result holds the student alone (the adapters are dropped), stacked over seeds.
    assert jax.tree.structure(result.params) == jax.tree.structure(init_students(spec, (40,), 10, [0, 1])[1])
