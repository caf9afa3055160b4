"""The epoch loop of `mtkd.distill.fit.fit`, for trainers whose epoch function differs.

Same protocol as `fit`: seeds are vmapped inside `run_epoch`; the Python loop over epochs reads
back a few scalars, keeps each seed's parameters of its best validation epoch (earliest on ties),
stops on a non-finite loss, and writes one metrics line per epoch. The test split is not touched
here: the caller evaluates the returned best parameters once, at the end.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.distill.steps import keep_best
from mtkd.errors import TrainingDivergedError


@dataclasses.dataclass
class LoopResult:
    """Best parameters (stacked over seeds), their 1-based epoch and validation accuracy per seed."""

    best_params: Any
    best_epoch: list[int]
    val_accuracy: list[float]
    history: list[dict]


def epoch_keys(seeds: Sequence[int]) -> jax.Array:
    """Per-seed base keys, derived as in `fit` (fold_in 1), so the batch orders match it."""
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 1))(jnp.asarray(seeds, dtype=jnp.uint32))


def run_epochs(
    state: Any,
    run_epoch: Callable[[Any, jax.Array, jax.Array], tuple[Any, Mapping[str, jax.Array]]],
    run_val: Callable[[Any], Mapping[str, jax.Array]],
    params_of: Callable[[Any], Any],
    epochs: int,
    seeds: Sequence[int],
    on_epoch: Callable[[dict], None] | None = None,
    metrics_path: str | Path | None = None,
) -> LoopResult:
    """Trains for `epochs` epochs and keeps the best validation epoch of each seed.

    run_epoch(state, keys (S,), progress) -> (state, metrics), metrics["loss"] of shape (S,);
    other metrics are recorded as they are (e.g. "selection" (S, K)). run_val(params) -> a dict
    with "val_accuracy" (S,) (the selection criterion) and any other per-seed values to record.
    params_of(state) is what is kept and returned (e.g. the student and its adapters).
    """
    seeds = [int(s) for s in seeds]
    base_keys = epoch_keys(seeds)
    run_keep_best = jax.jit(jax.vmap(keep_best))
    best_params = jax.tree.map(jnp.copy, params_of(state))
    best_accuracy = jnp.full((len(seeds),), -1.0, jnp.float32)  # not weak-typed: keep_best compiles once
    best_epoch = np.zeros(len(seeds), dtype=int)
    history = []
    metrics_file = open(metrics_path, "w") if metrics_path else None
    try:
        for epoch in range(1, epochs + 1):
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(base_keys, epoch)
            state, metrics = run_epoch(state, keys, jnp.float32((epoch - 1) / epochs))
            val = run_val(params_of(state))
            best_params, best_accuracy, improved = run_keep_best(best_params, best_accuracy, params_of(state),
                                                                 val["val_accuracy"])
            losses = np.asarray(metrics["loss"])
            if not np.all(np.isfinite(losses)):
                bad = [seeds[i] for i in np.flatnonzero(~np.isfinite(losses))]
                raise TrainingDivergedError(f"training loss became {losses[~np.isfinite(losses)][0]} at epoch "
                                            f"{epoch} (seed {', '.join(map(str, bad))}); lower the learning rate")
            best_epoch = np.where(np.asarray(improved), epoch, best_epoch)
            record = {"epoch": epoch, "train_loss": losses.tolist(),
                      **{name: np.asarray(value).tolist() for name, value in val.items()},
                      **{name: np.asarray(value).tolist() for name, value in metrics.items() if name != "loss"}}
            history.append(record)
            if metrics_file:
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
            if on_epoch:
                on_epoch(record)
    finally:
        if metrics_file:
            metrics_file.close()
    return LoopResult(best_params, best_epoch.tolist(), np.asarray(best_accuracy).tolist(), history)


__all__ = ["LoopResult", "epoch_keys", "run_epochs"]
