"""The teacher-selection environment as two pure functions (gymnax shape).

`reset(key, params) -> (obs, state)` and `step(key, state, action, params) -> (obs, state,
reward, done, info)`. One decision: the agent sees the observation of the next `n =
updates_per_decision` minibatches (see `mtkd.envs.observation`), chooses which teachers to distil
from (a 0/1 mask over the K teachers, or per example), and the student takes n updates with the
fused target (`fuse_soft_targets` with weights = action; all skipped = hard labels only). An
episode is `config.epochs` student epochs; `done` is True on its last decision.

Randomness: `student_key, order_key, state.key = split(reset_key, 3)` draw the fresh student
(unless warm-started) and the first epoch's order (`epoch_batches`); at each epoch's end
`order_key, state.key = split(state.key)` draws the next order. The transition is deterministic given
the state, so `step`'s key is unused (kept for the gymnax signature): two policies run from the
same reset key see the same batches.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from mtkd.envs.observation import table_observation
from mtkd.envs.params import EnvParams, init_student, student_graphdef
from mtkd.envs.rewards import REWARDS, RewardInput
from mtkd.optimizers import make_optimizer
from mtkd.distill.objective import calibrated_cross_entropy, distillation_loss
from mtkd.distill.steps import (StudentState, apply_gradients, apply_model, epoch_batches, evaluate,
                                make_target_step, predict)
from mtkd.fusion.soft_targets import fuse_probabilities

EVAL_BATCH_SIZE = 1024


@struct.dataclass
class EnvState:
    """student: parameters and optimizer state; batches and t are the data cursor: this epoch's
    permutation cut into decisions, (decisions_per_epoch, n, batch_size) int32 indices, and the
    decisions taken so far (int32; the position in the epoch is t mod decisions_per_epoch);
    key: draws later epochs' orders; val_loss / val_accuracy: at the last evaluation (NaN when
    the reward needs no validation)."""

    student: StudentState
    batches: jax.Array
    key: jax.Array
    t: jax.Array
    val_loss: jax.Array
    val_accuracy: jax.Array


def decision_batches(key, params: EnvParams) -> jax.Array:
    """One epoch's order: `epoch_batches` (a permutation cut into full minibatches) grouped into
    decisions of n minibatches: (decisions_per_epoch, n, batch_size)."""
    cfg = params.config
    batches = epoch_batches(key, params.x_train.shape[0], cfg.batch_size)
    count = params.decisions_per_epoch * cfg.updates_per_decision
    return batches[:count].reshape(params.decisions_per_epoch, cfg.updates_per_decision, cfg.batch_size)


def validation_metrics(student_params, params: EnvParams):
    """(loss, accuracy) of the student on the validation split (or its first `val_subset`); the
    loss is the temperature-calibrated one when the reward asks for it (`Reward.calibrated`)."""
    subset = params.config.val_subset or params.x_val.shape[0]
    x, y = params.x_val[:subset], params.y_val[:subset]
    if REWARDS.get(params.config.reward).calibrated:
        logits = predict(student_graphdef(params), student_params, x, min(EVAL_BATCH_SIZE, subset))
        return calibrated_cross_entropy(logits, y), jnp.mean(jnp.argmax(logits, axis=-1) == y)
    accuracy, loss = evaluate(student_graphdef(params), student_params, x, y, min(EVAL_BATCH_SIZE, subset))
    return loss, accuracy


def observe(state: EnvState, params: EnvParams) -> jax.Array:
    """The observation of the decision `state.t` is about to take."""
    index = state.batches[state.t % params.decisions_per_epoch].reshape(-1)
    student_logits = apply_model(student_graphdef(params), state.student.params, params.x_train[index])[0]
    return _observation(params, index, student_logits, state.t)


def _observation(params: EnvParams, index, student_logits, t) -> jax.Array:
    progress = t.astype(jnp.float32) / params.num_decisions
    return table_observation(params.table.rows(index), params.y_train[index], student_logits, progress,
                             params.config.per_example)


def _optimizer(params: EnvParams):
    cfg = params.config
    return make_optimizer(cfg.optimizer, cfg.learning_rate, cfg.weight_decay)


def reset(key, params: EnvParams):
    """A new episode: (observation, state)."""
    student_key = jax.random.split(key, 3)[0]
    student = params.initial_student if params.initial_student is not None else init_student(params, student_key)
    state = start_state(key, student, params)
    return observe(state, params), state


def start_state(key, student, params: EnvParams) -> EnvState:
    """The state `reset(key, params)` starts from, for the given student parameters (a caller
    that brings its own student skips drawing one): its optimizer state, the first epoch's
    order, and the validation metrics where the reward needs them."""
    _, order_key, next_key = jax.random.split(key, 3)
    reward = REWARDS.get(params.config.reward)
    if reward.needs_validation and not reward.terminal_only:
        val_loss, val_accuracy = validation_metrics(student, params)
    else:
        val_loss = val_accuracy = jnp.float32(jnp.nan)
    return EnvState(StudentState(student, _optimizer(params).init(student)), decision_batches(order_key, params),
                    next_key, jnp.int32(0), jnp.float32(val_loss), jnp.float32(val_accuracy))


def action_weights(action, params: EnvParams) -> jax.Array:
    """The action as fusion weights per minibatch: (n, batch_size, K) float32. A batch-level
    action (K,) applies to every example; a per-example one (n * batch_size, K) is split."""
    cfg = params.config
    shape = (cfg.updates_per_decision, cfg.batch_size, params.num_teachers)
    action = jnp.asarray(action, jnp.float32)
    if cfg.per_example:
        return action.reshape(shape)
    return jnp.broadcast_to(action, shape)


def step(key, state: EnvState, action, params: EnvParams):
    """One decision: n student updates with the selected teachers, then the reward.

    action: (K,) or, per example, (n * batch_size, K), values 0/1 (validated by the Gymnasium
    shell, not here). Returns (next observation, state, reward float32, done bool, info) with
    info = {train_loss, val_loss, val_accuracy, evaluated, selection (K,)}.
    """
    del key  # the transition is deterministic given the state (see the module docstring)
    cfg = params.config
    target_step = make_target_step(student_graphdef(params), _optimizer(params), cfg.alpha, cfg.temperature)
    weights = action_weights(action, params)
    tempered = params.table.tempered

    def update(student, inputs):
        index, w = inputs
        target, total = fuse_probabilities(tempered[:, index], w)
        return target_step(student, params.x_train[index], params.y_train[index], target, total > 0)

    index = state.batches[state.t % params.decisions_per_epoch]
    student, losses = jax.lax.scan(update, state.student, (index, weights))
    new_state, reward, done, info = _after_updates(state, student, losses, weights, params)
    return observe(new_state, params), new_state, reward, done, info


def decide(key, state: EnvState, params: EnvParams, select, new_orders: bool = True):
    """`observe`, then `action = select(key, obs)`, then `step`, as one transition whose student
    forward pass on the batch serves both the observation and the update (with
    `updates_per_decision` = 1; with more, the three are run as written). The same numbers as the
    three calls up to float rounding, about a forward pass cheaper. With `new_orders` False the
    epoch's order is kept at the epoch's end (for a caller that sets each epoch's order itself:
    drawing one inside a scanned decision costs about a sixth of the decision on CPU). Returns
    (obs, action, state, reward, done, info)."""
    cfg = params.config
    if cfg.updates_per_decision != 1:
        obs = observe(state, params)
        action = select(key, obs)
        _, state_after, reward, done, info = step(key, state, action, params)
        if not new_orders:
            state_after = state_after.replace(batches=state.batches, key=state.key)
        return obs, action, state_after, reward, done, info
    graphdef = student_graphdef(params)
    index = state.batches[state.t % params.decisions_per_epoch][0]
    x, y = params.x_train[index], params.y_train[index]
    logits, backward = jax.vjp(lambda p: apply_model(graphdef, p, x)[0], state.student.params)
    obs = _observation(params, index, logits, state.t)
    action = select(key, obs)
    weights = action_weights(action, params)
    target, total = fuse_probabilities(params.table.tempered[:, index], weights[0])
    loss, loss_grad = jax.value_and_grad(
        lambda z: distillation_loss(z, y, target, total > 0, cfg.alpha, cfg.temperature))(logits)
    student = apply_gradients(_optimizer(params), state.student, backward(loss_grad)[0])
    return (obs, action) + _after_updates(state, student, loss[None], weights, params, new_orders)


def _after_updates(state: EnvState, student: StudentState, losses, weights, params: EnvParams,
                   new_orders: bool = True):
    """The rest of a decision once the student is updated: the clock, validation and reward, the
    next epoch's order (unless `new_orders` is False). Returns (state, reward, done, info)."""
    cfg = params.config
    t = state.t + 1
    done = t >= params.num_decisions
    reward_fn = REWARDS.get(cfg.reward)
    if reward_fn.terminal_only:
        evaluated = done
    else:
        evaluated = (t % cfg.eval_every == 0) | done
    if reward_fn.needs_validation:
        val_loss, val_accuracy = jax.lax.cond(
            evaluated, lambda: validation_metrics(student.params, params),
            lambda: (state.val_loss, state.val_accuracy))
    else:
        val_loss, val_accuracy = state.val_loss, state.val_accuracy
    reward = reward_fn.compute(RewardInput(state.val_loss, state.val_accuracy, val_loss, val_accuracy,
                                           evaluated, done, losses.mean()))

    def next_epoch():
        order_key, next_key = jax.random.split(state.key)
        return decision_batches(order_key, params), next_key

    if new_orders:
        batches, next_key = jax.lax.cond(t % params.decisions_per_epoch == 0, next_epoch,
                                         lambda: (state.batches, state.key))
    else:
        batches, next_key = state.batches, state.key
    new_state = EnvState(student, batches, next_key, t, jnp.float32(val_loss), jnp.float32(val_accuracy))
    info = {"train_loss": losses.mean(), "val_loss": new_state.val_loss, "val_accuracy": new_state.val_accuracy,
            "evaluated": evaluated, "selection": weights.mean(axis=(0, 1))}
    return new_state, jnp.float32(reward), done, info
