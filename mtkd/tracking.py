"""Experiment tracking for every run, written from its metrics files: TensorBoard event files
always (tensorboardX, no TensorFlow needed), and Weights & Biases or MLflow where asked for.

`OUT/metrics/ROW.jsonl` stays the record of truth (a resume restores it exactly); after every row,
`track_run(OUT, rows)` (called by `write_results`) hands each finished row to every tracker.
TensorBoard: `OUT/tensorboard/ROW/` is rewritten from the metrics file, so the event files always
match it, resumed runs included. Per epoch, each metric is logged per seed (`val_accuracy/seed3`;
a mutual-learning run's per seed and peer) and as the mean over seeds, each teacher's selection
frequency (`selection/cnn`), and the epoch's seconds (from the lines' wall times). The events carry
the epochs' wall times too. View with `tensorboard --logdir OUT/tensorboard`.

`MTKD_TRACKERS=wandb,mlflow` (either or both; `pip install 'mtkd[wandb]'` / `'mtkd[mlflow]'`)
sends the same scalars, epoch by epoch, to one W&B or MLflow run per row, named `OUT/ROW`, with
the row's result (`result/test_accuracy_mean`, ...) as its summary; each row is sent once (a stamp in
`OUT/tracking/`). Their own settings come from their own variables (WANDB_PROJECT, WANDB_MODE,
MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME, ...). Trackers are a registry (`TRACKERS`): a plugin
can add one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from mtkd.distributed import is_writer
from mtkd.errors import ConfigError
from mtkd.progress import stderr_line
from mtkd.registry import Registry
from mtkd.runs import metrics_stem

FOLDER = "tensorboard"
PER_SEED = ("train_loss", "val_accuracy", "val_loss")
STAMP = ".written_from"  # the metrics file's size and modification time when its events were written


def _seed_tags(name: str, values: np.ndarray, seeds: Sequence[int]) -> list[tuple[str, float]]:
    """(tag, value) for each seed (and peer) of one metric's values, (seeds,) or (seeds, peers)."""
    tags = []
    for index, per_seed in enumerate(values):
        seed = seeds[index] if index < len(seeds) else index
        if np.ndim(per_seed) == 0:
            tags.append((f"{name}/seed{seed}", float(per_seed)))
        else:
            tags += [(f"{name}/seed{seed}/peer{p}", float(v)) for p, v in enumerate(np.ravel(per_seed))]
    return tags


def epoch_scalars(record: dict, seeds: Sequence[int], teacher_names: Sequence[str],
                  previous_time: float | None) -> list[tuple[str, float]]:
    """The (tag, value) pairs of one metrics line."""
    scalars = []
    for name in PER_SEED:
        if name in record:
            values = np.asarray(record[name], dtype=float)
            scalars += _seed_tags(name, values, seeds) + [(f"{name}/mean", float(values.mean()))]
    frequency = np.asarray(record.get("selection", []), dtype=float)
    if frequency.ndim and frequency.shape[-1] > 0:  # a row without teachers selects none
        frequency = frequency.reshape(-1, frequency.shape[-1]).mean(axis=0)  # over seeds (and examples)
        scalars += [(f"selection/{teacher_names[k] if k < len(teacher_names) else k}", float(f))
                    for k, f in enumerate(frequency)]
    if previous_time is not None and record.get("wall_time") is not None:
        scalars.append(("seconds_per_epoch", float(record["wall_time"]) - previous_time))
    return scalars


def write_tensorboard(out: str | Path, rows: Sequence[dict], teacher_names: Sequence[str] = ()) -> Path | None:
    """Rewrites OUT/tensorboard/ROW/ from every OUT/metrics/ROW.jsonl; returns the folder (None when
    there are no metrics, or on a process that does not write)."""
    from tensorboardX import SummaryWriter

    out = Path(out)
    metrics = sorted((out / "metrics").glob("*.jsonl")) if (out / "metrics").is_dir() else []
    if not metrics or not is_writer():
        return None
    seeds = {metrics_stem(row["strategy"]): row.get("seeds", []) for row in rows}
    root = out / FOLDER
    for path in metrics:
        folder = root / path.stem
        source = f"{path.stat().st_size}:{path.stat().st_mtime_ns}"
        if (folder / STAMP).is_file() and (folder / STAMP).read_text() == source:
            continue  # written from this very metrics file already (an ablation calls this after every row)
        shutil.rmtree(folder, ignore_errors=True)  # rewritten whole: it always matches the metrics file
        writer = SummaryWriter(logdir=str(folder), flush_secs=3600)
        previous = None
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            for tag, value in epoch_scalars(record, seeds.get(path.stem, []), teacher_names, previous):
                writer.add_scalar(tag, value, global_step=int(record["epoch"]), walltime=record.get("wall_time"))
            previous = record.get("wall_time", previous)
        writer.close()
        (folder / STAMP).write_text(source)
    return root


def row_epochs(path: Path, seeds: Sequence[int], teacher_names: Sequence[str]) -> Iterator[tuple[int, dict]]:
    """(epoch, {tag: value}) for every line of one metrics file."""
    previous = None
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            yield int(record["epoch"]), dict(epoch_scalars(record, seeds, teacher_names, previous))
            previous = record.get("wall_time", previous)


def row_summary(row: dict) -> dict[str, float]:
    """A finished row's result: the mean over seeds of each seed's validation and test accuracy at
    its chosen epoch (`result/...`, apart from the per-epoch `val_accuracy/mean`)."""
    return {f"result/{key}_mean": float(np.mean(row[key])) for key in ("val_accuracy", "test_accuracy")
            if row.get(key)}


# A tracker sends one finished row: (run name, its metrics file, the row, its seeds, the teachers).
Tracker = Callable[[str, Path, dict, Sequence[int], Sequence[str]], None]
TRACKERS: Registry[Tracker] = Registry("tracker")
TRACKERS_ENV = "MTKD_TRACKERS"
TRACKING = "tracking"  # OUT/tracking/TRACKER/ROW: the stamps of the rows each tracker was sent


@TRACKERS.register("wandb")
def wandb_row(name: str, path: Path, row: dict, seeds: Sequence[int], teacher_names: Sequence[str]) -> None:
    import wandb

    run = wandb.init(project=os.environ.get("WANDB_PROJECT", "mtkd"), name=name, group=name.rsplit("/", 1)[0],
                     config={"row": row["strategy"], "seeds": list(seeds), "teachers": list(teacher_names)})
    for epoch, scalars in row_epochs(path, seeds, teacher_names):
        run.log(scalars, step=epoch)
    run.summary.update(row_summary(row))
    run.finish()


@TRACKERS.register("mlflow")
def mlflow_row(name: str, path: Path, row: dict, seeds: Sequence[int], teacher_names: Sequence[str]) -> None:
    import mlflow

    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "mtkd"))
    with mlflow.start_run(run_name=name):
        mlflow.log_params({"row": row["strategy"], "seeds": ",".join(map(str, seeds)),
                           "teachers": ",".join(teacher_names)})
        for epoch, scalars in row_epochs(path, seeds, teacher_names):
            mlflow.log_metrics(scalars, step=epoch)
        mlflow.log_metrics(row_summary(row))


def chosen_trackers() -> list[str]:
    """The trackers `MTKD_TRACKERS` names (checked: an unknown name is refused)."""
    names = [name.strip() for name in os.environ.get(TRACKERS_ENV, "").split(",") if name.strip()]
    for name in names:
        if name not in TRACKERS and name != "tensorboard":
            raise ConfigError(f"{TRACKERS_ENV}: unknown tracker {name!r}; known: {', '.join(TRACKERS.names())} "
                              f"(and tensorboard, always written)")
    return [name for name in names if name != "tensorboard"]


def check_trackers() -> None:
    """Before any work: each tracker named is known and its library is installed."""
    import importlib.util

    for name in chosen_trackers():
        if name in ("wandb", "mlflow") and importlib.util.find_spec(name) is None:
            raise ConfigError(f"{TRACKERS_ENV} names {name}, which is not installed: pip install 'mtkd[{name}]'")


def track_run(out: str | Path, rows: Sequence[dict], teacher_names: Sequence[str] = ()) -> None:
    """TensorBoard's view of the run, then each finished row sent once to every tracker chosen."""
    write_tensorboard(out, rows, teacher_names)
    out = Path(out)
    names = chosen_trackers()
    if not names or not is_writer():
        return
    for row in rows:
        stem = metrics_stem(row["strategy"])
        path = out / "metrics" / f"{stem}.jsonl"
        if row.get("error") or not path.is_file():
            continue
        for tracker in names:
            stamp = out / TRACKING / tracker / stem
            source = f"{path.stat().st_size}:{path.stat().st_mtime_ns}"
            if stamp.is_file() and stamp.read_text() == source:
                continue
            try:
                TRACKERS.get(tracker)(f"{out.name}/{stem}", path, row, row.get("seeds", []), teacher_names)
            except Exception as error:  # a service's failure loses no result: results.json is written
                stderr_line(f"warning: tracker {tracker} could not take row {row['strategy']} "
                            f"({type(error).__name__}: {error}); the run's files are complete, and the next "
                            f"time results are written for {out} (a later row, a resume) the row is sent again")
                continue
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(source)


__all__ = ["FOLDER", "TRACKERS", "TRACKERS_ENV", "check_trackers", "epoch_scalars", "row_epochs", "track_run",
           "write_tensorboard"]
