"""`mtkd quickstart`: from nothing to a table of distilled students on MNIST-1D, offline."""

from __future__ import annotations

import argparse
import sys
import time

from mtkd.data import load_dataset
from mtkd.distill.config import TrainConfig
from mtkd.distill.experiment import build_strategies, run_strategies, teacher_rows
from mtkd.distill.results import format_table, write_results
from mtkd.models import ModelSpec
from mtkd.runs import claim_output_dir
from mtkd.teachers import default_pool_dir, ensure_pool

DEFAULT_STRATEGIES = ("none", "uniform")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "quickstart", help="prepare mnist1d, train the default pool, distill and print a table",
        description="Prepare the embedded mnist1d data set, train (or reuse) the default teacher pool, "
                    "distill the default student (MLP 40-100-100-10) alone and with the uniform teacher "
                    "average over several seeds, and print every teacher's and student's accuracy.")
    parser.add_argument("--out", default="runs/quickstart", help="output directory (default: %(default)s)")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: $MTKD_DATA_DIR or ~/.cache/mtkd/tensorflow_datasets)")
    parser.add_argument("--teachers", default=None,
                        help="teacher pool directory, trained there if empty (default: $MTKD_POOL_DIR/mnist1d-default "
                             "or ~/.cache/mtkd/pools/mnist1d-default)")
    parser.add_argument("--seeds", type=int, default=3, help="student seeds (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs, help="student epochs (default: %(default)s)")
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES),
                        help="comma-separated fusion strategies (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a different run already in --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    config = TrainConfig(epochs=args.epochs)
    seeds = list(range(args.seeds))
    strategy_names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    student = ModelSpec("mlp", {"widths": [100, 100]})
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731

    log("[1/3] preparing mnist1d")
    splits = load_dataset("mnist1d", data_dir=args.data_dir)
    log(f"      {splits.num_train} train / {splits.num_val} validation / {splits.num_test} test examples")
    pool_dir = args.teachers or default_pool_dir("mnist1d", "default")
    log(f"[2/3] teacher pool in {pool_dir}")
    pool = ensure_pool("mnist1d", "default", out_dir=pool_dir, data_dir=args.data_dir)
    strategies = build_strategies(strategy_names, pool)
    out = claim_output_dir(args.out, {"kind": "quickstart", "pool": str(pool_dir), "seeds": seeds,
                                      "config": config.__dict__, "strategies": strategy_names},
                           overwrite=args.overwrite)
    log(f"[3/3] distilling {student.arch} students: {', '.join(strategy_names)} x {len(seeds)} seeds")
    rows, _ = run_strategies(splits, pool, strategies, student, config, seeds, metrics_dir=out / "metrics", log=log)
    teachers = teacher_rows(pool)
    write_results(out / "results.json", "mnist1d", rows, teachers=teachers, student=student.to_dict(),
                  config=config.__dict__)
    print(format_table(rows, teachers))
    print(f"\nresults in {out / 'results.json'} ({time.perf_counter() - started:.0f}s)")
    return 0
