"""Deep mutual learning: the loss by hand, stacked peers vs one at a time, both update schemes
against hand-written loops, mixed architectures, bad inputs, and a short run on MNIST-1D."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mtkd.distill.config import TrainConfig
from mtkd.distill.steps import StudentState, apply_model, evaluate
from mtkd.dml import (dml_loss, init_peers, make_sequential_step, make_simultaneous_step, peer_probabilities,
                      peer_spec_from, run_dml, run_independent_peers)
from mtkd.errors import ConfigError, TrainingDivergedError
from mtkd.models import ModelSpec

MLP = ModelSpec("mlp", {"widths": [16]})
CNN = ModelSpec("cnn1d", {"channels": [4, 4]})


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("temperature", [1.0, 2.5])
@pytest.mark.parametrize("with_teacher", [False, True])
def test_dml_loss_matches_a_by_hand_computation(temperature, with_teacher):
    rng = np.random.default_rng(0)
    num_peers, batch, classes = 3, 4, 5
    logits = rng.normal(size=(num_peers, batch, classes)) * 2
    labels = rng.integers(0, classes, size=batch)
    teacher = np.stack([_softmax(z) for z in rng.normal(size=(batch, classes)) * 3])
    alpha, teacher_t = 0.3, 4.0
    probs = peer_probabilities(jnp.asarray(logits), temperature)
    for k in range(num_peers):
        got = dml_loss(jnp.asarray(logits[k]), jnp.asarray(labels), probs, k,
                       jnp.asarray(teacher) if with_teacher else None,
                       temperature=temperature, alpha=alpha, teacher_temperature=teacher_t)
        total = 0.0
        for b in range(batch):
            ce = -np.log(_softmax(logits[k, b])[labels[b]])
            p_k = _softmax(logits[k, b] / temperature)
            kl = 0.0
            for l in range(num_peers):
                if l != k:
                    q = _softmax(logits[l, b] / temperature)
                    kl += np.sum(q * (np.log(q) - np.log(p_k)))
            peer_term = temperature**2 * kl / (num_peers - 1)
            if with_teacher:
                p_t = _softmax(logits[k, b] / teacher_t)
                kd = teacher_t**2 * np.sum(teacher[b] * (np.log(teacher[b]) - np.log(p_t)))
                total += alpha * ce + (1 - alpha) * kd + peer_term
            else:
                total += ce + peer_term
        np.testing.assert_allclose(float(got), total / batch, rtol=1e-5)


def test_other_peers_predictions_are_constants():
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(3, 4, 5)), jnp.float32)
    labels = jnp.asarray([0, 1, 2, 3])
    grads = jax.grad(lambda z: dml_loss(z[1], labels, peer_probabilities(z, 1.0), 1))(logits)
    assert np.all(np.asarray(grads[0]) == 0) and np.all(np.asarray(grads[2]) == 0)
    assert np.abs(np.asarray(grads[1])).max() > 1e-3


# --- the steps against hand-written loops over peers -------------------------------------------

def _hand_loss(logits, labels, other_logits, temperature, teacher=None, alpha=0.3, teacher_t=4.0):
    """Written out with the other peers' logits as concrete arrays, no shared code with mtkd.dml."""
    ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)[:, 0]
    log_p = jax.nn.log_softmax(logits / temperature)
    kl = 0.0
    for other in other_logits:
        q = jax.nn.softmax(other / temperature)
        kl = kl + jnp.sum(q * (jnp.log(q) - log_p), axis=-1)
    peer_term = temperature**2 * kl / len(other_logits)
    if teacher is None:
        return jnp.mean(ce + peer_term)
    kd = teacher_t**2 * jnp.sum(teacher * (jnp.log(teacher) - jax.nn.log_softmax(logits / teacher_t)), axis=-1)
    return jnp.mean(alpha * ce + (1 - alpha) * kd + peer_term)


def _hand_update(graphdef, optimizer, temperature):
    """One peer's plain gradient step on `_hand_loss`, jitted only to keep the test fast."""

    @jax.jit
    def update(params, opt_state, x, y, others, teacher):
        loss, grads = jax.value_and_grad(lambda p: _hand_loss(
            apply_model(graphdef, p, x)[0], y, others, temperature, teacher))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return loss, optax.apply_updates(params, updates), opt_state

    return update


def _problem(specs, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(3, 16, 40)), jnp.float32)  # three batches
    y = jnp.asarray(rng.integers(0, 10, size=(3, 16)))
    teacher = jax.nn.softmax(jnp.asarray(rng.normal(size=(3, 16, 10)) * 2, jnp.float32) / 4.0)
    stacks, params = init_peers(specs, (40,), 10, [seed])
    params = tuple(jax.tree.map(lambda leaf: leaf[0], p) for p in params)  # drop the seed axis
    return stacks, params, x, y, teacher


def _loss_fn(temperature):
    return lambda logits, labels, probs, peer, target: dml_loss(
        logits, labels, probs, peer, target, temperature=temperature, alpha=0.3, teacher_temperature=4.0)


def _assert_same_params(stacks, states, hand_params):
    for k, expected in enumerate(hand_params):
        got = stacks.peer(tuple(s.params for s in states), k)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)


def test_simultaneous_step_of_stacked_peers_equals_each_peer_updated_by_hand():
    temperature, optimizer = 2.0, optax.adam(1e-2)
    stacks, params, x, y, teacher = _problem([MLP, MLP, MLP])
    assert stacks.groups == ((0, 1, 2),)  # one stack, run under vmap
    step = jax.jit(make_simultaneous_step(stacks, optimizer, _loss_fn(temperature), temperature))
    states = tuple(StudentState(p, jax.vmap(optimizer.init)(p)) for p in params)

    graphdef = stacks.graphdefs[0]
    hand = [stacks.peer(params, k) for k in range(3)]
    hand_opt = [optimizer.init(p) for p in hand]
    update = _hand_update(graphdef, optimizer, temperature)
    for b in range(3):
        states, losses = step(states, x[b], y[b], teacher[b])
        before = [apply_model(graphdef, p, x[b])[0] for p in hand]  # every loss sees these
        for k in range(3):
            others = [before[l] for l in range(3) if l != k]
            loss, hand[k], hand_opt[k] = update(hand[k], hand_opt[k], x[b], y[b], others, teacher[b])
            np.testing.assert_allclose(float(losses[k]), float(loss), rtol=1e-5)
    _assert_same_params(stacks, states, hand)


def test_sequential_step_equals_a_loop_recomputing_predictions_after_each_update():
    """Mixed stacks ([mlp, cnn1d, mlp] -> stacks (0, 2) and (1,)) and no teacher."""
    temperature, optimizer = 1.0, optax.adam(1e-2)
    stacks, params, x, y, _ = _problem([MLP, CNN, MLP], seed=3)
    assert stacks.groups == ((0, 2), (1,))
    step = jax.jit(make_sequential_step(stacks, optimizer, _loss_fn(temperature), temperature))
    states = tuple(StudentState(p, jax.vmap(optimizer.init)(p)) for p in params)

    graphdefs = [stacks.graphdefs[stacks.slot(k)[0]] for k in range(3)]
    hand = [stacks.peer(params, k) for k in range(3)]
    hand_opt = [optimizer.init(p) for p in hand]
    # One jitted function per architecture (peers 0 and 2 share theirs), compiled once each.
    compiled = {id(g): (_hand_update(g, optimizer, temperature), jax.jit(lambda p, x, g=g: apply_model(g, p, x)[0]))
                for g in graphdefs}
    updates = [compiled[id(g)][0] for g in graphdefs]
    forward = [compiled[id(g)][1] for g in graphdefs]
    for b in range(3):
        states, losses = step(states, x[b], y[b], None)
        for k in range(3):
            # The paper's loop: every peer's prediction recomputed with the current parameters.
            now = [forward[l](hand[l], x[b]) for l in range(3)]
            others = [now[l] for l in range(3) if l != k]
            loss, hand[k], hand_opt[k] = updates[k](hand[k], hand_opt[k], x[b], y[b], others, None)
            np.testing.assert_allclose(float(losses[k]), float(loss), rtol=1e-5)
    _assert_same_params(stacks, states, hand)


# --- runs ---------------------------------------------------------------------------------------

def test_mixed_architectures_give_a_row_per_peer_with_consistent_numbers(mnist1d, tmp_path):
    config = TrainConfig(epochs=3, batch_size=128)
    result = run_dml(mnist1d, [MLP, CNN], config, [0, 1], update="simultaneous",
                     metrics_path=tmp_path / "m" / "dml.jsonl", log=lambda line: None)
    rows = result.rows()
    assert [r["strategy"] for r in rows] == ["dml/peer0:mlp", "dml/peer1:cnn1d", "dml"]
    assert rows[-1]["update"] == "simultaneous" and rows[-1]["peers"] == ["dml/peer0:mlp", "dml/peer1:cnn1d"]
    history = [json.loads(line) for line in (tmp_path / "m" / "dml.jsonl").read_text().splitlines()]
    val = np.asarray([h["val_accuracy"] for h in history])  # (epochs, S, K)
    x_test, y_test = jnp.asarray(mnist1d.x_test), jnp.asarray(mnist1d.y_test)
    for k in range(2):
        test = jax.jit(jax.vmap(lambda p, g=result.graphdefs[k]: evaluate(g, p, x_test, y_test, 1024)[0]))(
            result.params[k])  # (S,): every seed's chosen parameters
        for s in range(2):
            # chosen on validation: the best epoch's accuracy, and the test accuracy of its parameters
            assert result.val_accuracy[k][s] == pytest.approx(val[:, s, k].max())
            assert result.best_epoch[k][s] == int(np.argmax(val[:, s, k])) + 1
            assert result.test_accuracy[k][s] == pytest.approx(float(test[s]))
    assert all(0.15 < v < 1 for v in rows[-1]["test_accuracy"])  # above chance (0.1) after 3 epochs


def _disagreement(result, x):
    """Fraction of examples where peer 0 and peer 1 predict different classes, per seed."""
    preds = [np.argmax(jax.vmap(lambda p, g=result.graphdefs[k]: apply_model(g, p, x)[0])(result.params[k]), -1)
             for k in range(2)]
    return np.mean(preds[0] != preds[1], axis=-1)


def test_short_mnist1d_run_mean_row_and_peers_agree_more_than_independent(mnist1d):
    config = TrainConfig(epochs=4)
    peers = [ModelSpec("mlp", {"widths": [32]})] * 2
    dml = run_dml(mnist1d, peers, config, [0, 1], log=lambda line: None)
    alone = run_independent_peers(mnist1d, peers, config, [0, 1], log=lambda line: None)
    for result, name in ((dml, "dml"), (alone, "independent")):
        rows = result.rows()
        assert [r["strategy"] for r in rows] == [f"{name}/peer0:mlp", f"{name}/peer1:mlp", name]
        for field in ("val_accuracy", "test_accuracy"):
            np.testing.assert_allclose(rows[-1][field], np.mean([rows[0][field], rows[1][field]], axis=0))
    # The mutual KL pulls the peers' predictions together.
    x = jnp.asarray(mnist1d.x_test)
    assert np.all(_disagreement(dml, x) < _disagreement(alone, x))


def _teacher_rule(x, threshold):
    """The class a made-up teacher gives an example: 2 or 7 by the sign of one input feature."""
    return np.where(np.asarray(x)[:, 5] > threshold, 7, 2)


class _RuleTeacherPool:
    """A one-teacher pool sure of `_teacher_rule`, unrelated to the labels (the interface
    `run_dml` uses: `logits(splits)["train"]`, (K, N, C))."""

    def __init__(self, threshold):
        self.threshold = threshold

    def logits(self, splits):
        classes = _teacher_rule(splits.x_train, self.threshold)
        return {"train": jnp.asarray(np.eye(splits.num_classes, dtype=np.float32)[classes][None] * 8.0)}


def test_dml_with_teachers_learns_what_the_teachers_say(mnist1d):
    """With alpha = 0 the peers learn only from the teacher (and each other): they follow its rule
    on unseen examples. A target misaligned with its examples would leave them near 50%."""
    threshold = float(np.median(mnist1d.x_train[:, 5]))
    config = TrainConfig(epochs=2, alpha=0.0, temperature=1.0, learning_rate=1e-2)
    peers = [ModelSpec("mlp", {"widths": [32]})] * 2
    taught = run_dml(mnist1d, peers, config, [0], pool=_RuleTeacherPool(threshold), with_teachers=True,
                     update="simultaneous", log=lambda line: None)
    assert taught.rows()[-1]["strategy"] == "dml+teachers"
    x = jnp.asarray(mnist1d.x_test)
    rule = _teacher_rule(x, threshold)
    for k in range(2):
        predicted = np.argmax(jax.vmap(lambda p, g=taught.graphdefs[k]: apply_model(g, p, x)[0])(taught.params[k]), -1)
        assert np.mean(predicted[0] == rule) > 0.8  # 0.88 measured; a misaligned target gives ~0.5


# --- bad inputs ---------------------------------------------------------------------------------

def test_bad_inputs_get_clear_errors(mnist1d):
    config = TrainConfig(epochs=1)
    with pytest.raises(ConfigError, match="at least 2 peers"):
        run_dml(mnist1d, [MLP], config, [0])
    with pytest.raises(ConfigError, match="teacher pool"):
        run_dml(mnist1d, [MLP, MLP], config, [0], with_teachers=True)
    with pytest.raises(ConfigError, match="update scheme 'parallel'"):
        run_dml(mnist1d, [MLP, MLP], config, [0], update="parallel")
    with pytest.raises(ConfigError, match="temperature"):
        run_dml(mnist1d, [MLP, MLP], config, [0], temperature=0.0)
    # peers as written in an ablation config
    assert peer_spec_from({"arch": "mlp", "options": {"widths": [16]}}) == MLP
    assert peer_spec_from("cnn1d") == ModelSpec("cnn1d")
    with pytest.raises(ConfigError, match="a peer is"):
        peer_spec_from(3)


def test_nan_loss_names_the_epoch(mnist1d):
    broken = dataclasses.replace(mnist1d, x_train=np.full_like(mnist1d.x_train[:256], np.nan),
                                 y_train=mnist1d.y_train[:256])
    with pytest.raises(TrainingDivergedError, match="at epoch 1 "):
        run_dml(broken, [MLP, MLP], TrainConfig(epochs=2), [0], log=lambda line: None)
