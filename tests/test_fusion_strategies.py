"""Each fusion strategy's weights against a by-hand computation on a tiny pool."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.errors import ConfigError, UnknownNameError
from mtkd.fusion import StrategyContext, StrategyInput, make_strategy

CONTEXT = StrategyContext(("a", "b", "c"), (0.5, 0.9, 0.7))
RNG = np.random.default_rng(0)
TEACHERS = RNG.normal(size=(3, 4, 5)).astype(np.float32) * 2
LABELS = np.array([0, 3, 4, 1])


def weights(spec, key=0):
    batch = StrategyInput(jax.random.key(key), jnp.asarray(TEACHERS), jnp.asarray(LABELS), None, jnp.float32(0))
    return np.asarray(make_strategy(spec, CONTEXT).weights(batch))


@pytest.mark.parametrize("spec,mu", [
    ("none", [0, 0, 0]), ("uniform", [1, 1, 1]), ("single:c", [0, 0, 1]),
    ("best_single", [0, 1, 0]), ("weighted", [0.5, 0.9, 0.7]), ("weighted:1,0,2.5", [1, 0, 2.5]),
])
def test_constant_strategies(spec, mu):
    np.testing.assert_allclose(weights(spec), np.tile(mu, (4, 1)), rtol=1e-6)


def test_confidence_weights_by_hand():
    expected = np.zeros((4, 3))
    for b in range(4):
        log_p_true = []
        for k in range(3):
            z = TEACHERS[k, b].astype(np.float64)
            log_p_true.append(z[LABELS[b]] - np.log(np.sum(np.exp(z))))  # = -CE of teacher k
        e = np.exp(np.array(log_p_true) - max(log_p_true))
        expected[b] = e / e.sum()
    np.testing.assert_allclose(weights("confidence"), expected, rtol=1e-5)


def test_random_selection_frequency_and_batch_constancy():
    draws = np.stack([weights("random:0.3", key) for key in range(400)])
    assert np.all((draws == 0) | (draws == 1))
    assert np.all(draws == draws[:, :1, :])  # one selection per batch, shared by its examples
    frequency = draws[:, 0, :].mean(axis=0)
    assert np.all(np.abs(frequency - 0.3) < 0.08)
    assert np.array_equal(weights("random:0.3", 7), weights("random:0.3", 7))


@pytest.mark.parametrize("spec,error,message", [
    ("single:zzz", ConfigError, "names no teacher"), ("single", ConfigError, "needs a teacher name"),
    ("weighted:1,2", ConfigError, "2 weights for a pool of 3"), ("weighted:1,-1,0", ConfigError, "non-negative"),
    ("random:1.5", ConfigError, "probability"), ("uniform:3", ConfigError, "takes no argument"),
    ("mystery", UnknownNameError, "unknown fusion strategy"),
])
def test_bad_strategy_specs(spec, error, message):
    with pytest.raises(error, match=message):
        make_strategy(spec, CONTEXT)


def test_val_acc_weighted_confidence_by_hand():
    """w_bk = a_k p_k(y_b) / sum_j a_j p_j(y_b), written out in numpy (docs/methods.md)."""
    accuracy = np.asarray(CONTEXT.teacher_val_accuracy, np.float64)
    expected = np.zeros((4, 3))
    for b in range(4):
        for k in range(3):
            z = TEACHERS[k, b].astype(np.float64)
            expected[b, k] = accuracy[k] * np.exp(z[LABELS[b]]) / np.sum(np.exp(z))
        expected[b] /= expected[b].sum()
    np.testing.assert_allclose(weights("val_acc_weighted_confidence"), expected, rtol=1e-5)
    # A teacher with validation accuracy 0 gets no weight anywhere.
    zero = StrategyContext(("a", "b", "c"), (0.0, 0.9, 0.7))
    batch = StrategyInput(jax.random.key(0), jnp.asarray(TEACHERS), jnp.asarray(LABELS), None, jnp.float32(0))
    got = np.asarray(make_strategy("val_acc_weighted_confidence", zero).weights(batch))
    assert np.all(got[:, 0] == 0) and np.allclose(got.sum(axis=1), 1, rtol=1e-6)


def test_weighted_by_accuracy_is_uniform_when_every_accuracy_is_zero():
    """Accuracies of 0 everywhere (a tiny or random validation split) weigh the teachers equally;
    weights the user gives must still have a positive sum."""
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4, 5)), jnp.float32)
    batch = StrategyInput(jax.random.key(0), logits, jnp.zeros(4, jnp.int32), None, jnp.float32(0.0))
    zero = make_strategy("weighted", StrategyContext(["a", "b", "c"], [0.0, 0.0, 0.0]))
    equal = make_strategy("weighted", StrategyContext(["a", "b", "c"], [0.5, 0.5, 0.5]))
    normalised = [np.asarray(w) / np.asarray(w).sum(axis=1, keepdims=True) for w in (zero.weights(batch), equal.weights(batch))]
    np.testing.assert_allclose(normalised[0], normalised[1])
    np.testing.assert_allclose(normalised[0], np.full((4, 3), 1 / 3))
    with pytest.raises(ConfigError, match="positive sum"):
        make_strategy("weighted:0,0,0", StrategyContext(["a", "b", "c"], [0.1, 0.2, 0.3]))
