"""Statistics over seeds that a paper can quote: mean, sample std, standard error, a 95%
confidence interval (Student's t), and paired differences between two rows on the seeds they share.

Seeds are the unit: each seed's student is one draw. With n seeds the std has n - 1 degrees of
freedom (ddof = 1), the standard error is std / sqrt(n), and the interval is mean ± t(0.975, n - 1)
x SE. One seed has no spread: its std, SE and interval are None. Two rows trained on the same seeds
share their data order and initialisation per seed, so their difference is paired: the spread of
the per-seed differences, which is usually far smaller than either row's own.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def summary(values: Sequence[float]) -> dict[str, Any]:
    """{"n", "mean", "std", "se", "ci95"} of the values (std, se and ci95 None for one value)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    n = int(values.size)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "se": None, "ci95": None}
    mean = float(values.mean())
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "se": None, "ci95": None}
    std = float(values.std(ddof=1))
    se = std / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * se
    return {"n": n, "mean": mean, "std": std, "se": se, "ci95": [mean - half, mean + half]}


def paired_difference(values: Sequence[float], seeds: Sequence[int], reference: Sequence[float],
                      reference_seeds: Sequence[int]) -> dict[str, Any] | None:
    """The summary of `values - reference` over the seeds both rows have (in `seeds`' order), with
    those `seeds` and whether the interval excludes zero (`beyond_noise`); None if they share none."""
    at = {int(seed): float(value) for seed, value in zip(reference_seeds, np.ravel(reference))}
    shared = [(int(seed), float(value)) for seed, value in zip(seeds, np.ravel(values)) if int(seed) in at]
    if not shared:
        return None
    result = summary([value - at[seed] for seed, value in shared])
    result["seeds"] = [seed for seed, _ in shared]
    result["beyond_noise"] = result["ci95"] is not None and (result["ci95"][0] > 0 or result["ci95"][1] < 0)
    return result


def unpaired_difference(values: Sequence[float], reference: Sequence[float]) -> dict[str, Any]:
    """Welch's difference of two means when the seeds do not match: mean, SE and a 95% interval
    with the Welch–Satterthwaite degrees of freedom (None where either side has one value)."""
    a, b = np.asarray(values, np.float64).ravel(), np.asarray(reference, np.float64).ravel()
    mean = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return {"n": [int(a.size), int(b.size)], "mean": mean, "se": None, "ci95": None, "beyond_noise": False}
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1)) if se > 0 else a.size + b.size - 2
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) * se
    return {"n": [int(a.size), int(b.size)], "mean": mean, "se": se, "ci95": [mean - half, mean + half],
            "beyond_noise": bool(mean - half > 0 or mean + half < 0)}


def row_statistics(rows: list[dict], reference: str | None = "uniform") -> list[dict]:
    """Each row (not failed) with `statistics` (the summary of its validation and test accuracy)
    and, when the reference row is there and is another row, `paired` (its difference from the
    reference, per shared seed). The rows given are not changed."""
    by_name = {row["strategy"]: row for row in rows if "error" not in row}
    base = by_name.get(reference) if reference is not None else None
    out = []
    for row in rows:
        if "error" in row:
            out.append(row)
            continue
        row = {**row, "statistics": {key: summary(row[key]) for key in ("val_accuracy", "test_accuracy")}}
        if base is not None and row["strategy"] != reference:
            row["paired"] = {"reference": reference, **{
                key: paired_difference(row[key], row["seeds"], base[key], base["seeds"])
                for key in ("val_accuracy", "test_accuracy")}}
        out.append(row)
    return out


__all__ = ["CONFIDENCE", "paired_difference", "row_statistics", "summary", "unpaired_difference"]
