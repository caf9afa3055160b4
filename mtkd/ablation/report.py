"""Writing an ablation's results: JSON (the `mtkd distill` format), CSV and Markdown (figures: `figures.py`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from mtkd.distill.results import REFERENCE, mean_std, paired_text
from mtkd.statistics import paired_difference, row_statistics
from mtkd.teachers.leak import leak_message
from mtkd.runs import replace_text


def write_csv(path: Path, rows: list[dict]) -> None:
    """One line per strategy and seed."""
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(["strategy", "seed", "val_accuracy", "test_accuracy", "best_epoch", "seconds", "error"])
    for row in rows:
        if "error" in row:
            writer.writerow([row["strategy"], "", "", "", "", "", row["error"]])
            continue
        # best_epoch: the epoch each seed's reported student comes from; seconds: the whole row's
        # wall time (its seeds train together, as one vmapped program).
        epochs = row.get("best_epoch") or [""] * len(row["seeds"])
        seconds = "" if row.get("seconds") is None else f"{row['seconds']:.2f}"
        for seed, val, test, epoch in zip(row["seeds"], row["val_accuracy"], row["test_accuracy"], epochs):
            writer.writerow([row["strategy"], seed, f"{val:.6f}", f"{test:.6f}", _epoch(epoch), seconds, ""])
    replace_text(path, handle.getvalue())


def _epoch(value) -> str:
    """A seed's best epoch: one number, or (per-example selectors, several students) the list."""
    return str(value) if not isinstance(value, list) else " ".join(map(str, value))


def markdown_table(rows: list[dict], teachers: list[dict], reference: str = REFERENCE) -> str:
    """results.md: per row the validation and test accuracy (mean ± sample std), the test's
    standard error and 95% interval, and the paired test difference from `reference`; then the
    teachers, the validation leak check and the Table 1 question."""
    rows = row_statistics(rows, reference)
    lines = [f"| strategy | validation accuracy % (mean ± sample std) | test accuracy % (mean ± sample std) | "
             f"test SE | test 95% CI | test Δ vs {reference} (paired, ± SE) | seeds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['strategy']} | failed: {row['error']} | | | | | 0 |")
            continue
        test = row["statistics"]["test_accuracy"]
        se = "" if test["se"] is None else f"{100 * test['se']:.2f}"
        interval = "" if test["ci95"] is None else f"[{100 * test['ci95'][0]:.2f}, {100 * test['ci95'][1]:.2f}]"
        paired = "reference" if row["strategy"] == reference else paired_text(row)
        lines.append(f"| {row['strategy']} | {mean_std(row['val_accuracy']).strip()} | "
                     f"{mean_std(row['test_accuracy']).strip()} | {se} | {interval} | {paired} | "
                     f"{len(row['seeds'])} |")
    lines += ["", f"SE: the standard error of the mean over seeds; CI: Student's t interval; Δ: the mean of the "
                  f"per-seed differences from `{reference}` on the seeds both rows have, ± its SE (\"tie\": its "
                  f"95% interval holds zero)."]
    if teachers:
        lines += ["", "| teacher | validation accuracy % | test accuracy % |", "| --- | --- | --- |"]
        lines += [f"| {t['name']} | {100 * t['val_accuracy']:.2f} | {100 * t['test_accuracy']:.2f} |" for t in teachers]
    for extra in (leak_message(teachers or []), best_teacher_question(rows, teachers)):
        if extra:
            lines += ["", extra]
    return "\n".join(lines) + "\n"


def best_teacher_question(rows: list[dict], teachers: list[dict]) -> str | None:
    """RL-KD's Table 1 question: does the most accurate teacher give the most accurate student?
    Both choices are made on validation (the teachers' validation accuracy, the `single:NAME`
    students' mean validation accuracy); the answer speaks only where the paired validation
    difference between the two students is beyond the noise (its 95% interval excludes zero)."""
    singles = {r["strategy"].split(":", 1)[1]: r for r in rows if r["strategy"].startswith("single:") and "error" not in r}
    ranked = [t for t in teachers if t["name"] in singles]
    if len(ranked) < 2:
        return None
    mean_val = {name: float(np.mean(row["val_accuracy"])) for name, row in singles.items()}
    most_accurate = max(ranked, key=lambda t: t["val_accuracy"])["name"]
    best = max(mean_val, key=mean_val.get)
    # The other side of the question: the runner-up when the two agree, the best otherwise.
    other = max((n for n in mean_val if n != best), key=mean_val.get) if best == most_accurate else most_accurate
    difference = paired_difference(singles[best]["val_accuracy"], singles[best]["seeds"],
                                   singles[other]["val_accuracy"], singles[other]["seeds"])
    facts = (f"the most accurate teacher on validation is `{most_accurate}` (its student "
             f"{100 * mean_val[most_accurate]:.2f}% validation), the best teacher to learn from is `{best}` "
             f"({100 * mean_val[best]:.2f}%); `{best}` against `{other}`: ")
    if difference is None or difference["se"] is None:
        return (f"Does the most accurate teacher give the most accurate student? Not answered: {facts}"
                f"{100 * (mean_val[best] - mean_val[other]):+.2f} points from one seed, no spread to judge it by.")
    spread = f"{100 * difference['mean']:+.2f} ± {100 * difference['se']:.2f} points (paired over {difference['n']} seeds)"
    if not difference["beyond_noise"]:
        return (f"Does the most accurate teacher give the most accurate student? Not answered, within the noise: "
                f"{facts}{spread}, a 95% interval that holds zero.")
    verdict = "yes" if best == most_accurate else "no"
    return (f"Does the most accurate teacher give the most accurate student? **{verdict}**, beyond the noise: "
            f"{facts}{spread}.")
