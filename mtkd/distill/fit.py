"""Training several seeds of one student at once, with model selection on validation.

`fit` is the distillation objective's adapter of the trainer skeleton (`mtkd.distill.trainer`):
one epoch is one jitted `lax.scan` over batches, vmapped over seeds; the loop over epochs only
reads back a few scalars per epoch (for progress, the metrics file and the NaN check). The test
split is evaluated once, at the end, with the parameters of each seed's best validation epoch.
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
from mtkd.augment import augmentation
from mtkd.optimizers import training_optimizer
from mtkd.distill.steps import StudentState, evaluate, init_fit_state, make_epoch
from mtkd.progress import stderr_line
from mtkd.distill.trainer import Method, Trained, train_seeds
from mtkd.fusion.strategies import FusionStrategy, StrategyShapes
from mtkd.models import ModelSpec, abstract_model, build_model
from mtkd.models.state import trainable


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
    graphdef = graphdef_of(spec, input_shape, num_classes)
    # One compiled program rather than a hundred eager operations (each its own small program to
    # compile or read back at start-up); the parameters are bitwise the eager ones.
    params = jax.jit(lambda seed_array: student_params(spec, input_shape, num_classes, seed_array))(
        jnp.asarray(seeds, dtype=jnp.uint32))
    return graphdef, params


def student_params(spec: ModelSpec, input_shape, num_classes: int, seed_array):
    """Fresh parameters stacked over the seeds in `seed_array` (uint32); traceable."""
    def init(key):
        return nnx.split(build_model(spec, input_shape, num_classes, nnx.Rngs(params=key)))[1]

    return jax.vmap(init)(jax.vmap(jax.random.key)(seed_array))


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
    train = train.with_teachers(num_classes)
    batch_size = min(config.batch_size, int(train.x.shape[0]))
    optimizer = training_optimizer(config, int(train.x.shape[0]) // batch_size)
    graphdef = graphdef_of(spec, input_shape, num_classes)
    epoch = make_epoch(graphdef, optimizer, strategy, config.alpha, config.temperature, batch_size,
                       augmentation(config.augment))

    shapes = StrategyShapes(int(train.teacher_logits.shape[0]), num_classes, tuple(input_shape), train.x.dtype,
                            batch_size, int(train.x.shape[0]) // batch_size)

    def initial_state(seed_array):
        params = student_params(spec, input_shape, num_classes, seed_array)
        students = StudentState(params, jax.vmap(optimizer.init)(trainable(params)))
        # A learning strategy's own randomness: per seed, apart from the student's (fold_in 1, 2).
        keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 3))(seed_array)
        return jax.vmap(lambda student, key: init_fit_state(student, strategy, key, shapes))(students, keys)

    def build(seeds, placement):
        state = jax.jit(initial_state)(jnp.asarray(seeds, dtype=jnp.uint32))  # one program (see init_students)
        masks = () if teacher_masks is None else (jnp.asarray(placement.pad(teacher_masks), jnp.float32),)
        return Method(epoch, student_evaluation(graphdef, config.eval_batch_size),
                      (train.x, train.y, train.teacher_logits), masks, params_of=lambda state: state.student.params), state

    trained = train_seeds(seeds, build, config.epochs, (val.x, val.y), None if test is None else (test.x, test.y),
                          on_epoch, metrics_path, checkpoints, devices, config.vmap_chunk, stderr_line)
    return fit_result(graphdef, trained)


def graphdef_of(spec: ModelSpec, input_shape, num_classes: int):
    """The student's graph definition, from an abstract model (no parameters are allocated)."""
    return nnx.split(abstract_model(spec, input_shape, num_classes))[0]


def student_evaluation(graphdef, eval_batch_size: int, part: Callable[[Any], Any] = lambda params: params):
    """A `Method.evaluate`: the student's accuracy and cross-entropy (of `part` of the parameters)."""
    def evaluation(params, x, y):
        accuracy, loss = evaluate(graphdef, part(params), x, y, eval_batch_size)
        return {"accuracy": accuracy, "loss": loss}

    return evaluation


def fit_result(graphdef, trained: Trained, params_part: Callable[[Any], Any] = lambda params: params) -> FitResult:
    loop = trained.loop
    test_accuracy = None if trained.test is None else trained.test["accuracy"].tolist()
    return FitResult(graphdef, params_part(loop.best_params), trained.seeds, loop.best_epoch, loop.val_accuracy,
                     test_accuracy, loop.history)


def unstack(params, index: int):
    """The parameters of one seed out of a stacked state."""
    return jax.tree.map(lambda leaf: leaf[index], params)


def summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0.0 for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0
