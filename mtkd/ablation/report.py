"""Writing an ablation's results: JSON (the `mtkd distill` format), CSV, Markdown and PNG plots."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from mtkd.distill.results import mean_std
from mtkd.runs import replace_text, save_figure


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


def markdown_table(rows: list[dict], teachers: list[dict]) -> str:
    lines = ["| strategy | validation accuracy % (mean ± sample std) | test accuracy % (mean ± sample std) | seeds |",
             "| --- | --- | --- | --- |"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['strategy']} | failed: {row['error']} | | 0 |")
        else:
            lines.append(f"| {row['strategy']} | {mean_std(row['val_accuracy']).strip()} | "
                         f"{mean_std(row['test_accuracy']).strip()} | {len(row['seeds'])} |")
    if teachers:
        lines += ["", "| teacher | validation accuracy % | test accuracy % |", "| --- | --- | --- |"]
        lines += [f"| {t['name']} | {100 * t['val_accuracy']:.2f} | {100 * t['test_accuracy']:.2f} |" for t in teachers]
    answer = best_teacher_question(rows, teachers)
    if answer:
        lines += ["", answer]
    return "\n".join(lines) + "\n"


def best_teacher_question(rows: list[dict], teachers: list[dict]) -> str | None:
    """RL-KD's Table 1 question: does the most accurate teacher give the most accurate student?
    Answered from the `single:NAME` rows (mean test accuracy over seeds)."""
    singles = {r["strategy"].split(":", 1)[1]: float(np.mean(r["test_accuracy"]))
               for r in rows if r["strategy"].startswith("single:") and "error" not in r}
    ranked = [t for t in teachers if t["name"] in singles]
    if len(ranked) < 2:
        return None
    most_accurate = max(ranked, key=lambda t: t["test_accuracy"])["name"]
    best_to_learn_from = max(singles, key=singles.get)
    verdict = "yes" if most_accurate == best_to_learn_from else "no"
    return (f"Does the most accurate teacher give the most accurate student? **{verdict}**: the most accurate "
            f"teacher is `{most_accurate}` (student {100 * singles[most_accurate]:.2f}% test), the best teacher "
            f"to learn from is `{best_to_learn_from}` (student {100 * singles[best_to_learn_from]:.2f}% test).")


def _read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_all(out: Path, rows: list[dict], teacher_names: list[str]) -> list[Path]:
    """validation_curves.png, selection_frequency.png (rl and random) and final_accuracy.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    metrics = {p.stem: _read_metrics(p) for p in sorted((out / "metrics").glob("*.jsonl"))} if (out / "metrics").is_dir() else {}

    figure, axis = plt.subplots(figsize=(9, 5.5))
    colours = plt.get_cmap("tab20")
    for index, (name, records) in enumerate(metrics.items()):
        by_epoch: dict[int, list[float]] = {}  # runs of several peers write one record per peer and epoch
        for r in records:
            if "val_accuracy" in r:
                by_epoch.setdefault(int(r.get("epoch", len(by_epoch) + 1)), []).append(float(np.mean(r["val_accuracy"])))
        curve = [float(np.mean(by_epoch[e])) for e in sorted(by_epoch)]
        if curve:  # 20 distinct colours, then a second line style, so every strategy stays readable
            axis.plot(np.arange(1, len(curve) + 1), curve, label=name, color=colours(index % 20),
                      linestyle="-" if index < 20 else "--", linewidth=1.2)
    axis.set(xlabel="epoch", ylabel="validation accuracy (mean over seeds)", title="Validation curves")
    axis.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, out / "validation_curves.png", dpi=120)
    plt.close(figure)
    written.append(out / "validation_curves.png")

    selective = {n: r for n, r in metrics.items() if n.split("_")[0] in ("rl", "random") and r and "selection" in r[0]}
    if selective:
        figure, axes = plt.subplots(1, len(selective), figsize=(6 * len(selective), 4), squeeze=False)
        for axis, (name, records) in zip(axes[0], selective.items()):
            frequency = np.array([np.mean(np.asarray(r["selection"]), axis=0) for r in records])  # (epochs, K)
            for k in range(frequency.shape[1]):
                label = teacher_names[k] if k < len(teacher_names) else f"teacher {k}"
                axis.plot(np.arange(1, len(frequency) + 1), frequency[:, k], label=label)
            axis.set(xlabel="epoch", ylabel="selection frequency", title=name, ylim=(-0.05, 1.05))
            axis.legend(fontsize=7)
        figure.tight_layout()
        save_figure(figure, out / "selection_frequency.png", dpi=120)
        plt.close(figure)
        written.append(out / "selection_frequency.png")

    done = [r for r in rows if "error" not in r]
    figure, axis = plt.subplots(figsize=(max(6, 0.6 * len(done) + 2), 4.5))
    means = [100 * np.mean(r["test_accuracy"]) for r in done]
    stds = [100 * np.std(r["test_accuracy"], ddof=1) if len(r["test_accuracy"]) > 1 else 0.0 for r in done]
    axis.bar(range(len(done)), means, yerr=stds, capsize=4, color="tab:blue")
    axis.set_xticks(range(len(done)), [r["strategy"] for r in done], rotation=45, ha="right", fontsize=8)
    axis.set(ylabel="test accuracy % (mean ± sample std over seeds)", title="Final accuracy")
    if means:
        axis.set_ylim(max(0, min(means) - 10), min(100, max(means) + 5))
    figure.tight_layout()
    save_figure(figure, out / "final_accuracy.png", dpi=120)
    plt.close(figure)
    written.append(out / "final_accuracy.png")
    return written
