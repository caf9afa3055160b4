"""The ablation's figures: families, the seed band's numbers, PNG and PDF, the same bytes twice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mtkd.ablation.figures import _curve, family_of, plot_all


def test_rows_fall_into_their_families():
    assert [family_of(n) for n in ("none", "single:cnn", "weighted:1,2", "best_subset", "ae_kd", "mtkd_rl:dynamic",
                                   "rl", "rl:per_example", "dml/peer0:mlp", "dml+teachers", "byot", "dkd_family")] == [
        "baselines", "baselines", "baselines", "baselines", "published fusions", "published fusions",
        "learned selection", "learned selection", "mutual learning and self-distillation",
        "mutual learning and self-distillation", "mutual learning and self-distillation", "loss families"]


def test_the_curve_is_the_mean_and_standard_error_over_seeds_in_percent():
    rng = np.random.default_rng(0)
    values = rng.uniform(0.4, 0.7, size=(3, 4, 2))  # epochs, seeds, peers
    records = [{"epoch": e + 1, "val_accuracy": values[e].tolist()} for e in range(3)]
    epochs, mean, se = _curve(records, peer=1)
    np.testing.assert_array_equal(epochs, [1, 2, 3])
    np.testing.assert_allclose(mean, 100 * values[:, :, 1].mean(axis=1))
    np.testing.assert_allclose(se, 100 * values[:, :, 1].std(axis=1, ddof=1) / 2)
    _, averaged, _ = _curve(records)
    np.testing.assert_allclose(averaged, 100 * values.mean(axis=(1, 2)))


def test_plot_all_writes_png_and_pdf_deterministically(tmp_path):
    (tmp_path / "metrics").mkdir()
    rows = []
    for name in ("none", "uniform", "single:a", "rl"):
        stem = name.replace(":", "_")
        lines = [{"epoch": e, "val_accuracy": [0.5 + 0.01 * e, 0.52 + 0.01 * e],
                  **({"selection": [[1.0, 0.0], [1.0, 1.0]]} if name == "rl" else {})} for e in (1, 2, 3)]
        (tmp_path / "metrics" / f"{stem}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        rows.append({"strategy": name, "seeds": [0, 1], "val_accuracy": [0.6, 0.62], "test_accuracy": [0.6, 0.61]})
    teachers = [{"name": "a", "val_accuracy": 0.9, "test_accuracy": 0.88}, {"name": "b", "val_accuracy": 0.5,
                                                                          "test_accuracy": 0.49}]
    written = plot_all(tmp_path, rows + [{"strategy": "broken", "seeds": [0], "error": "x"}], teachers)
    assert sorted(p.name for p in written) == sorted(f"{stem}.{suffix}" for stem in (
        "final_accuracy", "validation_curves", "selection_frequency") for suffix in ("png", "pdf"))
    first = {p.name: p.read_bytes() for p in written}
    assert all(first[name][:4] == b"%PDF" for name in first if name.endswith(".pdf"))
    plot_all(tmp_path, rows, teachers)
    assert {p.name: p.read_bytes() for p in written} == first
