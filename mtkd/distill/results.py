"""`results.json` (one row per strategy, one value per seed) and the printed table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mtkd.provenance import now, provenance
from mtkd.runs import replace_text, run_started
from mtkd.statistics import row_statistics
from mtkd.tracking import track_run
from mtkd.teachers.leak import leak_message, leak_summary

# The row every other is compared with, seed by seed: the plain average of the teachers.
REFERENCE = "uniform"


def result_row(strategy: str, seeds: Sequence[int], val_accuracy: Sequence[float],
               test_accuracy: Sequence[float], **extra: Any) -> dict[str, Any]:
    return {"strategy": strategy, "seeds": [int(s) for s in seeds],
            "val_accuracy": [float(v) for v in val_accuracy],
            "test_accuracy": [float(v) for v in test_accuracy], **extra}


def write_results(path: str | Path, dataset: str, rows: list[dict], reference: str | None = REFERENCE,
                  **extra: Any) -> None:
    """results.json: the rows, each with its `statistics` (n, mean, sample std, SE, 95% interval)
    and its `paired` difference from the `reference` row on the seeds they share
    (`mtkd.statistics`), what the caller adds, and the run's provenance (code, libraries, machine;
    started when the run in this folder first started, finished now). TensorBoard event files
    follow in the same folder's `tensorboard/`."""
    path = Path(path)
    leak = leak_summary(extra.get("teachers") or [])
    payload = {"dataset": dataset, "reference": reference, "rows": row_statistics(rows, reference), **extra,
               **({"validation_leak": leak} if leak else {}),
               "provenance": provenance(started=run_started(path.parent), finished=now())}
    replace_text(path, json.dumps(payload, indent=2) + "\n")
    # TensorBoard's view of the same run, and any other tracker's (`mtkd.tracking`).
    track_run(path.parent, rows, [teacher["name"] for teacher in extra.get("teachers") or []])


def paired_text(row: dict, key: str = "test_accuracy") -> str:
    """A row's paired difference from the reference in points: "+1.23 ± 0.45" (± its SE), then
    ", tie" where the 95% interval holds zero; "" without one."""
    paired = (row.get("paired") or {}).get(key)
    if not paired:
        return ""
    if paired["se"] is None:
        return f"{100 * paired['mean']:+.2f} (n = 1)"
    return f"{100 * paired['mean']:+.2f} ± {100 * paired['se']:.2f}" + ("" if paired["beyond_noise"] else ", tie")


def mean_std(values: Sequence[float]) -> str:
    """Mean ± the *sample* standard deviation (ddof = 1) in %; one value has no spread: "(n = 1)"."""
    values = np.asarray(values, dtype=np.float64) * 100
    if values.size < 2:
        return f"{values.mean():6.2f} (n = 1)"
    return f"{values.mean():6.2f} ± {values.std(ddof=1):4.2f}"


def format_table(rows: list[dict], teachers: list[dict] | None = None, reference: str = REFERENCE) -> str:
    """A plain-text table: each teacher's accuracy, then each strategy's mean ± sample std (%) and
    its paired difference from `reference` (where that row is there)."""
    lines = []
    if teachers:
        lines.append(f"{'teacher':<24} {'val %':>15} {'test %':>15}")
        for teacher in teachers:
            lines.append(f"{teacher['name']:<24} {100 * teacher['val_accuracy']:>15.2f} "
                         f"{100 * teacher['test_accuracy']:>15.2f}")
        if not rows:
            return "\n".join(lines)
        lines.append("")
    rows = row_statistics(rows, reference)
    shown = any("paired" in row for row in rows)
    paired_head = f"  {'test Δ vs ' + reference + ' (paired ±SE)':>30}" if shown else ""
    lines.append(f"{'student strategy':<24} {'val % (mean±sd)':>15} {'test % (mean±sd)':>15}  seeds{paired_head}")
    for row in rows:
        if "error" in row:
            lines.append(f"{row['strategy']:<24} failed: {row['error']}")
            continue
        paired = f"  {paired_text(row):>30}" if shown else ""
        lines.append(f"{row['strategy']:<24} {mean_std(row['val_accuracy']):>15} "
                     f"{mean_std(row['test_accuracy']):>15}  {len(row['seeds']):>5}{paired}")
    leak = leak_message(teachers or [])
    if leak:
        lines += ["", leak.replace("**", "")]
    return "\n".join(lines)
