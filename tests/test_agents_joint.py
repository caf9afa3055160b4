"""The joint selector: counterfactual credit against a slow reference loop, the policy gradient
against its formula, learning on pools with misleading teachers (several selector seeds, started
from "select all" so the initial weights give nothing away), and a null-reward control."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd import envs
from mtkd.agents.credit import (evidence, far_ends, natural_gradient_loss, set_teacher, signed_gains, update_noise,
                           update_statistics)
from mtkd.agents.policies import make_policy
from mtkd.agents.joint import (JOINT_AXES, init_joint_state, make_credit_round, make_joint_epoch, selector_env_config,
                          train_jointly)
from mtkd.agents.selector_config import SelectorConfig
from mtkd.envs.core import decision_batches, step
from mtkd.envs.probe import probe_arrays
from mtkd.envs.rewards import REWARDS, Reward
from mtkd.distill.config import TrainConfig
from mtkd.distill.objective import CALIBRATION_TEMPERATURES, calibrated_cross_entropy
from mtkd.errors import ConfigError
from mtkd.models import ModelSpec
from mtkd.models.apply import apply_model

STUDENT = ModelSpec("mlp", {"widths": [16]})
TRAIN = TrainConfig(epochs=40, batch_size=64, learning_rate=3e-3, temperature=2.0)


def splits_of(arrays):
    """The probe as the `splits` the joint trainer reads; the validation set doubles as test."""
    logits = {"train": arrays.teacher_logits_train, "val": arrays.teacher_logits_val}
    splits = SimpleNamespace(x_train=arrays.x_train, y_train=arrays.y_train, x_val=arrays.x_val,
                             y_val=arrays.y_val, x_test=arrays.x_val, y_test=arrays.y_val)
    return splits, logits


def test_far_ends_set_teacher_and_signed_gains_by_hand():
    np.testing.assert_array_equal(far_ends(jnp.asarray([0.2, 0.5, 0.9, 0.49])), [1, 0, 0, 1])
    weights = jnp.asarray([[0.2, 0.7, 1.0], [0.4, 0.6, 0.0]])
    np.testing.assert_allclose(set_teacher(weights, jnp.int32(1), jnp.float32(0.0)), [[0.2, 0, 1], [0.4, 0, 0]])
    # R(branch) - R(reference), signed towards selecting the teacher
    gains = signed_gains(jnp.asarray([0.30, 0.10, 0.25]), jnp.float32(0.20), jnp.asarray([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(gains, [0.10, 0.10, -0.05], rtol=1e-6)


def test_noise_estimate_is_the_mean_successive_difference_against_a_loop():
    rng = np.random.default_rng(4)
    rounds = rng.normal([3.0, -1.0, 0.0], 0.5, size=(40, 3))  # constant effects plus noise of sd 0.5
    noise, previous = jnp.float32(1.0), jnp.zeros(3)
    expected = None
    for r, gains in enumerate(rounds):
        noise = update_noise(noise, previous, jnp.asarray(gains), jnp.int32(r), 0.9)
        previous = jnp.asarray(gains)
        if r == 0:
            expected = np.mean(gains ** 2)
        else:
            weight = min(0.9, r / (r + 1))
            expected = weight * expected + (1 - weight) * 0.5 * np.mean((gains - rounds[r - 1]) ** 2)
        np.testing.assert_allclose(float(noise), expected, rtol=1e-5)
    # the effects cancel in the differences: the estimate is the noise variance, not the signal's
    assert 0.15 < float(noise) < 0.4


def test_evidence_is_soft_thresholded_and_capped():
    step = evidence(jnp.asarray([0.5, -2.5, 10.0, 0.0]), jnp.float32(1.0), threshold=1.0, cap=6.0)
    np.testing.assert_allclose(step, [0.0, -1.5, 6.0, 0.0])
    step = evidence(jnp.asarray([0.5, -2.5]), jnp.float32(0.25), threshold=1.0, cap=6.0)  # noise sd 0.5
    np.testing.assert_allclose(step, [0.0, -4.0])


def test_natural_gradient_step_moves_each_logit_by_the_step():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(4, 3)))
    step = jnp.asarray([1.0, -2.0, 0.0])
    grad = np.asarray(jax.grad(natural_gradient_loss)(logits, step))
    np.testing.assert_allclose(grad, -np.broadcast_to(np.asarray(step) / 4, (4, 3)), rtol=1e-6)
    # through teacher_logistic: one SGD step of rate lr moves every bias by lr * step
    policy = make_policy("teacher_logistic")
    params = policy.init(jax.random.key(0), 5 * 3 + 4, 3)
    rows = jnp.asarray(rng.normal(size=(7, 5 * 3 + 4)), jnp.float32)
    grads = jax.grad(lambda p: natural_gradient_loss(policy.apply(p, rows), step))(params)
    np.testing.assert_allclose(-0.1 * np.asarray(grads["b"]), 0.1 * np.asarray(step), rtol=1e-6)


def test_calibrated_cross_entropy_against_numpy():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 5, 50)
    logits = (3.0 * np.eye(5)[labels] + rng.normal(0, 2, size=(50, 5))).astype(np.float32)  # informative

    def ce(t):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(50), labels])

    expected = min(ce(t) for t in CALIBRATION_TEMPERATURES)
    value = float(calibrated_cross_entropy(jnp.asarray(logits), jnp.asarray(labels)))
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    assert value <= ce(1.0) + 1e-6  # 1.0 is on the grid
    # close to the continuous optimum of CE(T)
    fine = min(ce(t) for t in np.exp(np.linspace(np.log(0.25), np.log(32.0), 4000)))
    assert value - fine < 2e-3 * fine
    # scaling the logits changes the plain loss but hardly the calibrated one
    scaled = float(calibrated_cross_entropy(jnp.asarray(logits * 3.0), jnp.asarray(labels)))
    assert abs(scaled - value) < 5e-3 and abs(ce(1 / 3.0) - ce(1.0)) > 0.1


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
    """gain_k = +-(R(branch k) - R(reference)): every branch run decision by decision
    with the environment's `step` from the epoch's starting state, on the selector's own batch
    order, for half an epoch, its calibrated validation loss computed in numpy at the end."""
    arrays = probe_arrays(seed=3)
    splits, logits = splits_of(arrays)
    config = SelectorConfig(init="all", apply="expected")
    decisions = arrays.x_train.shape[0] // TRAIN.batch_size
    env_params = envs.make_env_params(logits["train"], logits["val"], arrays.x_train, arrays.y_train,
                                      arrays.x_val, arrays.y_val,
                                      selector_env_config(STUDENT, TRAIN, config, decisions))
    state = init_joint_state(env_params, config, [0], [0.9, 0.9, 0.9])
    keys = jax.random.split(jax.random.key(5), 1)
    epoch = jax.jit(jax.vmap(make_joint_epoch(env_params, config), in_axes=(JOINT_AXES, 0, None),
                             out_axes=(JOINT_AXES, 0)))
    _, metrics = epoch(state, keys, jnp.bool_(True))
    credit_round = jax.jit(jax.vmap(make_credit_round(env_params, config), in_axes=(JOINT_AXES, 0, 0)))
    _, credit = credit_round(state, keys, metrics["selection"])

    start = jax.tree.map(lambda leaf: leaf[0] if leaf.ndim and leaf.shape[0] == 1 else leaf, state.env)
    # the branches replay the selector's own order: key(agent_seed + seed) folded with 1, then the round
    order = decision_batches(jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 1), 0), env_params)
    start = start.replace(t=state.env.t, batches=order)
    one_step = jax.jit(lambda s, action: step(None, s, action, env_params))  # one decision at a time
    graphdef = envs.params.student_graphdef(env_params)

    def calibrated_loss(action):
        s = start
        for _ in range(decisions // 2):
            _, s, _, _, _ = one_step(s, jnp.asarray(action, jnp.float32))
        z = np.asarray(apply_model(graphdef, s.student.params, jnp.asarray(arrays.x_val))[0], np.float64)
        losses = []
        for t in CALIBRATION_TEMPERATURES:
            u = z / t - (z / t).max(axis=1, keepdims=True)
            losses.append(np.mean(np.log(np.exp(u).sum(axis=1)) - u[np.arange(len(u)), arrays.y_val]))
        return min(losses)

    # "all" starts every teacher at p = 0.9 with w = 0: expected weights 0.9, far ends 0
    reference = calibrated_loss([0.9, 0.9, 0.9])
    # R = loss at the start - loss at the end; the branch skips k (end 0), so the gain is R(ref) - R(k)
    expected = [calibrated_loss(np.where(np.arange(3) == k, 0.0, 0.9)) - reference for k in range(3)]
    np.testing.assert_allclose(np.asarray(credit["credit"])[0], expected, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(np.asarray(metrics["selection"])[0], [0.9, 0.9, 0.9], rtol=1e-6)


# The learning tests start from "select all" (p = 0.9 for every teacher), so the start gives nothing
# away, and use the default rate and threshold: the ones the null-reward control below bounds.
def _train(arrays, config, seeds, epochs=TRAIN.epochs):
    splits, logits = splits_of(arrays)
    return train_jointly(logits, splits, [0.9] * arrays.teacher_logits_train.shape[0], STUDENT,
                         TRAIN.replace(epochs=epochs), config, seeds)


def _probabilities(result):
    return np.asarray([r["probability"] for r in result.rounds])  # (rounds, seeds, K)


@pytest.mark.parametrize("apply", ["greedy", "expected"])
def test_credit_pushes_a_permuted_teacher_down_from_select_all(apply):
    arrays = probe_arrays(seed=0)
    result = _train(arrays, SelectorConfig(init="all", apply=apply, credit_every=1),
                    seeds=[0, 1, 2])
    final = _probabilities(result)[-1]  # (seeds, K)
    # every selector seed moved the misleading teacher from 0.9 to under 0.5, and kept the good ones
    assert np.all(final[:, 2] < 0.5) and final[:, 2].mean() < 0.45, final
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
    result = _train(arrays, SelectorConfig(init="all", credit_every=1), seeds=[0, 1, 2])
    final = _probabilities(result)[-1]
    assert np.all(final[:, 2] < 0.85) and final[:, 2].mean() < 0.7, final
    assert np.all(final[:, :2] > 0.9), final


def test_null_reward_control():
    """Rewards replaced by noise: every teacher's selection probability stays within 0.15 of
    where it started, over as many credit rounds as a default 150-epoch run takes (50)."""
    if "test_noise" not in REWARDS:
        # Pseudo-random, unrelated to what the selection did: a uniform draw keyed by the bits of
        # the validation loss (any change of the loss gives an independent draw; a fractional part
        # of a multiple of the loss would keep a trace of small, consistent loss differences),
        # centred, at the scale of real accuracy gains (a few points).
        def noise(r):
            key = jax.random.key(jax.lax.bitcast_convert_type(r.val_loss.astype(jnp.float32), jnp.int32))
            return jnp.where(r.evaluated, 0.05 * (jax.random.uniform(key) - 0.5), 0.0)

        REWARDS.add("test_noise", Reward("test_noise", noise))
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


@pytest.mark.parametrize("epochs,every", [(12, 5), (7, 2), (6, 1), (9, 0), (3, 7)])
def test_the_environment_validates_exactly_the_epochs_before_a_credit_round(epochs, every):
    from mtkd.agents.joint import needs_validation

    rounds = {e for e in range(1, epochs + 1) if every and (e - 1) % every == 0 and e < epochs}
    validated = {e for e in range(1, epochs + 1) if needs_validation(e, epochs, every)}
    assert validated == {e - 1 for e in rounds if e > 1}


def test_skipping_unread_validations_changes_nothing(monkeypatch):
    """Against a run that validates at the end of every epoch (the earlier behaviour): the same
    rounds, selections, chosen epochs and accuracies, exactly."""
    import mtkd.agents.joint

    arrays = probe_arrays(seed=0)
    config = SelectorConfig(init="all", credit_every=3)
    skipping = _train(arrays, config, [0, 1], epochs=8)
    monkeypatch.setattr(mtkd.agents.joint, "needs_validation", lambda epoch, epochs, every: True)
    every_epoch = _train(arrays, config, [0, 1], epochs=8)
    assert skipping.rounds == every_epoch.rounds and skipping.history == every_epoch.history
    assert skipping.best_epoch == every_epoch.best_epoch and skipping.test_accuracy == every_epoch.test_accuracy
