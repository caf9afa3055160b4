"""The selector's own variance: the rl rows of an ablation config run with several selector seeds.

Student seed s trains beside selector seed `agent_seed + s`; each selector draws its credit
rounds' batch orders from its own key, so selector seeds change what the selector measures and
learns. This runs the config's `rl` strategies once per `[rl] agent_seed` in `--agent-seeds`
(every other option as in the config), each into OUT/agent_seed_A/, and prints test accuracy over
all selector x student seeds (mean +- std), the spread of the per-selector-seed means, and each
teacher's mean selection.

    python experiments/selector_seeds.py --config experiments/misleading_pool.toml --out runs/selector_seeds
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from mtkd.ablation.config import load_ablation_config
from mtkd.ablation.run import run_ablation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="an ablation config (TOML or YAML)")
    parser.add_argument("--out", required=True, help="output directory (one folder per selector seed)")
    parser.add_argument("--agent-seeds", default="0,1,2", help="selector seeds, comma-separated (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="start the runs again")
    args = parser.parse_args()

    base = load_ablation_config(args.config)
    strategies = tuple(s for s in base.strategies if s.partition(":")[0] == "rl")
    if not strategies:
        parser.error(f"{args.config} lists no rl strategy")
    results: dict[str, list[dict]] = {s: [] for s in strategies}
    for agent_seed in (int(a) for a in args.agent_seeds.split(",")):
        sections = {**base.sections, "rl": {**base.section("rl"), "agent_seed": agent_seed}}
        config = dataclasses.replace(base, strategies=strategies, sections=sections)
        for row in run_ablation(config, Path(args.out) / f"agent_seed_{agent_seed}", overwrite=args.overwrite):
            results[row["strategy"]].append(row)
    for strategy, rows in results.items():
        accuracy = np.asarray([row["test_accuracy"] for row in rows]) * 100  # (selector seeds, student seeds)
        per_selector = accuracy.mean(axis=1)
        print(f"{strategy}: test {accuracy.mean():.2f} +- {accuracy.std():.2f} over {accuracy.size} runs "
              f"({len(rows)} selector seeds x {accuracy.shape[1]} student seeds); selector-seed means "
              + ", ".join(f"{m:.2f}" for m in per_selector) + f" (std {per_selector.std():.2f})")
        teachers = rows[0]["mean_selection"]
        print("  mean selection: " + ", ".join(
            f"{t} {np.mean([np.mean(row['mean_selection'][t]) for row in rows]):.3f}" for t in teachers))


if __name__ == "__main__":
    main()
