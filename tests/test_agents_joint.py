"""The joint selector: counterfactual credit against a slow reference loop, the policy gradient
against its formula, learning on pools with misleading teachers (several selector seeds, started
from "select all" so the initial weights give nothing away), and a null-reward control."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents.credit import flip_teacher, policy_gradient_loss, update_statistics
from agents.joint import JOINT_AXES, init_joint_state, make_joint_epoch, selector_env_config, train_jointly
from agents.selector_config import SelectorConfig
from envs.core import decision_batches, step
from envs.probe import probe_arrays
from envs.rewards import REWARDS, Reward
from mtkd.distill.config import TrainConfig
from mtkd.errors import ConfigError
from mtkd.models import ModelSpec

STUDENT = ModelSpec("mlp", {"widths": [16]})
TRAIN = TrainConfig(epochs=40, batch_size=64, learning_rate=3e-3, temperature=2.0)


def splits_of(arrays):
    """The probe as the `splits` the joint trainer reads; the validation set doubles as test."""
    logits = {"train": arrays.teacher_logits_train, "val": arrays.teacher_logits_val}
    splits = SimpleNamespace(x_train=arrays.x_train, y_train=arrays.y_train, x_val=arrays.x_val,
                             y_val=arrays.y_val, x_test=arrays.x_val, y_test=arrays.y_val)
    return splits, logits


def test_flip_teacher_and_gradient_formula():
    weights = jnp.asarray([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    np.testing.assert_array_equal(flip_teacher(weights, jnp.int32(1)), [[1, 1, 1], [1, 0, 0]])
    rng = np.random.default_rng(0)
    logits, gains = rng.normal(size=(2, 3)), rng.normal(size=3)
    grad = np.asarray(jax.grad(policy_gradient_loss)(jnp.asarray(logits), weights, jnp.asarray(gains)))
    p = 1 / (1 + np.exp(-logits))
    expected = -p * (1 - p) * (2 * np.asarray(weights) - 1) * gains / 2  # mean over the 2 decisions
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_running_statistics_against_numpy():
    rng = np.random.default_rng(1)
    first, second = rng.normal(2.0, 3.0, size=(50, 2, 9)), rng.normal(-1.0, 0.5, size=(50, 2, 9))
    mean, scale = update_statistics(jnp.zeros((2, 9)), jnp.ones((2, 9)), jnp.asarray(first), jnp.int32(0), 0.9)
    np.testing.assert_allclose(mean, first.mean(0), rtol=1e-5)
    np.testing.assert_allclose(scale, np.maximum(first.std(0), 0.1), rtol=1e-4)
    mean2, scale2 = update_statistics(mean, scale, jnp.asarray(second), jnp.int32(1), 0.9)
    m = 0.9 * first.mean(0) + 0.1 * second.mean(0)
    sq = 0.9 * (np.maximum(first.std(0), 0.1) ** 2 + first.mean(0) ** 2) + 0.1 * (second ** 2).mean(0)
    np.testing.assert_allclose(mean2, m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scale2, np.maximum(np.sqrt(sq - m ** 2), 0.1), rtol=1e-4)


def test_credit_round_equals_a_step_by_step_reference():
    """The gain of teacher k is R(main) - R(k flipped on every decision), each run step by step
    with the environment's `step` from the same state."""
    arrays = probe_arrays(seed=3)
    splits, logits = splits_of(arrays)
    config = SelectorConfig(init="all", apply="greedy")
    decisions = arrays.x_train.shape[0] // TRAIN.batch_size
    env_params = envs.make_env_params(logits["train"], logits["val"], arrays.x_train, arrays.y_train,
                                      arrays.x_val, arrays.y_val,
                                      selector_env_config(STUDENT, TRAIN, config, decisions))
    state = init_joint_state(env_params, config, [0], [0.9, 0.9, 0.9])
    epoch = jax.jit(jax.vmap(make_joint_epoch(env_params, config, credit=True), in_axes=(JOINT_AXES, 0),
                             out_axes=(JOINT_AXES, 0)))
    keys = jax.random.split(jax.random.key(5), 1)
    _, metrics = epoch(state, keys)

    start = jax.tree.map(lambda leaf: leaf[0] if leaf.ndim and leaf.shape[0] == 1 else leaf, state.env)
    # the epoch draws its batch order from its key as `fit` does
    start = start.replace(t=state.env.t, batches=decision_batches(jax.random.split(keys[0])[0], env_params))

    one_step = jax.jit(lambda s, action: step(None, s, action, env_params))  # one decision at a time

    def run(action):
        s, total = start, 0.0
        for _ in range(decisions):
            _, s, reward, _, _ = one_step(s, jnp.asarray(action, jnp.float32))
            total += float(reward)
        return total

    main = run([1, 1, 1])  # "all" starts at p = 0.9 with w = 0: greedy keeps every teacher
    expected = [main - run(np.where(np.arange(3) == k, 0, 1)) for k in range(3)]
    np.testing.assert_allclose(np.asarray(metrics["credit"])[0], expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(metrics["selection"])[0], [1, 1, 1])


# From "select all" (p = 0.9) the vanilla gradient is damped by p (1 - p) = 0.09: at the default
# rate (0.15, bounded by the null-reward control below) 39 rounds move a teacher by about 0.1 only,
# so these learning tests use a faster rate. The default runs start from the validation accuracies.
FAST = 1.5


def _train(arrays, config, seeds, epochs=TRAIN.epochs):
    splits, logits = splits_of(arrays)
    return train_jointly(logits, splits, [0.9] * arrays.teacher_logits_train.shape[0], STUDENT,
                         TRAIN.replace(epochs=epochs), config, seeds)


def _probabilities(result):
    return np.asarray([r["probability"] for r in result.rounds])  # (rounds, seeds, K)


@pytest.mark.parametrize("apply", ["greedy", "expected"])
def test_credit_pushes_a_permuted_teacher_down_from_select_all(apply):
    arrays = probe_arrays(seed=0)
    result = _train(arrays, SelectorConfig(init="all", apply=apply, credit_every=1, policy_learning_rate=FAST),
                    seeds=[0, 1, 2])
    final = _probabilities(result)[-1]  # (seeds, K)
    # every selector seed moved the misleading teacher down from 0.9 and the good ones up
    assert np.all(final[:, 2] < 0.8) and final[:, 2].mean() < 0.7, final
    assert np.all(final[:, :2] > 0.9), final


def test_credit_pushes_down_a_teacher_right_on_some_classes_only():
    """A teacher whose classes 0 and 1 are swapped (right on half the classes, confidently wrong
    on the rest) is pushed down too."""
    arrays = probe_arrays(seed=1)
    swap = np.array([1, 0, 2, 3])
    logits_train = arrays.teacher_logits_train.copy()
    logits_val = arrays.teacher_logits_val.copy()
    logits_train[2] = arrays.teacher_logits_train[0][:, swap]
    logits_val[2] = arrays.teacher_logits_val[0][:, swap]
    arrays = arrays._replace(teacher_logits_train=logits_train, teacher_logits_val=logits_val)
    result = _train(arrays, SelectorConfig(init="all", credit_every=1, policy_learning_rate=FAST), seeds=[0, 1, 2])
    final = _probabilities(result)[-1]
    assert np.all(final[:, 2] < 0.8) and final[:, 2].mean() < 0.7, final
    assert np.all(final[:, :2] > 0.9), final


def test_null_reward_control():
    """Rewards replaced by noise: every teacher's selection probability stays within 0.15 of
    where it started, over as many credit rounds as a default 150-epoch run takes (50)."""
    if "test_noise" not in REWARDS:
        # Pseudo-random, unrelated to what the selection did: fractional part of a large multiple
        # of the validation loss, centred, at the scale of real accuracy gains (a few points).
        REWARDS.add("test_noise", Reward("test_noise", lambda r: jnp.where(
            r.evaluated, 0.05 * (jnp.mod(r.val_loss * 1e4, 1.0) - 0.5), 0.0)))
    arrays = probe_arrays(seed=2)
    config = SelectorConfig(init="val_accuracy", reward="test_noise", credit_every=1)
    splits, logits = splits_of(arrays)
    start = [0.9, 0.6, 0.3]
    result = train_jointly(logits, splits, start, STUDENT, TRAIN.replace(epochs=51), config, [0, 1, 2])
    probability = _probabilities(result)
    assert probability.shape[0] == 50
    drift = np.abs(probability - np.asarray(start)[None, None, :]).max()
    assert drift <= 0.15, drift
    gains = np.asarray([r["credit"] for r in result.rounds])
    assert gains.std() > 0.005  # the noise is really there, at the scale of real gains


def test_training_is_deterministic():
    arrays = probe_arrays(seed=0)
    config = SelectorConfig(init="all", credit_every=2)
    a, b = _train(arrays, config, [0, 1], epochs=6), _train(arrays, config, [0, 1], epochs=6)
    assert a.test_accuracy == b.test_accuracy and a.rounds == b.rounds


def test_config_refuses_bad_options():
    with pytest.raises(ConfigError, match="unknown option.*credit_evry"):
        SelectorConfig.from_dict({"credit_evry": 2}, "[rl]")
    with pytest.raises(ConfigError, match="paid only at an episode's end"):
        SelectorConfig(reward="terminal_val_acc")
    with pytest.raises(Exception, match="unknown action mode 'argmax'"):
        SelectorConfig(apply="argmax")
    with pytest.raises(ConfigError, match="credit_every"):
        SelectorConfig(credit_every=-1)
