"""The selector's accuracy/cost curve: the `rl` row of an ablation config under several `[rl]`
settings and selector seeds, each paired with the rows of a finished run of the same config.

For every `--set` (comma-separated `key=value` pairs over `[rl]`, values in TOML syntax) and
every selector seed in `--agent-seeds`, the config's `rl` row runs into OUT/SETTING/agent_seed_A/.
The table gives, per setting: the row's seconds against the reference run's `uniform` row, the
population's size, the test accuracy over every selector x student seed (mean +- sample std), and
the paired difference against each row of `--against` (per student seed, averaged over selector
seeds first: mean +- standard error over student seeds), and each teacher's mean weight.

    python experiments/selector_sweep.py --config experiments/misleading_pool.toml \\
        --reference runs/misleading --out runs/sweep --set population=8 --set population=16
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import tomllib
from pathlib import Path

import numpy as np

from mtkd.ablation.config import load_ablation_config
from mtkd.ablation.run import run_ablation


def parse_setting(text: str) -> dict:
    """`a=1,b="x,y"` -> {"a": 1, "b": "x,y"}: pairs split at the commas that start a new key."""
    parts = re.split(r",\s*(?=[A-Za-z_]\w*\s*=)", text)
    return tomllib.loads("\n".join(part.strip() for part in parts if part.strip())) if text else {}


def paired(rl: np.ndarray, base: np.ndarray) -> tuple[float, float]:
    """rl (selector seeds, student seeds), base (student seeds): mean and standard error of the
    per-student-seed difference (selector seeds averaged first)."""
    d = rl.mean(axis=0) - base
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="an ablation config with an rl strategy")
    parser.add_argument("--reference", required=True, type=Path, help="a finished run of the same config (results.json)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--set", action="append", default=[], dest="settings", help="[rl] overrides, e.g. population=8")
    parser.add_argument("--agent-seeds", default="0,1,2")
    parser.add_argument("--against", default="uniform,weighted,confidence,ebkd,ca_mkd,ae_kd,best_subset",
                        help="rows of the reference run to pair with (those present)")
    parser.add_argument("--name", default="rl", help="the rl row to run (rl or rl:per_example)")
    parser.add_argument("--timed-beside", default=None, metavar="ROW",
                        help="also run ROW (e.g. uniform) in each run, before the rl row, and give the cost as the rl "
                             "row's seconds over ROW's there: both compiled in one process, so neither meets a "
                             "program the other compiled or a cache the reference run filled")
    args = parser.parse_args()

    base = load_ablation_config(args.config)
    reference = {row["strategy"]: row for row in json.loads((args.reference / "results.json").read_text())["rows"]}
    against = [n for n in args.against.split(",") if n in reference]
    settings = args.settings or [""]
    print(f"| setting | students | seconds | x uniform | test % | " + " | ".join(f"- {n}" for n in against)
          + " | mean weights |")
    print("|" + " --- |" * (6 + len(against)))
    for setting in settings:
        rows, beside = [], []
        for agent_seed in (int(a) for a in args.agent_seeds.split(",")):
            section = {**base.section("rl"), **parse_setting(setting), "agent_seed": agent_seed}
            strategies = (args.timed_beside, args.name) if args.timed_beside else (args.name,)
            config = dataclasses.replace(base, strategies=strategies, sections={**base.sections, "rl": section})
            folder = args.out / (setting.replace("=", "").replace(",", "_").replace('"', "") or "default")
            done = run_ablation(config, folder / f"agent_seed_{agent_seed}", resume=True)
            rows += [r for r in done if r["strategy"] == args.name]
            beside += [r["seconds"] for r in done if r["strategy"] == args.timed_beside]
        accuracy = 100 * np.asarray([r["test_accuracy"] for r in rows])
        seconds = float(np.mean([r["seconds"] for r in rows]))
        # Per run when timed beside a row of its own, else against the reference run's uniform row.
        ratio = float(np.mean([r["seconds"] / b for r, b in zip(rows, beside)])) if beside else \
            seconds / reference["uniform"]["seconds"]
        cells = []
        for name in against:
            mean, se = paired(accuracy, 100 * np.asarray(reference[name]["test_accuracy"]))
            cells.append(f"{mean:+.2f} ± {se:.2f}")
        weights = ", ".join(f"{t} {np.mean([np.mean(r['mean_selection'][t]) for r in rows]):.2f}"
                            for t in rows[0]["mean_selection"])
        choices = [r.get("final_choice") for r in rows if r.get("final_choice")]
        if choices:  # which final candidate each selector seed reported
            weights += "; reported: " + ", ".join(f"{c} x{choices.count(c)}" for c in dict.fromkeys(choices))
        print(f"| {setting or 'default'} | {rows[0].get('population_students', '-')} | {seconds:.1f} | "
              f"{ratio:.1f} | {accuracy.mean():.2f} ± {accuracy.std(ddof=1):.2f} | "
              + " | ".join(cells) + f" | {weights} |", flush=True)


if __name__ == "__main__":
    main()
