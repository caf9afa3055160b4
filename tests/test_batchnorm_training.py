"""Training models with BatchNorm (the CIFAR zoo): the trainer carries the running statistics
beside the parameters, per seed; training normalises by the batch, evaluation by the running
statistics; the optimiser never moves the statistics. Checked on a tiny Linear-BatchNorm-Linear
network against NumPy, then on resnet8 end to end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.distill.steps import StudentState, make_target_step
from mtkd.errors import ConfigError
from mtkd.fusion.strategies import StrategyContext, make_strategy
from mtkd.models import ModelSpec
from mtkd.models.apply import apply_model, predict, train_forward
from mtkd.models.architectures import parameters_only_model
from mtkd.models.state import has_running_stats, split_trainable, trainable

IN, HIDDEN, CLASSES, BATCH = 5, 4, 3, 8


class TinyBatchNormNet(nnx.Module):
    """x -> Linear -> BatchNorm (PyTorch's momentum and epsilon) -> Linear."""

    def __init__(self, input_shape, num_classes, *, rngs):
        self.first = nnx.Linear(input_shape[0], HIDDEN, rngs=rngs)
        self.norm = nnx.BatchNorm(HIDDEN, momentum=0.9, epsilon=1e-5, rngs=rngs)
        self.last = nnx.Linear(HIDDEN, num_classes, rngs=rngs)

    def __call__(self, x):
        h = self.norm(self.first(x))
        return self.last(h), {"hidden": h}


def _numpy(state) -> dict:
    flat = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        keys = tuple(str(p.key) for p in path if isinstance(p, jax.tree_util.DictKey))
        flat[keys] = np.asarray(leaf, np.float64)
    return flat


def _tiny_state(seed=0):
    model = TinyBatchNormNet((IN,), CLASSES, rngs=nnx.Rngs(seed))
    graphdef, state = nnx.split(model)
    # Running statistics away from their (0, 1) start, so that using them or not shows.
    params, stats = split_trainable(state)
    stats = jax.tree.map(lambda s: s + 0.5, stats)
    return graphdef, nnx.merge_state(params, stats)


def _reference_forward(p, x, use_batch: bool):
    """The network in NumPy: (logits, new running mean, new running var)."""
    h = x @ p[("first", "kernel")] + p[("first", "bias")]
    mean, var = h.mean(axis=0), h.var(axis=0)  # biased, as flax normalises and tracks
    use_mean, use_var = (mean, var) if use_batch else (p[("norm", "mean")], p[("norm", "var")])
    normed = (h - use_mean) / np.sqrt(use_var + 1e-5) * p[("norm", "scale")] + p[("norm", "bias")]
    logits = normed @ p[("last", "kernel")] + p[("last", "bias")]
    return logits, 0.9 * p[("norm", "mean")] + 0.1 * mean, 0.9 * p[("norm", "var")] + 0.1 * var


def test_training_mode_uses_batch_statistics_and_updates_the_running_ones():
    graphdef, state = _tiny_state()
    x = np.random.default_rng(0).normal(size=(BATCH, IN)).astype(np.float32) * 2 + 1
    p = _numpy(state)
    (logits, _), updated = train_forward(graphdef, state, jnp.asarray(x))
    want, mean, var = _reference_forward(p, x, use_batch=True)
    np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-5, atol=1e-5)
    u = _numpy(updated)
    np.testing.assert_allclose(u[("norm", "mean")], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(u[("norm", "var")], var, rtol=1e-5, atol=1e-6)
    # The caller's state is not written into.
    np.testing.assert_array_equal(_numpy(state)[("norm", "mean")], p[("norm", "mean")])
    # Inference reads the running statistics, and changes nothing.
    eval_logits, _ = apply_model(graphdef, state, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(eval_logits), _reference_forward(p, x, use_batch=False)[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(predict(graphdef, state, jnp.asarray(x), 3)), np.asarray(eval_logits),
                               rtol=1e-6, atol=1e-6)


def test_one_step_moves_the_parameters_by_sgd_and_the_statistics_by_the_batch_only():
    """SGD with weight decay on every parameter; the running statistics get the batch's update
    and no decay or gradient (the optimiser state covers the parameters alone)."""
    graphdef, state = _tiny_state()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(BATCH, IN)).astype(np.float32)
    y = rng.integers(0, CLASSES, BATCH).astype(np.int32)
    optimizer = optax.chain(optax.add_decayed_weights(0.1), optax.sgd(0.5))
    student = StudentState(state, optimizer.init(trainable(state)))
    step = make_target_step(graphdef, optimizer, alpha=1.0, temperature=1.0)
    target = jnp.zeros((BATCH, CLASSES))
    new, _ = jax.jit(step)(student, jnp.asarray(x), jnp.asarray(y), target, jnp.zeros(BATCH, bool))

    params, stats = split_trainable(state)

    def loss(params):  # cross-entropy in training mode, from the same state
        (logits, _), _ = train_forward(graphdef, nnx.merge_state(params, stats), jnp.asarray(x))
        return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(y)).mean()

    grads = _numpy(jax.grad(loss)(params))
    before, after = _numpy(params), _numpy(split_trainable(new.params)[0])
    for key in before:
        np.testing.assert_allclose(after[key], before[key] - 0.5 * (grads[key] + 0.1 * before[key]), rtol=1e-5, atol=1e-6)
    _, mean, var = _reference_forward(_numpy(state), x, use_batch=True)
    got = _numpy(split_trainable(new.params)[1])
    np.testing.assert_allclose(got[("norm", "mean")], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[("norm", "var")], var, rtol=1e-5, atol=1e-6)


def _images(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n).astype(np.int32)
    x = rng.normal(size=(n, 8, 8, 3)).astype(np.float32)
    x[np.arange(n), :3, :3, 0] += 2.0 * y[:, None, None]  # a learnable signal
    return SplitArrays(jnp.asarray(x), jnp.asarray(y))


@pytest.fixture(scope="module")
def resnet8_runs():
    """resnet8 for 2 epochs: seeds 0 and 1 together, then seed 1 alone, then seeds 0 and 1 again
    with augmentation and a learning-rate milestone."""
    train, val = _images(64, 0), _images(32, 1)
    strategy = make_strategy("none", StrategyContext([], []))
    config = TrainConfig(epochs=2, batch_size=16, learning_rate=0.05, optimizer="sgd", weight_decay=5e-4,
                         eval_batch_size=32)
    both = fit(ModelSpec("resnet8"), (8, 8, 3), 4, train, val, strategy, config, [0, 1], test=val)
    alone = fit(ModelSpec("resnet8"), (8, 8, 3), 4, train, val, strategy, config, [1], test=val)
    augmented = fit(ModelSpec("resnet8"), (8, 8, 3), 4, train, val, strategy,
                    config.replace(augment="crop_flip", lr_milestones="1"), [0, 1], test=val)
    return both, alone, augmented, val


def test_seeds_keep_statistics_of_their_own(resnet8_runs):
    """Under the seeds' vmap each student normalises by its own batch statistics: seed 1 trained
    beside seed 0 equals seed 1 trained alone, statistics included; the two seeds differ."""
    both, alone, _, _ = resnet8_runs
    stats_both = split_trainable(both.params)[1]
    assert has_running_stats(both.params)
    for a, b in zip(jax.tree.leaves(stats_both), jax.tree.leaves(split_trainable(alone.params)[1])):
        np.testing.assert_allclose(np.asarray(a[1]), np.asarray(b[0]), rtol=1e-5, atol=1e-6)
        assert a.shape[0] == 2
    first = np.asarray(jax.tree.leaves(stats_both)[0])
    assert not np.allclose(first[0], first[1])
    assert both.val_accuracy[1] == pytest.approx(alone.val_accuracy[0])
    # The statistics moved from their start (mean 0, variance 1).
    assert np.abs(first).max() > 0 and not np.allclose(first, 0.0)


def test_test_accuracy_is_that_of_the_running_statistics(resnet8_runs):
    """The reported accuracy is computed in inference mode, from the kept epoch's statistics."""
    both, _, _, val = resnet8_runs
    params = jax.tree.map(lambda leaf: leaf[0], both.params)
    logits = predict(both.graphdef, params, val.x, 32)
    assert float(jnp.mean(jnp.argmax(logits, -1) == val.y)) == pytest.approx(both.test_accuracy[0])
    # A training-mode forward (batch statistics) would give other logits.
    (train_logits, _), _ = train_forward(both.graphdef, params, val.x)
    assert not np.allclose(np.asarray(train_logits), np.asarray(logits), atol=1e-3)


def test_augmentation_and_schedule_change_the_run_and_repeat_exactly(resnet8_runs):
    both, _, augmented, _ = resnet8_runs
    a = np.asarray(jax.tree.leaves(split_trainable(both.params)[0])[0])
    b = np.asarray(jax.tree.leaves(split_trainable(augmented.params)[0])[0])
    assert not np.allclose(a, b)
    train, val = _images(64, 0), _images(32, 1)
    again = fit(ModelSpec("resnet8"), (8, 8, 3), 4, train, val, make_strategy("none", StrategyContext([], [])),
                TrainConfig(epochs=2, batch_size=16, learning_rate=0.05, optimizer="sgd", weight_decay=5e-4,
                            eval_batch_size=32, augment="crop_flip", lr_milestones="1"), [0, 1], test=val)
    for x, y in zip(jax.tree.leaves(augmented.params), jax.tree.leaves(again.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert again.history == augmented.history or [h["val_accuracy"] for h in again.history] == [
        h["val_accuracy"] for h in augmented.history]


def test_trainers_that_carry_parameters_alone_refuse_batchnorm_models():
    for arch, method in (("resnet8", "deep mutual learning"), ("vgg8", "BYOT"), ("ShuffleV2", "the joint selector")):
        with pytest.raises(ConfigError, match=f"model '{arch}' keeps BatchNorm running statistics, which {method}"):
            parameters_only_model(ModelSpec(arch), (32, 32, 3), 100, method)
    assert parameters_only_model(ModelSpec("cnn2d"), (32, 32, 3), 100, "BYOT") is not None
