"""`mtkd compare RUN_A RUN_B`: the rows of two runs side by side, paired where their seeds match."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = ("test_accuracy", "val_accuracy")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="two runs' rows side by side, with paired differences",
        description="Read RUN_A/results.json and RUN_B/results.json (or, for multi-pool ablations, each "
                    "RUN/<pool>/results.json) and print, for every strategy both have, each run's mean ± sample "
                    "std and the difference B - A: paired over the seeds both ran (mean of the per-seed "
                    "differences ± its standard error, and its 95%% interval), or Welch's unpaired difference "
                    "where they share no seed.")
    parser.add_argument("run_a", metavar="RUN_A", help="a run directory (holding results.json)")
    parser.add_argument("run_b", metavar="RUN_B", help="another run directory")
    parser.add_argument("--metric", choices=METRICS, default="test_accuracy",
                        help="the accuracy compared (default: %(default)s)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the comparison as JSON to FILE")
    parser.set_defaults(func=run)


def results_of(run: str) -> dict[str, dict]:
    """{part: results.json} of a run: "" for its own, else one per pool folder; ConfigError when there is none."""
    from mtkd.errors import ConfigError

    root = Path(run)
    files = {"": root / "results.json"} if (root / "results.json").is_file() else {
        path.parent.name: path for path in sorted(root.glob("*/results.json"))}
    if not files:
        raise ConfigError(f"{run} holds no results.json (nor <pool>/results.json): not a finished run directory")
    results = {}
    for part, path in files.items():
        try:
            results[part] = json.loads(path.read_text())
        except ValueError as error:
            raise ConfigError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(results[part], dict) or not isinstance(results[part].get("rows"), list):
            raise ConfigError(f"{path} is not an mtkd results.json (it has no rows)")
    return results


def compare_rows(rows_a: list[dict], rows_b: list[dict], metric: str) -> list[dict]:
    """One entry per strategy both runs have: each side's summary and the difference B - A."""
    from mtkd.statistics import paired_difference, summary, unpaired_difference

    a_rows = {row["strategy"]: row for row in rows_a}
    entries = []
    for row_b in rows_b:
        row_a = a_rows.get(row_b["strategy"])
        if row_a is None:
            continue
        entry = {"strategy": row_b["strategy"]}
        if "error" in row_a or "error" in row_b:
            entry["error"] = row_a.get("error") or row_b.get("error")
            entries.append(entry)
            continue
        entry["a"], entry["b"] = summary(row_a[metric]), summary(row_b[metric])
        paired = paired_difference(row_b[metric], row_b["seeds"], row_a[metric], row_a["seeds"])
        entry["difference"] = ({"kind": "paired", **paired} if paired is not None and paired["n"] >= 1 else
                               {"kind": "unpaired (Welch)", **unpaired_difference(row_b[metric], row_a[metric])})
        entries.append(entry)
    return entries


def _points(summary: dict) -> str:
    spread = "(n = 1)" if summary["std"] is None else f"± {100 * summary['std']:.2f}"
    return f"{100 * summary['mean']:6.2f} {spread}"


def _difference(d: dict) -> str:
    if d["se"] is None:
        return f"{100 * d['mean']:+.2f} (no spread: one seed)"
    interval = f"[{100 * d['ci95'][0]:+.2f}, {100 * d['ci95'][1]:+.2f}]"
    n = d["n"] if d["kind"] == "paired" else "/".join(map(str, d["n"]))
    verdict = "" if d["beyond_noise"] else ", tie"
    return f"{100 * d['mean']:+.2f} ± {100 * d['se']:.2f} {interval} {d['kind']}, n = {n}{verdict}"


def run(args: argparse.Namespace) -> int:
    from mtkd.errors import ConfigError

    results_a, results_b = results_of(args.run_a), results_of(args.run_b)
    parts = [part for part in results_a if part in results_b]
    if not parts:
        raise ConfigError(f"{args.run_a} and {args.run_b} share no pool: {', '.join(results_a) or 'one run'} "
                          f"against {', '.join(results_b) or 'one run'}")
    report = {}
    for part in parts:
        entries = compare_rows(results_a[part]["rows"], results_b[part]["rows"], args.metric)
        report[part or "run"] = entries
        if part:
            print(f"\npool {part}")
        print(f"{'strategy':<24} {'A ' + args.metric + ' %':>18} {'B ' + args.metric + ' %':>18}  B - A (points)")
        for entry in entries:
            if "error" in entry:
                print(f"{entry['strategy']:<24} failed in one run: {entry['error']}")
                continue
            print(f"{entry['strategy']:<24} {_points(entry['a']):>18} {_points(entry['b']):>18}  "
                  f"{_difference(entry['difference'])}")
        if not entries:
            print("(no strategy in both runs)")
    print("\nA = " + args.run_a + ", B = " + args.run_b + "; ± is the sample std for each run and the standard error "
          "for the difference; [..] its 95% interval; tie: the interval holds zero.")
    if args.json:
        Path(args.json).write_text(json.dumps({"a": args.run_a, "b": args.run_b, "metric": args.metric,
                                               "parts": report}, indent=2) + "\n")
    return 0
