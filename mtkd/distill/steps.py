"""Pure, jit-able pieces of student training: one update, one epoch, evaluation.

All functions here take the model as an `nnx.split` graph definition plus a parameter state,
so that they compose with `jax.jit`, `jax.lax.scan` and `jax.vmap` (one student per seed).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mtkd.distill.objective import cross_entropy, distillation_loss
from mtkd.fusion.soft_targets import fuse_soft_targets
from mtkd.fusion.strategies import StrategyInput
from mtkd.models.apply import apply_model, predict, train_forward  # noqa: F401  (re-exported: the trainer's callers use them)
from mtkd.models.state import join_trainable, split_trainable


class StudentState(NamedTuple):
    """`params` is the model's whole `nnx.split` state (with BatchNorm's running statistics, if it
    has any); `opt_state` covers its `nnx.Param` part only (`mtkd.models.state.trainable`)."""

    params: Any
    opt_state: Any


def make_train_step(graphdef, optimizer: optax.GradientTransformation, alpha: float, temperature: float):
    """Returns `step(state, x, y, teacher_logits (K, B, C), weights (B, K)) -> (state, loss)`."""
    target_step = make_target_step(graphdef, optimizer, alpha, temperature)

    def step(state: StudentState, x, y, teacher_logits, weights):
        target, total_weight = fuse_soft_targets(teacher_logits, weights, temperature)
        return target_step(state, x, y, target, total_weight > 0)

    return step


def make_target_step(graphdef, optimizer: optax.GradientTransformation, alpha: float, temperature: float):
    """Returns `step(state, x, y, target (B, C), has_target (B,)) -> (state, loss)`: one update
    towards a fused target already computed (`make_train_step` fuses it from teacher logits)."""

    def step(state: StudentState, x, y, target, has_target):
        params, stats = split_trainable(state.params)

        def loss_fn(params):
            (logits, _), updated = train_forward(graphdef, join_trainable(params, stats), x)
            return distillation_loss(logits, y, target, has_target, alpha, temperature), updated

        (loss, updated), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        # The running statistics this batch updated, with the parameters the loss was taken at.
        updated = join_trainable(params, split_trainable(updated)[1])
        return apply_gradients(optimizer, state._replace(params=updated), grads), loss

    return step


def apply_gradients(optimizer: optax.GradientTransformation, state: StudentState, grads) -> StudentState:
    """One optimiser step on the parameters (`grads` covers them only); running statistics pass
    through unchanged."""
    params, stats = split_trainable(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, params)
    return StudentState(join_trainable(optax.apply_updates(params, updates), stats), opt_state)


def epoch_batches(key, num_examples: int, batch_size: int) -> jax.Array:
    """A fresh permutation cut into full batches: (num_batches, batch_size) indices.

    The last partial batch is dropped (a different remainder each epoch), so every step has
    the same shape and the epoch is one `lax.scan`.
    """
    num_batches = num_examples // batch_size
    return jax.random.permutation(key, num_examples)[: num_batches * batch_size].reshape(num_batches, batch_size)


AUGMENT_STREAM = 7  # fold_in of a step's key for its augmentation


class FitState(NamedTuple):
    """What `make_epoch`'s epoch carries: the student, and the strategy's own state (None for a
    strategy that does not learn)."""

    student: StudentState
    fusion: Any = None


def scan_batches(state, key, x, y, teacher_logits, progress, batch_size: int, strategy, graphdef,
                 student_params, update, fusion_state=None, augment=None):
    """One epoch's batch loop, shared by every trainer: a fresh permutation cut into batches, the
    strategy's per-example weights on each, then `update(state, index, batch_teachers, weights,
    inputs) -> (state, metrics dict)`, all in one `lax.scan`. `inputs` are the batch's x, passed
    through `augment(key, x)` (`mtkd.augment`) from a key of the step's own when one is given.

    `student_params(state)` gives the student's parameters, whose logits are computed for the
    strategy only when it asks (`needs_student`). A stateful strategy's `fusion_state` is carried
    through the batches and finished at the epoch's end. Returns the state, the strategy state and
    the mean over batches of each metric, plus "selection" (K,), the mean weight of each teacher.
    """
    order_key, strategy_key = jax.random.split(key)
    batches = epoch_batches(order_key, x.shape[0], batch_size)
    step_keys = jax.random.split(strategy_key, batches.shape[0])
    # Built here, not from an argument, so it stays unbatched under the seeds' vmap.
    step_index = jnp.arange(batches.shape[0])

    def student_apply(params, inputs):  # as the training step sees the student (batch statistics)
        return train_forward(graphdef, params, inputs)[0][0]

    def body(carry, inputs):
        state, fusion = carry
        index, step_key, step = inputs
        batch_teachers = teacher_logits[:, index]
        params = student_params(state)
        # Folded from the strategy's key, which stays as it was without augmentation.
        inputs = x[index] if augment is None else augment(jax.random.fold_in(step_key, AUGMENT_STREAM), x[index])
        student_logits = student_apply(params, inputs) if strategy.needs_student else None
        batch = StrategyInput(step_key, batch_teachers, y[index], student_logits, progress)
        if strategy.stateful:
            batch = batch._replace(inputs=inputs, student_params=params, student_apply=student_apply, step=step)
        weights, fusion = strategy.weights_and_state(fusion, batch)
        state, metrics = update(state, index, batch_teachers, weights, inputs)
        return (state, fusion), {**metrics, "selection": weights.mean(axis=0)}

    (state, fusion_state), metrics = jax.lax.scan(body, (state, fusion_state), (batches, step_keys, step_index))
    fusion_state = strategy.finish_epoch(fusion_state)
    return state, fusion_state, jax.tree.map(lambda m: m.mean(axis=0), metrics)


def masked_strategy(strategy, teacher_mask):
    """`strategy` with its weights multiplied by a (K,) 0/1 `teacher_mask` (None: unchanged), so
    runs over different teacher subsets are one vmapped batch (the mask may be traced)."""
    if teacher_mask is None:
        return strategy
    if strategy.stateful:
        def stateful_weights(state, batch):
            weights, state = strategy.stateful_weights(state, batch)
            return weights * teacher_mask[None, :], state

        return dataclasses.replace(strategy, stateful_weights=stateful_weights)
    return dataclasses.replace(strategy, weights=lambda batch: strategy.weights(batch) * teacher_mask[None, :])


def init_fit_state(student: StudentState, strategy, key, shapes):
    """The epoch's carry for one seed: the student and, for a stateful strategy, its fresh state."""
    return FitState(student, strategy.init_state(key, shapes) if strategy.stateful else None)


def make_epoch(graphdef, optimizer, strategy, alpha: float, temperature: float, batch_size: int, augment=None):
    """Returns `epoch(state: FitState, key, x, y, teacher_logits (K, N, C), progress) -> (state, metrics)`.

    `strategy.weights(StrategyInput)` gives the per-example teacher weights of each batch
    (the student's logits are computed for it only when it asks); `progress` is the fraction
    of training done at the start of the epoch; `teacher_mask` (K,), if given, multiplies the
    strategy's weights (`masked_strategy`). Metrics hold the mean training loss and the mean
    weight of each teacher. `augment` (`mtkd.augment`), if given, transforms each batch's inputs.
    """
    step = make_train_step(graphdef, optimizer, alpha, temperature)

    def epoch(state: FitState, key, x, y, teacher_logits, progress, teacher_mask=None):
        def update(student, index, batch_teachers, weights, inputs):
            student, loss = step(student, inputs, y[index], batch_teachers, weights)
            return student, {"loss": loss}

        student, fusion, metrics = scan_batches(
            state.student, key, x, y, teacher_logits, progress, batch_size, masked_strategy(strategy, teacher_mask),
            graphdef, lambda student: student.params, update, state.fusion, augment)
        return FitState(student, fusion), metrics

    return epoch


def evaluate(graphdef, params, x, y, batch_size: int):
    """(accuracy, mean cross-entropy) of the model on (x, y)."""
    logits = predict(graphdef, params, x, min(batch_size, x.shape[0]))
    accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == y)
    return accuracy, cross_entropy(logits, y).mean()


def keep_best(best_params, best_accuracy, params, accuracy):
    """Keeps the parameters of the epoch with the highest validation accuracy (earliest on ties)."""
    improved = accuracy > best_accuracy
    chosen = jax.tree.map(lambda b, p: jnp.where(improved, p, b), best_params, params)
    return chosen, jnp.maximum(accuracy, best_accuracy), improved
