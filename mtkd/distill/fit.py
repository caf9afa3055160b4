"""Training several seeds of one student at once, with model selection on validation.

One epoch is one jitted `lax.scan` over batches, vmapped over seeds; the Python loop over
epochs only reads back a few scalars per epoch (for progress, the metrics file and the NaN
check). The test split is evaluated once, at the end, with the parameters of each seed's best
validation epoch.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtkd.distill.config import TrainConfig
from mtkd.distill.optimizers import make_optimizer
from mtkd.distill.steps import StudentState, evaluate, keep_best, make_epoch
from mtkd.errors import TrainingDivergedError
from mtkd.fusion.strategies import FusionStrategy
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
) -> FitResult:
    seeds = [int(s) for s in seeds]
    graphdef, params = init_students(spec, input_shape, num_classes, seeds)
    optimizer = make_optimizer(config.optimizer, config.learning_rate, config.weight_decay)
    train = train.with_teachers(num_classes)
    batch_size = min(config.batch_size, int(train.x.shape[0]))

    epoch_fn = make_epoch(graphdef, optimizer, strategy, config.alpha, config.temperature, batch_size)
    run_epoch = jax.jit(jax.vmap(epoch_fn, in_axes=(0, 0, None, None, None, None)), donate_argnums=(0,))
    run_eval = jax.jit(jax.vmap(lambda p, x, y: evaluate(graphdef, p, x, y, config.eval_batch_size),
                                in_axes=(0, None, None)))
    run_keep_best = jax.jit(jax.vmap(keep_best))

    state = StudentState(params, jax.vmap(optimizer.init)(params))
    best_params = jax.tree.map(jnp.copy, params)
    best_accuracy = jnp.full((len(seeds),), -1.0)
    best_epoch = np.zeros(len(seeds), dtype=int)
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 1))(jnp.asarray(seeds, dtype=jnp.uint32))
    history = []
    metrics_file = open(metrics_path, "w") if metrics_path else None
    try:
        for epoch in range(1, config.epochs + 1):
            epoch_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, epoch)
            progress = jnp.float32((epoch - 1) / config.epochs)
            state, metrics = run_epoch(state, epoch_keys, train.x, train.y, train.teacher_logits, progress)
            val_accuracy, val_loss = run_eval(state.params, val.x, val.y)
            best_params, best_accuracy, improved = run_keep_best(best_params, best_accuracy, state.params, val_accuracy)
            losses = np.asarray(metrics["loss"])
            if not np.all(np.isfinite(losses)):
                bad = [seeds[i] for i in np.flatnonzero(~np.isfinite(losses))]
                raise TrainingDivergedError(f"training loss became {losses[~np.isfinite(losses)][0]} at epoch "
                                            f"{epoch} (seed {', '.join(map(str, bad))}); lower the learning rate")
            best_epoch = np.where(np.asarray(improved), epoch, best_epoch)
            record = {
                "epoch": epoch,
                "train_loss": losses.tolist(),
                "val_accuracy": np.asarray(val_accuracy).tolist(),
                "val_loss": np.asarray(val_loss).tolist(),
                "selection": np.asarray(metrics["selection"]).tolist(),
            }
            history.append(record)
            if metrics_file:
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
            if on_epoch:
                on_epoch(record)
    finally:
        if metrics_file:
            metrics_file.close()

    test_accuracy = None
    if test is not None:
        test_accuracy = np.asarray(run_eval(best_params, test.x, test.y)[0]).tolist()
    return FitResult(graphdef, best_params, seeds, best_epoch.tolist(),
                     np.asarray(best_accuracy).tolist(), test_accuracy, history)


def unstack(params, index: int):
    """The parameters of one seed out of a stacked state."""
    return jax.tree.map(lambda leaf: leaf[index], params)


def summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std()) if values.size > 1 else 0.0
