"""BYOT self-distillation: the loss against numpy, stop_gradient on the deepest exit, a short fit."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mtkd.distill.byot import ByotConfig, byot_loss, exit_outputs, fit_byot, run_byot
from mtkd.distill.config import TrainConfig
from mtkd.errors import ConfigError
from mtkd.models import ModelSpec, build_model

SMALL = {"channels": [4, 8, 8], "blocks": 0, "kernel_size": 3}


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference_loss(logits, features, labels, kd_weight, temperature, feature_weight):
    """docs/methods.md, Deep mutual learning and self-distillation, example by example: CE on the deepest, the three terms on each shallow exit."""
    exits, batch = logits.shape[:2]
    total = 0.0
    for b in range(batch):
        total += -np.log(softmax(logits[-1, b])[labels[b]])
        teacher = softmax(logits[-1, b] / temperature)
        for i in range(exits - 1):
            ce = -np.log(softmax(logits[i, b])[labels[b]])
            kl = np.sum(teacher * (np.log(teacher) - np.log(softmax(logits[i, b] / temperature))))
            feature = np.mean((features[i, b] - features[-1, b]) ** 2)
            total += (1 - kd_weight) * ce + kd_weight * temperature**2 * kl + feature_weight * feature
    return total / batch


def test_byot_loss_matches_numpy():
    rng = np.random.default_rng(0)
    logits, features = rng.normal(size=(3, 5, 4)) * 2, rng.normal(size=(3, 5, 6))
    labels = rng.integers(0, 4, size=5)
    with jax.enable_x64(True):
        config = ByotConfig(kd_weight=0.4, temperature=3.0, feature_weight=0.5)
        loss, parts = byot_loss(jnp.asarray(logits), jnp.asarray(features), jnp.asarray(labels), config)
        np.testing.assert_allclose(loss, reference_loss(logits, features, labels, 0.4, 3.0, 0.5), rtol=1e-10)
    assert parts["ce"].shape == (3,) and parts["kl"].shape == (2,) and parts["feature"].shape == (2,)


def _model_loss(config, part=None):
    """The BYOT loss of a small model on a batch, as a function of its parameters."""
    model = build_model(ModelSpec("byot", SMALL), (40,), 10, nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    rng = np.random.default_rng(1)
    x, y = jnp.asarray(rng.normal(size=(8, 40)), jnp.float32), jnp.asarray(rng.integers(0, 10, 8))

    def loss(p):
        logits, features = exit_outputs(nnx.merge(graphdef, p)(x)[1], 3)
        if part == "deepest_ce":
            return -jnp.mean(jax.nn.log_softmax(logits[-1])[jnp.arange(8), y])
        return byot_loss(logits, features, y, config)[0]

    return loss, params


def test_the_deepest_exit_gets_no_gradient_from_the_shallow_terms():
    loss, params = _model_loss(ByotConfig(kd_weight=0.9, temperature=2.0, feature_weight=5.0))
    full = jax.jit(jax.grad(loss))(params)
    deepest_ce_loss, _ = _model_loss(ByotConfig(), part="deepest_ce")
    ce_only = jax.jit(jax.grad(deepest_ce_loss))(params)
    # The deepest head and the last stage feed only the deepest exit (its logits and F_C): with
    # stop_gradient they see exactly the deepest CE's gradient, whatever kd_weight and lambda are.
    for path in (("head",), ("stages", 2)):
        ours, theirs = full, ce_only
        for key in path:
            ours, theirs = ours[key], theirs[key]
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # Without stop_gradient they would not: the shallow exits do pull on the shared first stage.
    first_stage = jax.tree.leaves(full["stages"][0])
    assert any(not np.allclose(a, b) for a, b in zip(first_stage, jax.tree.leaves(ce_only["stages"][0])))
    assert all(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(full["exits"][0]))


def test_byot_model_exits_on_sequences_and_images():
    model = build_model(ModelSpec("byot", SMALL), (40,), 7, nnx.Rngs(0))
    logits, features = model(jnp.zeros((2, 40)))
    assert logits.shape == (2, 7)
    assert [features[f"exit_{i}_feature"].shape for i in range(3)] == [(2, 8)] * 3
    assert features["stage_0"].shape == (2, 40, 4) and features["stage_2"].shape == (2, 10, 8)
    np.testing.assert_array_equal(features["exit_2_logits"], logits)
    image = build_model(ModelSpec("byot", {"channels": [4, 6]}), (8, 8, 1), 3, nnx.Rngs(0))
    logits, features = image(jnp.zeros((2, 8, 8, 1)))
    assert logits.shape == (2, 3) and features["stage_1"].shape == (2, 4, 4, 6)
    assert features["exit_0_feature"].shape == (2, 6)
    with pytest.raises(ConfigError, match="at least 2 stages"):
        build_model(ModelSpec("byot", {"channels": [4]}), (40,), 3, nnx.Rngs(0))


@pytest.mark.parametrize("kwargs,message", [({"kd_weight": 1.5}, "kd_weight"), ({"temperature": 0.0}, "temperature"),
                                            ({"feature_weight": -1.0}, "feature_weight")])
def test_byot_config_is_validated(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ByotConfig(**kwargs)


def test_fit_byot_needs_exits(mnist1d):
    with pytest.raises(ConfigError, match="model 'mlp' has no auxiliary exits"):
        fit_byot(mnist1d, ModelSpec("mlp", {"widths": [8]}), TrainConfig(epochs=1), [0])


def test_run_byot_trains_and_reports_every_exit(mnist1d, tmp_path):
    rows = run_byot(mnist1d, TrainConfig(epochs=3, batch_size=128, learning_rate=1e-2), [0, 1],
                    metrics_dir=tmp_path, log=lambda line: None, channels=[8, 16, 16], blocks=0)
    (row,) = rows
    assert row["strategy"] == "byot" and row["seeds"] == [0, 1]
    exits = np.array(row["exit_test_accuracy"])
    assert exits.shape == (3, 2)
    np.testing.assert_allclose(row["test_accuracy"], exits[-1])  # the row reports the deepest exit
    assert np.all(exits > 0.15)  # above chance (0.1) after 3 epochs
    records = [json.loads(line) for line in (tmp_path / "byot.jsonl").read_text().splitlines()]
    deepest_val = np.array([r["val_exit_accuracy"] for r in records])[:, :, -1]
    np.testing.assert_allclose(row["val_accuracy"], deepest_val.max(axis=0))  # chosen on the deepest exit
    assert np.all(np.array(records[-1]["train_loss"]) < np.array(records[0]["train_loss"]))
    assert row["best_epoch"] == (deepest_val.argmax(axis=0) + 1).tolist()
