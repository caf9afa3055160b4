"""The teacher-selection environment as two pure functions (gymnax shape).

`reset(key, params) -> (obs, state)` and `step(key, state, action, params) -> (obs, state,
reward, done, info)`. One decision: the agent sees the observation of the next `n =
updates_per_decision` minibatches (see `envs.observation`), chooses which teachers to distil
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

from envs.observation import observation_features
from envs.params import EnvParams, init_student, student_graphdef
from envs.rewards import REWARDS, RewardInput
from mtkd.optimizers import make_optimizer
from mtkd.distill.objective import calibrated_cross_entropy
from mtkd.distill.steps import StudentState, apply_model, epoch_batches, evaluate, make_train_step, predict

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
    progress = state.t.astype(jnp.float32) / params.num_decisions
    return observation_features(params.teacher_logits_train[:, index], params.y_train[index], student_logits,
                                progress, params.config.temperature, params.config.per_example)


def _optimizer(params: EnvParams):
    cfg = params.config
    return make_optimizer(cfg.optimizer, cfg.learning_rate, cfg.weight_decay)


def reset(key, params: EnvParams):
    """A new episode: (observation, state)."""
    student_key, order_key, next_key = jax.random.split(key, 3)
    student = params.initial_student if params.initial_student is not None else init_student(params, student_key)
    reward = REWARDS.get(params.config.reward)
    if reward.needs_validation and not reward.terminal_only:
        val_loss, val_accuracy = validation_metrics(student, params)
    else:
        val_loss = val_accuracy = jnp.float32(jnp.nan)
    state = EnvState(StudentState(student, _optimizer(params).init(student)), decision_batches(order_key, params),
                     next_key, jnp.int32(0), jnp.float32(val_loss), jnp.float32(val_accuracy))
    return observe(state, params), state


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
    graphdef = student_graphdef(params)
    train_step = make_train_step(graphdef, _optimizer(params), cfg.alpha, cfg.temperature)
    weights = action_weights(action, params)

    def update(student, inputs):
        index, w = inputs
        return train_step(student, params.x_train[index], params.y_train[index],
                          params.teacher_logits_train[:, index], w)

    index = state.batches[state.t % params.decisions_per_epoch]
    student, losses = jax.lax.scan(update, state.student, (index, weights))

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

    batches, next_key = jax.lax.cond(t % params.decisions_per_epoch == 0, next_epoch,
                                     lambda: (state.batches, state.key))
    new_state = EnvState(student, batches, next_key, t, jnp.float32(val_loss), jnp.float32(val_accuracy))
    info = {"train_loss": losses.mean(), "val_loss": new_state.val_loss, "val_accuracy": new_state.val_accuracy,
            "evaluated": evaluated, "selection": weights.mean(axis=(0, 1))}
    return observe(new_state, params), new_state, jnp.float32(reward), done, info
