"""The Bernoulli select/skip distribution: log probability and its gradient by hand."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.agents import bernoulli_entropy, bernoulli_log_prob, greedy_actions, sample_actions


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_log_prob_by_hand():
    logits = jnp.array([2.0, -1.0, 0.5, 0.0])
    actions = jnp.array([1, 0, 0, 1])
    expected = (math.log(sigmoid(2.0)) + math.log(1 - sigmoid(-1.0)) + math.log(1 - sigmoid(0.5))
                + math.log(0.5))
    assert abs(float(bernoulli_log_prob(logits, actions)) - expected) < 1e-6


def test_log_prob_gradient_by_hand():
    # d/dl [a log s(l) + (1 - a) log(1 - s(l))] = a - s(l)
    logits = jnp.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    actions = jnp.array([[1, 0, 1], [0, 0, 1]])
    grad = jax.grad(lambda l: bernoulli_log_prob(l, actions).sum())(logits)
    expected = np.array([[a - sigmoid(l) for l, a in zip(row_l, row_a)]
                         for row_l, row_a in zip(np.asarray(logits), np.asarray(actions))])
    np.testing.assert_allclose(grad, expected, atol=1e-6)


def test_extreme_logits_stay_finite():
    logits = jnp.array([200.0, -200.0])
    assert np.isfinite(float(bernoulli_log_prob(logits, jnp.array([0, 1]))))
    assert abs(float(bernoulli_log_prob(logits, jnp.array([1, 0])))) < 1e-6
    grad = jax.grad(lambda l: bernoulli_log_prob(l, jnp.array([0, 1])))(logits)
    np.testing.assert_allclose(grad, [-1.0, 1.0], atol=1e-6)


def test_entropy_by_hand():
    p = sigmoid(1.5)
    expected = -(p * math.log(p) + (1 - p) * math.log(1 - p)) + math.log(2)
    assert abs(float(bernoulli_entropy(jnp.array([1.5, 0.0]))) - expected) < 1e-6


def test_sampling_frequency_and_greedy():
    logits = jnp.array([-2.0, 0.0, 1.0])
    samples = sample_actions(jax.random.key(0), jnp.broadcast_to(logits, (20000, 3)))
    np.testing.assert_allclose(samples.mean(axis=0), [sigmoid(-2.0), 0.5, sigmoid(1.0)], atol=0.015)
    assert set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_array_equal(greedy_actions(logits), [0.0, 0.0, 1.0])
