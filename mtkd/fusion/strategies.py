"""Fusion strategies: how much each teacher counts on each batch or example.

A strategy maps one batch, `StrategyInput`, to per-example teacher weights (B, K).
Strategies are built by name from a registry, so training loops never branch on names.
A name may carry an argument after a colon, e.g. `single:cnn` or `random:0.5`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.errors import ConfigError
from mtkd.registry import Registry



class StrategyInput(NamedTuple):
    """What a strategy sees of one training batch.

    key: a PRNG key for this batch; teacher_logits: (K, B, C); labels: (B,); student_logits:
    (B, C) before the update, or None unless the strategy sets `needs_student`; progress: scalar
    in [0, 1], the fraction of training done.

    Given only to strategies that carry state (`FusionStrategy.init_state`, e.g. MMKD's meta
    step, which trains through the student): inputs (B, ...) the batch; student_params and
    student_apply(params, x) -> logits, the student as a pure function; step, the batch's index
    in the epoch (the same for every vmapped seed, so `lax.cond` on it stays a branch).
    """

    key: jax.Array
    teacher_logits: jax.Array
    labels: jax.Array
    student_logits: jax.Array | None
    progress: jax.Array
    inputs: jax.Array | None = None
    student_params: Any = None
    student_apply: Callable | None = None
    step: jax.Array | None = None


class StrategyShapes(NamedTuple):
    """What a stateful strategy's `init_state` needs to size its state for one run."""

    num_teachers: int
    num_classes: int
    input_shape: tuple[int, ...]
    input_dtype: Any
    batch_size: int
    num_batches: int


WeightFn = Callable[[StrategyInput], jax.Array]


@dataclasses.dataclass(frozen=True)
class StrategyContext:
    """What a strategy may know about the pool when it is built (never test-split numbers)."""

    teacher_names: Sequence[str]
    teacher_val_accuracy: Sequence[float]
    options: Mapping[str, object] = dataclasses.field(default_factory=dict)

    @property
    def num_teachers(self) -> int:
        return len(self.teacher_names)


@dataclasses.dataclass(frozen=True)
class FusionStrategy:
    """`weights(batch: StrategyInput) -> (B, K)` non-negative per-example teacher weights.

    A strategy that learns while the student trains (MMKD, MTKD-RL) sets `init_state(key,
    StrategyShapes) -> state` and `stateful_weights(state, batch) -> (weights, state)` instead of
    `weights`, and optionally `end_epoch(state) -> state`; the trainer carries the state beside
    the student's (`mtkd.distill.steps.FitState`), one per vmapped seed.
    """

    name: str
    weights: WeightFn | None
    uses_teachers: bool = True
    needs_student: bool = False
    init_state: Callable[[jax.Array, StrategyShapes], Any] | None = None
    stateful_weights: Callable[[Any, StrategyInput], tuple[jax.Array, Any]] | None = None
    end_epoch: Callable[[Any], Any] | None = None

    @property
    def stateful(self) -> bool:
        return self.init_state is not None

    def weights_and_state(self, state, batch: StrategyInput):
        """(weights (B, K), the next state); a stateless strategy passes its state through."""
        if self.stateful:
            return self.stateful_weights(state, batch)
        return self.weights(batch), state

    def finish_epoch(self, state):
        return self.end_epoch(state) if self.end_epoch is not None else state


def require_stateless(strategy: FusionStrategy, trainer: str) -> None:
    """Trainers that do not carry a strategy state refuse one that needs it, before any work."""
    if strategy.stateful:
        raise ConfigError(f"strategy {strategy.name!r} learns during training and is supported by the "
                          f"plain distillation trainer only, not by {trainer}")


STRATEGIES: Registry[Callable[[StrategyContext, str | None], FusionStrategy]] = Registry("fusion strategy")


def make_strategy(spec: str, context: StrategyContext) -> FusionStrategy:
    """Builds the strategy named by `spec` ("uniform", "single:NAME", ...) for a pool."""
    name, _, argument = spec.partition(":")
    return STRATEGIES.get(name)(context, argument or None)


def _constant(name: str, mu: np.ndarray, uses_teachers: bool = True) -> FusionStrategy:
    mu = jnp.asarray(mu, jnp.float32)

    def weights(batch: StrategyInput):
        return jnp.broadcast_to(mu, (batch.labels.shape[0], mu.shape[0]))

    return FusionStrategy(name, weights, uses_teachers)


def no_argument(name: str, argument: str | None) -> None:
    if argument is not None:
        raise ConfigError(f"strategy {name!r} takes no argument, got {name}:{argument}")


def _teacher_index(context: StrategyContext, teacher: str, spec: str) -> int:
    if teacher not in context.teacher_names:
        raise ConfigError(f"strategy {spec!r} names no teacher of the pool; teachers: "
                          f"{', '.join(context.teacher_names)}")
    return list(context.teacher_names).index(teacher)


@STRATEGIES.register("none")
def none_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """The student alone: every teacher skipped, hard labels only."""
    no_argument("none", argument)

    def weights(batch: StrategyInput):
        # Shaped by the batch, not the pool: training without teachers passes K = 0 of them.
        return jnp.zeros((batch.labels.shape[0], batch.teacher_logits.shape[0]))

    return FusionStrategy("none", weights, uses_teachers=False)


@STRATEGIES.register("uniform")
def uniform_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """Every teacher with weight 1: the plain ensemble average."""
    no_argument("uniform", argument)
    return _constant("uniform", np.ones(context.num_teachers))


@STRATEGIES.register("single")
def single_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """`single:NAME`: only the named teacher."""
    if argument is None:
        raise ConfigError("strategy 'single' needs a teacher name: single:NAME")
    mu = np.zeros(context.num_teachers)
    mu[_teacher_index(context, argument, f"single:{argument}")] = 1.0
    return _constant(f"single:{argument}", mu)


@STRATEGIES.register("best_single")
def best_single_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """The teacher with the highest validation accuracy (ties: the first in the pool)."""
    no_argument("best_single", argument)
    mu = np.zeros(context.num_teachers)
    mu[int(np.argmax(context.teacher_val_accuracy))] = 1.0
    return _constant("best_single", mu)


@STRATEGIES.register("weighted")
def weighted_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """Fixed weights mu: `weighted:0.5,1,2` gives them in pool order; plain `weighted` uses the
    teachers' validation accuracies (all of them 0, as on a tiny or random validation split: equal
    weights, the limit of equal accuracies)."""
    if argument is None:
        mu = np.asarray(context.teacher_val_accuracy, dtype=np.float64)
        if mu.size and np.all(mu == 0):
            mu = np.ones_like(mu)
    else:
        try:
            mu = np.asarray([float(v) for v in argument.split(",")])
        except ValueError:
            raise ConfigError(f"weighted:{argument}: weights must be numbers separated by commas") from None
    if mu.shape != (context.num_teachers,):
        raise ConfigError(f"weighted strategy got {mu.size} weights for a pool of "
                          f"{context.num_teachers} teachers")
    if np.any(mu < 0) or not np.all(np.isfinite(mu)) or mu.sum() <= 0:
        raise ConfigError(f"weighted strategy needs finite non-negative weights with a positive sum, got {mu.tolist()}")
    return _constant("weighted" if argument is None else f"weighted:{argument}", mu)


@STRATEGIES.register("confidence")
def confidence_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """Per-example weights `softmax_k(-CE_k(y))`: a teacher that is more confident in the true
    label counts more on that example (the idea behind AE-KD / CA-MKD)."""
    no_argument("confidence", argument)

    def weights(batch: StrategyInput):
        log_probs = jax.nn.log_softmax(batch.teacher_logits, axis=-1)  # (K, B, C)
        true_log_prob = jnp.take_along_axis(log_probs, batch.labels[None, :, None], axis=-1)[..., 0]
        return jax.nn.softmax(true_log_prob.T, axis=-1)  # softmax of -CE over teachers: (B, K)

    return FusionStrategy("confidence", weights)


@STRATEGIES.register("random")
def random_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """`random:p` (default p = 0.5): each teacher selected with probability p per batch."""
    probability = 0.5 if argument is None else float(argument)
    if not 0.0 <= probability <= 1.0:
        raise ConfigError(f"random strategy needs a probability in [0, 1], got {probability}")

    def weights(batch: StrategyInput):
        num_teachers = batch.teacher_logits.shape[0]
        mask = jax.random.bernoulli(batch.key, probability, (num_teachers,))
        return jnp.broadcast_to(mask.astype(jnp.float32), (batch.labels.shape[0], num_teachers))

    return FusionStrategy("random" if argument is None else f"random:{argument}", weights)
