"""Each credit signal against what whole runs show: the rank correlation between a selector's
per-teacher credit and each teacher's effect in `best_subset`'s table of every subset.

A teacher's *whole-run effect* is its least-squares coefficient when the table's accuracies (each
subset: the mean over the run's seeds, trained for the whole run) are regressed on the subsets'
0/1 masks: what including it does to the final student, averaged over the company it keeps. The
test column is the truth a reader cares about (it is never used to choose anything); the
validation column is what any selector can see.

Credit signals read from finished ablation runs (RUN_DIR holds `best_subset.json`):
- `population`: the population selector's pooled t values (`selector/generations.json` of RUN_DIR
  itself, or of each selector seed's run listed after it);
- `joint`: the half-epoch counterfactual credit of `[rl] procedure = "joint"`, averaged over its
  rounds and seeds (`selector/rl/selector.jsonl` of a run given with `--joint RUN`).

    python experiments/credit_calibration.py --run runs/misleading [SELECTOR_SEED_RUN ...] \
        [--joint runs/misleading_joint] ...
(repeat --run per pool; --joint pairs with the --run before it)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mtkd.agents.population_credit import least_squares_credit


def subset_effects(table: list[dict], names: list[str], column: str) -> np.ndarray:
    masks = np.asarray([[1.0 if n in row["subset"] else 0.0 for n in names] for row in table])
    return least_squares_credit(masks, 100 * np.asarray([row[column] for row in table])).effect


def spearman(a, b) -> float:
    ranks = [np.argsort(np.argsort(np.asarray(x, float))) for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def population_credit(run: Path) -> tuple[list[str], np.ndarray]:
    saved = json.loads((run / "selector" / "generations.json").read_text())
    return saved["key"]["teachers"], np.asarray(saved["generations"][-1]["credit"]["t"])


def joint_credit(run: Path, name: str = "rl") -> tuple[list[str], np.ndarray]:
    rounds = [json.loads(line) for line in (run / "selector" / name / "selector.jsonl").read_text().splitlines()]
    return rounds[0]["teachers"], np.mean([np.asarray(r["credit"]).mean(axis=0) for r in rounds], axis=0)


def report(runs: list[Path], joint: Path | None) -> list[str]:
    run = runs[0]
    table = json.loads((run / "best_subset.json").read_text())["subsets"]
    seeds = [population_credit(r) for r in (runs[1:] or runs)]
    names = seeds[0][0]
    population = np.mean([t for _, t in seeds], axis=0)
    truth = {column: subset_effects(table, names, column) for column in ("test_accuracy", "val_accuracy")}
    lines = [f"## {run}", "", "| teacher | whole-run effect, test (pts) | whole-run effect, val (pts) | "
             f"population t (mean of {len(seeds)}) |"
             + (" joint credit |" if joint else ""), "| --- | --- | --- | --- |" + (" --- |" if joint else "")]
    signals = {"population": population}
    if joint is not None:
        joint_names, signals["joint"] = joint_credit(joint)
        assert joint_names == names, (joint_names, names)
    for k, name in enumerate(names):
        cells = [f"{truth['test_accuracy'][k]:+.2f}", f"{truth['val_accuracy'][k]:+.2f}", f"{population[k]:+.1f}"]
        if joint is not None:
            cells.append(f"{signals['joint'][k]:+.5f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    if len(seeds) > 1:
        per_seed = [spearman(t, truth["test_accuracy"]) for _, t in seeds]
        lines.append(f"- population, each selector seed: Spearman with the test effect "
                     + ", ".join(f"{r:+.2f}" for r in per_seed) + f" (mean {np.mean(per_seed):+.2f})")
    for label, signal in signals.items():
        lines.append(f"- {label}: Spearman with the test effect {spearman(signal, truth['test_accuracy']):+.2f}, "
                     f"with the validation effect {spearman(signal, truth['val_accuracy']):+.2f}")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", required=True, type=Path, nargs="+",
                        help="an ablation run with best_subset, then (optionally) runs of its selector seeds")
    parser.add_argument("--joint", action="append", default=[], type=Path,
                        help="a run of the same pool with [rl] procedure = \"joint\" (pairs with the --run before)")
    args = parser.parse_args()
    joints = args.joint + [None] * (len(args.run) - len(args.joint))
    print("\n".join(line for run, joint in zip(args.run, joints) for line in report(run, joint)))


if __name__ == "__main__":
    main()
