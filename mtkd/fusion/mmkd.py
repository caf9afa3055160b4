"""MMKD (Zhang, Chen and Wang, ICME 2023): per-example teacher weights from a meta-weight
network, trained by looking ahead through the student's own updates.

- Weight network: `Linear(C (K + 1) -> C (K + 1) / 2) -> ReLU -> Linear(-> K) -> softmax` over
  the detached `[z_1 .. z_K, z_s]` of each example.
- A buffer of 256 hard training examples: whole batches until it is full, then each batch's
  misclassified examples (by the student's logits before its step) overwrite random slots.
- Every 5 batches a meta step: from the student's current parameters, 2 look-ahead SGD steps
  on the weighted KD loss `sum_k mean_i w_ik KL_ik` (T = 4) of the batch, then 1 SGD step on the
  cross-entropy of a meta batch of 64 drawn from the buffer; the meta loss is that meta batch's
  cross-entropy at the resulting parameters, differentiated with respect to the weight network
  through all three unrolled steps (`jax.grad` through `jax.grad`), and the network takes an
  Adam step (lr 1e-3, L2 1e-4). The look-ahead parameters are then dropped: the student is
  "rolled back" by never having been changed.
The authors look ahead with the student's SGD optimizer (lr 0.05, momentum 0.9); mtkd's students
use Adam, so the look-ahead is plain SGD at `mmkd:LR` (default 0.05). Their meta step follows the
batch's real update; here it precedes it, so the batch's weights already use the updated network.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.fusion.strategies import STRATEGIES, FusionStrategy, StrategyContext, StrategyInput, StrategyShapes
from mtkd.fusion.teacher_stats import teacher_student_kl

BUFFER_SIZE = 256
META_BATCH = 64
META_EVERY = 5
LOOK_AHEAD_STEPS = 2
DEFAULT_LOOK_AHEAD_RATE = 0.05
META_OPTIMIZER = optax.chain(optax.add_decayed_weights(1e-4), optax.adam(1e-3))


class WeightNetwork(nnx.Module):
    def __init__(self, num_teachers: int, num_classes: int, rngs: nnx.Rngs):
        size = num_classes * (num_teachers + 1)
        self.hidden = nnx.Linear(size, size // 2, rngs=rngs)
        self.out = nnx.Linear(size // 2, num_teachers, rngs=rngs)

    def __call__(self, teacher_logits, student_logits):
        """(K, B, C), (B, C) -> (B, K) softmax weights; the inputs carry no gradient."""
        inputs = jnp.concatenate([jnp.swapaxes(teacher_logits, 0, 1).reshape(student_logits.shape[0], -1),
                                  student_logits], axis=-1)
        return jax.nn.softmax(self.out(jax.nn.relu(self.hidden(jax.lax.stop_gradient(inputs)))), axis=-1)


@functools.lru_cache(maxsize=None)
def network_graphdef(num_teachers: int, num_classes: int):
    return nnx.split(nnx.eval_shape(lambda: WeightNetwork(num_teachers, num_classes, nnx.Rngs(0))))[0]


class MmkdState(NamedTuple):
    network: Any  # the weight network's parameters (an nnx.State)
    opt_state: Any
    buffer_x: jax.Array  # (256, ...) hard training inputs
    buffer_y: jax.Array  # (256,)
    filled: jax.Array  # how many slots hold examples
    key: jax.Array


def network_weights(network, teacher_logits, student_logits):
    num_teachers, _, num_classes = teacher_logits.shape
    return nnx.merge(network_graphdef(num_teachers, num_classes), network)(teacher_logits, student_logits)


def weighted_kd(network, student_apply, params, inputs, teacher_logits):
    """`sum_k mean_i w_ik KL_ik` at the student parameters `params`, weights from `network`."""
    logits = student_apply(params, inputs)
    return jnp.sum(jnp.mean(network_weights(network, teacher_logits, logits)
                            * teacher_student_kl(teacher_logits, logits), axis=0))


def cross_entropy(student_apply, params, inputs, labels, mask):
    per_example = optax.softmax_cross_entropy_with_integer_labels(student_apply(params, inputs), labels)
    return jnp.sum(per_example * mask) / jnp.maximum(mask.sum(), 1.0)


def meta_loss(network, student_apply, params, inputs, teacher_logits, meta_x, meta_y, meta_mask, rate: float,
              look_ahead_steps: int = LOOK_AHEAD_STEPS):
    """The meta batch's CE after `look_ahead_steps` KD steps and 1 CE step, as a function of the
    weight network (the only thing differentiated).

    As in the authors' code the network's inputs are detached, so from the second look-ahead step
    on, the path "network -> look-ahead parameters -> student logits -> network input" carries no
    gradient; the gradient is exact for everything else.
    """
    sgd = lambda p, g: jax.tree.map(lambda a, b: a - rate * b, p, g)  # noqa: E731
    for _ in range(look_ahead_steps):
        params = sgd(params, jax.grad(weighted_kd, argnums=2)(network, student_apply, params, inputs, teacher_logits))
    params = sgd(params, jax.grad(cross_entropy, argnums=1)(student_apply, params, meta_x, meta_y, meta_mask))
    return cross_entropy(student_apply, params, meta_x, meta_y, meta_mask)


def update_buffer(state: MmkdState, inputs, labels, misclassified, key):
    """Whole batches until the buffer is full, then the misclassified examples into random slots."""
    batch = labels.shape[0]
    filling = state.filled < BUFFER_SIZE
    slots = jnp.where(filling, state.filled + jnp.arange(batch), jax.random.randint(key, (batch,), 0, BUFFER_SIZE))
    write = jnp.where(filling, slots < BUFFER_SIZE, misclassified)
    slots = jnp.where(write, slots, BUFFER_SIZE)  # out of range: dropped
    return state._replace(buffer_x=state.buffer_x.at[slots].set(inputs, mode="drop"),
                          buffer_y=state.buffer_y.at[slots].set(labels, mode="drop"),
                          filled=jnp.minimum(state.filled + jnp.where(filling, batch, 0), BUFFER_SIZE))


def sample_meta_batch(state: MmkdState, key):
    """64 distinct filled slots (fewer, masked, while the buffer holds fewer than 64)."""
    scores = jax.random.uniform(key, (BUFFER_SIZE,)) + (jnp.arange(BUFFER_SIZE) >= state.filled) * 2.0
    slots = jnp.argsort(scores)[:META_BATCH]
    return state.buffer_x[slots], state.buffer_y[slots], (slots < state.filled).astype(jnp.float32)


def make_mmkd(rate: float, name: str) -> FusionStrategy:
    def init_state(key, shapes: StrategyShapes) -> MmkdState:
        network_key, state_key = jax.random.split(key)
        network = nnx.split(WeightNetwork(shapes.num_teachers, shapes.num_classes, nnx.Rngs(params=network_key)))[1]
        return MmkdState(network, META_OPTIMIZER.init(network),
                         jnp.zeros((BUFFER_SIZE,) + tuple(shapes.input_shape), shapes.input_dtype),
                         jnp.zeros((BUFFER_SIZE,), jnp.int32), jnp.int32(0), state_key)

    def meta_step(state: MmkdState, batch: StrategyInput, key):
        meta_x, meta_y, meta_mask = sample_meta_batch(state, key)
        grads = jax.grad(meta_loss)(state.network, batch.student_apply, batch.student_params, batch.inputs,
                                    batch.teacher_logits, meta_x, meta_y, meta_mask, rate)
        updates, opt_state = META_OPTIMIZER.update(grads, state.opt_state, state.network)
        return state._replace(network=optax.apply_updates(state.network, updates), opt_state=opt_state)

    def stateful_weights(state: MmkdState, batch: StrategyInput):
        key, buffer_key, meta_key = jax.random.split(state.key, 3)
        misclassified = jnp.argmax(batch.student_logits, axis=-1) != batch.labels
        state = update_buffer(state._replace(key=key), batch.inputs, batch.labels.astype(jnp.int32),
                              misclassified, buffer_key)
        # `step` is the same for every vmapped seed, so this stays a branch: 1 batch in 5 pays.
        state = jax.lax.cond(batch.step % META_EVERY == 0, lambda s: meta_step(s, batch, meta_key),
                             lambda s: s, state)
        return network_weights(state.network, batch.teacher_logits, batch.student_logits), state

    return FusionStrategy(name, None, needs_student=True, init_state=init_state, stateful_weights=stateful_weights)


@STRATEGIES.register("mmkd")
def mmkd_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """MMKD: a meta-weight network over teacher and student logits, trained every 5 batches by
    looking ahead through the student's updates (`mmkd:LR` sets the look-ahead rate, 0.05)."""
    try:
        rate = DEFAULT_LOOK_AHEAD_RATE if argument is None else float(argument)
    except ValueError:
        raise ConfigError(f"mmkd:{argument}: the look-ahead learning rate must be a positive number") from None
    if not rate > 0:
        raise ConfigError(f"mmkd:{argument}: the look-ahead learning rate must be positive, got {rate}")
    return make_mmkd(rate, "mmkd" if argument is None else f"mmkd:{argument}")
