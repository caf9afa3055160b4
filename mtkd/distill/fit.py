"""Training several seeds of one student at once, with model selection on validation.

One epoch is one jitted `lax.scan` over batches, vmapped over seeds; the Python loop over
epochs (`mtkd.distill.seed_loop.run_epochs`) only reads back a few scalars per epoch (for
progress, the metrics file and the NaN check). The test split is evaluated once, at the end,
with the parameters of each seed's best validation epoch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtkd.distill.config import TrainConfig
from mtkd.optimizers import make_optimizer
from mtkd.devices import seed_placement
from mtkd.distributed import to_host
from mtkd.distill.seed_loop import run_epochs
from mtkd.distill.steps import StudentState, evaluate, init_fit_state, make_epoch
from mtkd.fusion.strategies import FusionStrategy, StrategyShapes
from mtkd.models import ModelSpec, build_model


@dataclasses.dataclass(frozen=True)
class SplitArrays:
    """Inputs, labels and (optionally) cached teacher logits (K, N, C) of one split."""

    x: Any
    y: Any
    teacher_logits: Any = None

    def with_teachers(self, num_classes: int) -> "SplitArrays":
        if self.teacher_logits is not None:
            return self
        return dataclasses.replace(self, teacher_logits=jnp.zeros((0, self.x.shape[0], num_classes), jnp.float32))


@dataclasses.dataclass
class FitResult:
    """Per seed: the chosen epoch (1-based), its validation accuracy, the test accuracy of its
    parameters, and the per-epoch history. `params` is stacked over seeds."""

    graphdef: Any
    params: Any
    seeds: list[int]
    best_epoch: list[int]
    val_accuracy: list[float]
    test_accuracy: list[float] | None
    history: list[dict]


def init_students(spec: ModelSpec, input_shape, num_classes: int, seeds: Sequence[int]):
    """Graph definition and parameters stacked over seeds (one fresh student per seed)."""
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: build_model(spec, input_shape, num_classes, nnx.Rngs(0))))

    def init(key):
        return nnx.split(build_model(spec, input_shape, num_classes, nnx.Rngs(params=key)))[1]

    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, dtype=jnp.uint32))
    return graphdef, jax.vmap(init)(keys)


def fit(
    spec: ModelSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    train: SplitArrays,
    val: SplitArrays,
    strategy: FusionStrategy,
    config: TrainConfig,
    seeds: Sequence[int],
    test: SplitArrays | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    metrics_path: str | Path | None = None,
    teacher_masks: Any = None,
    checkpoints: Any = None,
    devices: int | None = None,
) -> FitResult:
    """Trains one student per entry of `seeds` (vmapped), keeps each one's best validation epoch
    and evaluates it on `test` once. `teacher_masks` (len(seeds), K) of 0/1, if given, restricts
    run i to the teachers of row i (a seed may then appear once per subset). `checkpoints` (an
    `mtkd.run_checkpoints.EpochCheckpoints`) makes the loop resumable (see `run_epochs`). The seeds
    are split over up to `devices` local devices (default: all; `mtkd.devices.seed_placement`)."""
    seeds = [int(s) for s in seeds]
    placement = seed_placement(len(seeds), devices)
    asked, seeds = seeds, placement.pad(seeds)  # padded to fill the devices; dropped by run_epochs
    graphdef, params = init_students(spec, input_shape, num_classes, seeds)
    optimizer = make_optimizer(config.optimizer, config.learning_rate, config.weight_decay)
    train = train.with_teachers(num_classes)
    batch_size = min(config.batch_size, int(train.x.shape[0]))

    epoch_fn = make_epoch(graphdef, optimizer, strategy, config.alpha, config.temperature, batch_size)
    if teacher_masks is None:
        run_epoch = jax.jit(jax.vmap(epoch_fn, in_axes=(0, 0, None, None, None, None)), donate_argnums=(0,))
    else:
        masks = jnp.asarray(placement.pad(teacher_masks), jnp.float32)
        masked_epoch = jax.jit(jax.vmap(epoch_fn, in_axes=(0, 0, None, None, None, None, 0)), donate_argnums=(0,))
        run_epoch = lambda state, keys, *arrays: masked_epoch(state, keys, *arrays, masks)  # noqa: E731
    run_eval = jax.jit(jax.vmap(lambda p, x, y: evaluate(graphdef, p, x, y, config.eval_batch_size),
                                in_axes=(0, None, None)))

    def validate(params):
        accuracy, loss = run_eval(params, val.x, val.y)
        return {"val_accuracy": accuracy, "val_loss": loss}

    students = StudentState(params, jax.vmap(optimizer.init)(params))
    shapes = StrategyShapes(int(train.teacher_logits.shape[0]), num_classes, tuple(input_shape), train.x.dtype,
                            batch_size, int(train.x.shape[0]) // batch_size)
    # A learning strategy's own randomness: per seed, apart from the student's (fold_in 1, 2).
    strategy_keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 3))(jnp.asarray(seeds, dtype=jnp.uint32))
    state = jax.vmap(lambda student, key: init_fit_state(student, strategy, key, shapes))(students, strategy_keys)
    state = placement.place(state)
    loop = run_epochs(state, lambda state, keys, progress: run_epoch(state, keys, train.x, train.y,
                                                                     train.teacher_logits, progress),
                      validate, lambda state: state.student.params, config.epochs, seeds, on_epoch, metrics_path,
                      checkpoints, keep=len(asked))
    best_params = loop.best_params

    test_accuracy = None
    if test is not None:
        test_accuracy = to_host(run_eval(best_params, test.x, test.y)[0]).tolist()
    return FitResult(graphdef, best_params, asked, loop.best_epoch, loop.val_accuracy, test_accuracy, loop.history)


def unstack(params, index: int):
    """The parameters of one seed out of a stacked state."""
    return jax.tree.map(lambda leaf: leaf[index], params)


def summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std()) if values.size > 1 else 0.0
