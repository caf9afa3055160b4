"""TensorBoard event files for every run, written from its metrics files with tensorboardX (no
TensorFlow needed).

`OUT/metrics/ROW.jsonl` stays the record of truth (a resume restores it exactly); after every row,
`write_tensorboard(OUT, rows)` rewrites `OUT/tensorboard/ROW/` from it, so the event files always
match it, resumed runs included. Per epoch, each metric is logged per seed (`val_accuracy/seed3`;
a mutual-learning run's per seed and peer) and as the mean over seeds, each teacher's selection
frequency (`selection/cnn`), and the epoch's seconds (from the lines' wall times). The events carry
the epochs' wall times too. View with `tensorboard --logdir OUT/tensorboard`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from mtkd.distributed import is_writer

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
    seeds = {row["strategy"].replace(":", "_").replace("/", "_"): row.get("seeds", []) for row in rows}
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


__all__ = ["FOLDER", "epoch_scalars", "write_tensorboard"]
