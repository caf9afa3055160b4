"""An ablation's figures, one question each, as PNG and PDF.

- `final_accuracy`: which row ends best? Test accuracy in %, mean ± standard error over seeds,
  rows grouped and coloured by family, the teachers' test accuracy as reference lines.
- `validation_curves`: how does each row learn? Validation accuracy in % per epoch, the mean over
  seeds with a ± standard error band, one panel per family, the teachers' validation accuracy as
  reference lines.
- `selection_frequency`: what does a selector choose? The fraction of batches (or examples) on
  which each teacher was selected, per epoch.

Rows are named exactly as in the tables (`single:cnn`, not the metrics file's `single_cnn`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mtkd.runs import metrics_stem, save_figure

# Families in the order they are drawn, each with its colour map; a row's family is the first
# whose test matches its name.
FAMILIES = (
    ("baselines", "Greys", lambda name: name in ("none", "uniform", "best_single", "best_subset")
     or name.split(":")[0] in ("single", "weighted", "confidence", "random")),
    ("published fusions", "Blues", lambda name: name.split(":")[0] in (
        "ebkd", "ca_mkd", "ae_kd", "mmkd", "mtkd_rl", "val_acc_weighted_confidence")),
    ("learned selection", "Reds", lambda name: name.split(":")[0] == "rl"),
    ("mutual learning and self-distillation", "Greens", lambda name: name.split("/")[0].split(":")[0] in (
        "dml", "dml+teachers", "independent", "byot")),
    ("loss families", "Purples", lambda name: True),
)
FORMATS = ("png", "pdf")


LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))


def family_of(name: str) -> str:
    return next(family for family, _, test in FAMILIES if test(name))


def _colours(names: list[str]) -> dict[str, tuple]:
    """Each row's colour: its family's colour map, shades spread over the family's rows."""
    import matplotlib

    colours = {}
    for family, cmap, _ in FAMILIES:
        members = [n for n in names if family_of(n) == family]
        shades = np.linspace(0.85, 0.4, len(members)) if len(members) > 1 else [0.7]
        for name, shade in zip(members, shades):
            colours[name] = matplotlib.colormaps[cmap](shade)
    return colours


def _read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _curve(records: list[dict], peer: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean %, standard error %) of validation accuracy over seeds. A mutual-learning
    run's values are (seeds, peers): `peer` picks one peer's column, None averages the peers."""
    epochs, means, errors = [], [], []
    for record in records:
        if "val_accuracy" not in record:
            continue
        values = np.asarray(record["val_accuracy"], float) * 100
        if values.ndim == 2:
            values = values[:, peer] if peer is not None else values.mean(axis=1)
        epochs.append(int(record["epoch"]))
        means.append(values.mean())
        errors.append(values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0)
    return np.array(epochs), np.array(means), np.array(errors)


def _teacher_lines(axis, teachers: list[dict], key: str) -> None:
    """Each teacher's accuracy as a dotted line, labelled inside the axes at its left end."""
    for teacher in teachers:
        value = 100 * teacher[key]
        axis.axhline(value, color="0.55", linestyle=":", linewidth=0.9, zorder=0)
        axis.annotate(f"teacher {teacher['name']}", (0.01, value), xycoords=("axes fraction", "data"),
                      xytext=(0, 1.5), textcoords="offset points", fontsize=6.5, color="0.35", va="bottom",
                      bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.4})


def _save(figure, out: Path, stem: str) -> list[Path]:
    paths = []
    for suffix in FORMATS:
        # No creation date in the PDF: the same run writes the same bytes.
        options = {"dpi": 150} if suffix == "png" else {"metadata": {"CreationDate": None}}
        save_figure(figure, out / f"{stem}.{suffix}", **options)
        paths.append(out / f"{stem}.{suffix}")
    return paths


def plot_all(out: Path, rows: list[dict], teachers: list[dict]) -> list[Path]:
    """The three figures of an ablation in `out` (see the module docstring); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [row for row in rows if "error" not in row]
    names = [row["strategy"] for row in done]
    colours = _colours(names)
    written = []

    # Which row ends best.
    figure, axis = plt.subplots(figsize=(max(6.5, 0.42 * len(done) + 3), 4.8))
    means = [100 * np.mean(row["test_accuracy"]) for row in done]
    errors = [100 * np.std(row["test_accuracy"], ddof=1) / np.sqrt(len(row["test_accuracy"]))
              if len(row["test_accuracy"]) > 1 else 0.0 for row in done]
    axis.bar(range(len(done)), means, yerr=errors, capsize=3, color=[colours[n] for n in names],
             edgecolor="0.2", linewidth=0.5)
    axis.set_xticks(range(len(done)), names, rotation=50, ha="right", fontsize=7.5)
    axis.set_ylim(0, 100)
    axis.set(ylabel="test accuracy % (mean ± SE over seeds)",
             title=f"Final test accuracy ({len(done[0]['seeds']) if done else 0} seeds)")
    _teacher_lines(axis, teachers, "test_accuracy")
    handles = [matplotlib.patches.Patch(color=matplotlib.colormaps[cmap](0.7), label=family)
               for family, cmap, _ in FAMILIES if any(family_of(n) == family for n in names)]
    axis.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(0.0, 0.9))
    figure.tight_layout()
    written += _save(figure, out, "final_accuracy")
    plt.close(figure)

    # How each row learns: one panel per family.
    metrics_dir = out / "metrics"
    metrics = {p.stem: _read_metrics(p) for p in sorted(metrics_dir.glob("*.jsonl"))} if metrics_dir.is_dir() else {}
    curves = {}
    for name in names:
        stem, _, peer = metrics_stem(name).partition("_peer")
        records = metrics.get(metrics_stem(name)) or metrics.get(stem)
        if records:
            curves[name] = _curve(records, int(peer.split("_")[0]) if peer and peer.split("_")[0].isdigit() else None)
    families = [family for family, _, _ in FAMILIES if any(family_of(n) == family for n in curves)]
    if families:
        figure, axes = plt.subplots(1, len(families), figsize=(4.2 * len(families) + 1, 4.2), squeeze=False,
                                    sharey=True)
        palette = plt.get_cmap("tab20")  # within a panel (one family), rows need telling apart
        for axis, family in zip(axes[0], families):
            members = [name for name in curves if family_of(name) == family and curves[name][0].size]
            for index, name in enumerate(members):
                epochs, mean, se = curves[name]
                colour = palette((2 * index) % 20 + (index >= 10))
                axis.plot(epochs, mean, color=colour, label=name, linewidth=1.2)
                axis.fill_between(epochs, mean - se, mean + se, color=colour, alpha=0.18, linewidth=0)
            _teacher_lines(axis, teachers, "val_accuracy")
            axis.set(title=family, xlabel="epoch")
            axis.legend(fontsize=6.5, loc="lower right")
        axes[0][0].set_ylabel("validation accuracy % (mean ± SE band over seeds)")
        figure.tight_layout()
        written += _save(figure, out, "validation_curves")
        plt.close(figure)

    # What a selector chooses.
    teacher_names = [t["name"] for t in teachers]
    selective = {name: metrics[metrics_stem(name)] for name in names
                 if name.split(":")[0] in ("rl", "random") and metrics.get(metrics_stem(name))
                 and "selection" in metrics[metrics_stem(name)][0]}
    if selective:
        figure, axes = plt.subplots(1, len(selective), figsize=(5.5 * len(selective), 3.8), squeeze=False)
        for axis, (name, records) in zip(axes[0], selective.items()):
            frequency = np.array([np.mean(np.asarray(r["selection"]), axis=0) for r in records])  # (epochs, K)
            for k in range(frequency.shape[1]):
                label = teacher_names[k] if k < len(teacher_names) else f"teacher {k}"
                # A selector keeps or drops teachers together, so their lines often coincide (all at
                # 100%): each teacher's own dash and width, the first widest, keep every one visible.
                axis.plot(np.arange(1, len(frequency) + 1), 100 * frequency[:, k], label=label,
                          linestyle=LINE_STYLES[k % len(LINE_STYLES)], linewidth=max(1.0, 2.6 - 0.5 * k))
            # A selector reported under a weighting fusion (the population selector's final
            # candidates) draws that fusion's weights, not 0/1 decisions: say which.
            row = next(row for row in done if row["strategy"] == name)
            fusion, choice = row.get("fusion"), row.get("final_choice")
            title = f"{name}: {choice} chosen on validation" if choice else f"{name} (mean over seeds)"
            axis.set(xlabel="epoch", ylabel=f"{fusion} weight, % (mean over seeds)" if fusion not in (None, "uniform")
                     else "selected, % of decisions", title=title, ylim=(-3, 103))
            axis.legend(fontsize=7)
        figure.tight_layout()
        written += _save(figure, out, "selection_frequency")
        plt.close(figure)
    return written


__all__ = ["FAMILIES", "family_of", "plot_all"]
