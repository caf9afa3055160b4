"""`results.json` (one row per strategy, one value per seed) and the printed table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mtkd.provenance import now, provenance
from mtkd.runs import replace_text, run_started


def result_row(strategy: str, seeds: Sequence[int], val_accuracy: Sequence[float],
               test_accuracy: Sequence[float], **extra: Any) -> dict[str, Any]:
    return {"strategy": strategy, "seeds": [int(s) for s in seeds],
            "val_accuracy": [float(v) for v in val_accuracy],
            "test_accuracy": [float(v) for v in test_accuracy], **extra}


def write_results(path: str | Path, dataset: str, rows: list[dict], **extra: Any) -> None:
    """results.json: the rows, what the caller adds, and the run's provenance (code, libraries,
    machine; started when the run in this folder first started, finished now)."""
    path = Path(path)
    payload = {"dataset": dataset, "rows": rows, **extra,
               "provenance": provenance(started=run_started(path.parent), finished=now())}
    replace_text(path, json.dumps(payload, indent=2) + "\n")


def mean_std(values: Sequence[float]) -> str:
    """Mean ± the *sample* standard deviation (ddof = 1) in %; one value has no spread: "(n = 1)"."""
    values = np.asarray(values, dtype=np.float64) * 100
    if values.size < 2:
        return f"{values.mean():6.2f} (n = 1)"
    return f"{values.mean():6.2f} ± {values.std(ddof=1):4.2f}"


def format_table(rows: list[dict], teachers: list[dict] | None = None) -> str:
    """A plain-text table: each teacher's test accuracy, then each strategy's mean ± sample std (%)."""
    lines = []
    if teachers:
        lines.append(f"{'teacher':<24} {'val %':>15} {'test %':>15}")
        for teacher in teachers:
            lines.append(f"{teacher['name']:<24} {100 * teacher['val_accuracy']:>15.2f} "
                         f"{100 * teacher['test_accuracy']:>15.2f}")
        if not rows:
            return "\n".join(lines)
        lines.append("")
    lines.append(f"{'student strategy':<24} {'val % (mean±sd)':>15} {'test % (mean±sd)':>15}  seeds")
    for row in rows:
        if "error" in row:
            lines.append(f"{row['strategy']:<24} failed: {row['error']}")
            continue
        lines.append(f"{row['strategy']:<24} {mean_std(row['val_accuracy']):>15} "
                     f"{mean_std(row['test_accuracy']):>15}  {len(row['seeds'])}")
    return "\n".join(lines)
