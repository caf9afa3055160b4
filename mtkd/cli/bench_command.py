"""`mtkd bench`: the cost of cached teachers (and of the selector) per student epoch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mtkd.bench import student_epoch_costs
from mtkd.data import load_dataset
from mtkd.distill.pool_training import ensure_pool
from mtkd.teachers import default_pool_dir
from mtkd.progress import stderr_line


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="time student epochs with and without cached teachers; writes bench.json",
        description="Median wall time of one jitted student epoch on mnist1d without teachers and with the "
                    "K cached teachers of the default pool (and under the learned selector when `agents` is "
                    "installed), their ratio, and student training steps per second.")
    parser.add_argument("--out", required=True, help="directory for bench.json")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory")
    parser.add_argument("--teachers", default=None, help="teacher pool directory (default: the default mnist1d pool)")
    parser.add_argument("--repeats", type=int, default=20, help="timed epochs per case (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    splits = load_dataset("mnist1d", data_dir=args.data_dir)
    pool = ensure_pool("mnist1d", "default", out_dir=args.teachers or default_pool_dir("mnist1d"), data_dir=args.data_dir)
    report = student_epoch_costs(splits, pool, repeats=args.repeats,
                                 log=stderr_line)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0
