"""The epoch loop of the trainer skeleton (`mtkd.distill.trainer`) and of the joint selector.

Seeds are vmapped inside `run_epoch`. Each seed keeps the parameters of its best validation epoch
(earliest on ties) on the device. The loop does not wait for the device every epoch: each epoch's
few scalars (losses, validation values, whether the epoch improved) stay in an on-device buffer,
read back in one transfer every `sync_every` epochs, at a checkpoint and at the end; then the
NaN check runs, the metrics lines are written and the progress callback sees each epoch. So JAX
dispatches epoch after epoch while the device works (a non-finite loss still stops the run, at
most `sync_every` - 1 epochs later, naming its epoch). The test split is not touched here: the
caller evaluates the returned best parameters once, at the end.

A metrics line is the epoch's record plus `wall_time`: the host's clock (Unix seconds) when the
epoch was handed to the device. With asynchronous dispatch that is within a few epochs of when it
ran; it is the one value a resumed run does not reproduce.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.devices import take_seeds
from mtkd.distributed import is_writer, to_host
from mtkd.distill.steps import keep_best
from mtkd.run_checkpoints import EpochCheckpoints
from mtkd.errors import TrainingDivergedError


# Epochs between reads of the buffered scalars: rare enough that the host stays ahead of the
# device, often enough that progress lines come every few seconds on a CPU.
SYNC_EVERY = 10


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


def _metrics_lines(path: Path) -> int:
    """Complete lines in a metrics file (a line torn by a kill is dropped)."""
    if not path.is_file():
        return 0
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]
    if complete != text:
        path.write_text(complete)
    return complete.count("\n")


def run_epochs(
    state: Any,
    run_epoch: Callable[[Any, jax.Array, jax.Array], tuple[Any, Mapping[str, jax.Array]]],
    run_val: Callable[[Any], Mapping[str, jax.Array]],
    params_of: Callable[[Any], Any],
    epochs: int,
    seeds: Sequence[int],
    on_epoch: Callable[[dict], None] | None = None,
    metrics_path: str | Path | None = None,
    checkpoints: EpochCheckpoints | None = None,
    keep_best_fn: Callable | None = None,
    accuracy_shape: tuple[int, ...] | None = None,
    keep: int | None = None,
    sync_every: int | None = None,
) -> LoopResult:
    """Trains for `epochs` epochs and keeps the best validation epoch of each seed.

    run_epoch(state, keys (S,), progress) -> (state, metrics), metrics["loss"] of shape (S,);
    other metrics are recorded as they are (e.g. "selection" (S, K)). run_val(params) -> a dict
    with "val_accuracy" (S,) (the selection criterion) and any other per-seed values to record.
    params_of(state) is what is kept and returned (e.g. the student and its adapters).

    With `checkpoints`, the loop starts from the newest readable checkpoint there (if any) and
    saves one when due: the state, the best parameters, accuracies and epochs, and the history.
    Epoch keys depend on the epoch's number only, so a resumed loop computes exactly what an
    uninterrupted one does. The metrics file then grows only at checkpoints (it never holds an
    epoch that a resume would compute again), and is appended to on resume.

    Several models per seed (DML's peers): `accuracy_shape` (S, K) and `keep_best_fn(best,
    best_accuracy, params, accuracy) -> (best, best_accuracy, improved)` over all seeds.

    A run padded to fill its devices (`mtkd.devices.SeedPlacement.pad`) passes `keep`, the number
    of seeds asked for: only those are recorded and returned (the padding's epochs still run).

    `sync_every`: epochs whose scalars wait on the device before one read (default: SYNC_EVERY,
    read when the loop starts; see the module's docstring). It changes no result, only when lines
    are written and progress is shown.
    """
    sync_every = sync_every or SYNC_EVERY
    seeds = [int(s) for s in seeds]
    keep = len(seeds) if keep is None else keep
    base_keys = epoch_keys(seeds)
    run_keep_best = jax.jit(keep_best_fn or jax.vmap(keep_best))
    accuracy_shape = tuple(accuracy_shape or (len(seeds),))
    best_params = jax.tree.map(jnp.copy, params_of(state))
    best_accuracy = jnp.full(accuracy_shape, -1.0, jnp.float32)  # not weak-typed: keep_best compiles once
    best_epoch = np.zeros((keep, *accuracy_shape[1:]), dtype=int)  # of the seeds kept
    history: list[dict] = []
    # The host clock (Unix seconds) as each epoch was handed to the device, one per history record:
    # kept beside the history, not in it, so that the numbers a resumed run reproduces exactly
    # (`history`) hold no time. The metrics lines carry both.
    wall_times: list[float | None] = []
    first = 1
    if checkpoints is not None:
        restored = checkpoints.restore({"state": state, "best_params": best_params, "best_accuracy": best_accuracy,
                                        "best_epoch": best_epoch})
        if restored is not None:
            done, arrays, record = restored
            state, best_params = arrays["state"], arrays["best_params"]
            # Uncommitted again (a restore commits it to one device), so that jit may put it beside
            # a state split over several devices.
            best_accuracy = jnp.asarray(to_host(arrays["best_accuracy"]))
            best_epoch, history, first = to_host(arrays["best_epoch"]), list(record["history"]), done + 1
            wall_times = list(record.get("wall_times", [None] * len(history)))  # none in older checkpoints
    written = 0
    if not is_writer():  # in a multi-process run, process 0 writes the metrics
        metrics_path = None
    if metrics_path is not None:
        metrics_path = Path(metrics_path)
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        # On resume the file is appended to. It may hold epochs past the checkpoint restored (when
        # the newest one was unreadable): those are recomputed identically and not written twice.
        written = _metrics_lines(metrics_path) if first > 1 else 0
        if first == 1:
            metrics_path.write_text("")

    def flush_metrics():
        nonlocal written
        if metrics_path is not None and written < len(history):
            with open(metrics_path, "a") as handle:
                handle.writelines(json.dumps({**record, "wall_time": at}) + "\n"
                                  for record, at in zip(history[written:], wall_times[written:]))
            written = len(history)

    pending: list[tuple[int, Any, float]] = []  # (epoch, its scalars still on the device, wall time)

    def read_pending():
        """One transfer for the buffered epochs; then, per epoch, the NaN check, the best epoch, the
        history record and the progress callback."""
        nonlocal best_epoch
        # Gathered from every process; the padding's seeds dropped.
        values = jax.tree.map(lambda value: value[:keep], to_host([scalars for _, scalars, _ in pending]))
        for (epoch, _, dispatched), (metrics, val, improved) in zip(pending, values):
            losses = metrics["loss"]
            if not np.all(np.isfinite(losses)):
                if checkpoints is None:  # the epochs before it, as an unbuffered loop would have written
                    flush_metrics()
                bad = sorted({seeds[i] for i in np.argwhere(~np.isfinite(losses))[:, 0]})
                raise TrainingDivergedError(f"training loss became {losses[~np.isfinite(losses)][0]} at epoch "
                                            f"{epoch} (seed {', '.join(map(str, bad))}); lower the learning rate")
            best_epoch = np.where(improved, epoch, best_epoch)
            record = {"epoch": epoch, "train_loss": losses.tolist(),
                      **{name: np.asarray(value).tolist() for name, value in val.items()},
                      **{name: np.asarray(value).tolist() for name, value in metrics.items() if name != "loss"}}
            history.append(record)
            wall_times.append(dispatched)
            if on_epoch:
                on_epoch(record)
        pending.clear()

    flush_metrics()  # lines a kill kept out of the file, from the restored history
    for epoch in range(first, epochs + 1):
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(base_keys, epoch)
        state, metrics = run_epoch(state, keys, jnp.float32((epoch - 1) / epochs))
        val = run_val(params_of(state))
        best_params, best_accuracy, improved = run_keep_best(best_params, best_accuracy, params_of(state),
                                                             val["val_accuracy"])
        pending.append((epoch, (metrics, val, improved), round(time.time(), 3)))
        # A stop signal (save, then stop), a checkpoint due, or neither; the same on every process.
        decision = checkpoints.decide(epoch) if checkpoints is not None and epoch < epochs else 0
        save = decision != 0
        if save or len(pending) >= sync_every or epoch == epochs:
            read_pending()
        if checkpoints is None:
            flush_metrics()
        elif save:
            checkpoints.save(epoch, {"state": state, "best_params": best_params, "best_accuracy": best_accuracy,
                                     "best_epoch": best_epoch}, {"history": history, "wall_times": wall_times})
            flush_metrics()  # after the checkpoint: the file never runs ahead of what a resume restores
            checkpoints.stop(decision, epoch, epochs)
    flush_metrics()
    if keep < len(seeds):
        best_params = take_seeds(best_params, keep)
    return LoopResult(best_params, best_epoch.tolist(), to_host(best_accuracy)[:keep].tolist(), history)


__all__ = ["LoopResult", "epoch_keys", "run_epochs"]
