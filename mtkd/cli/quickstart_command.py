"""`mtkd quickstart`: from nothing to the full default ablation on MNIST-1D, offline."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from mtkd.cli.options import add_data_dir_option, add_out_option, add_run_options, checkpoint_config_from
from mtkd.config_files import read_config_file

PRESET = Path(__file__).resolve().parent.parent / "ablation" / "presets" / "quickstart.toml"


def register(subparsers) -> None:
    preset = read_config_file(PRESET, "quickstart preset")  # as written; checked when the command runs
    parser = subparsers.add_parser(
        "quickstart", help="prepare mnist1d, train the default pool, run every baseline, print the table",
        description="Prepare the embedded mnist1d data set, train (or reuse) the default teacher pool, then "
                    "run every strategy (" + ", ".join(preset["strategies"]) + ") on the default student "
                    "over several seeds, and write results.json/.csv/.md and plots. "
                    f"The recipe is {PRESET.name} in mtkd/ablation/presets/.")
    add_out_option(parser, "results.json, .csv, .md, metrics/, plots", default="runs/quickstart")
    add_data_dir_option(parser)
    parser.add_argument("--teachers", default=None,
                        help="teacher pool directory, trained there if empty (default: $MTKD_POOL_DIR/mnist1d-default "
                             "or ~/.cache/mtkd/pools/mnist1d-default)")
    parser.add_argument("--seeds", type=int, default=None, help=f"student seeds (default: {preset['seeds']})")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"student epochs (default: {preset['train']['epochs']})")
    parser.add_argument("--strategies", default=None,
                        help="comma-separated strategies to run instead of the preset's list")
    add_run_options(parser, "quickstart run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mtkd import api
    from mtkd.ablation import load_ablation_config
    from mtkd.cli.options import report_failures

    config = load_ablation_config(PRESET)
    changes = {"seeds": args.seeds or config.seeds, "train": config.train.replace(epochs=args.epochs or config.train.epochs),
               "data_dir": args.data_dir, "pool_dir": args.teachers,
               "checkpoint": checkpoint_config_from(args, config.checkpoint)}
    if args.strategies:
        changes["strategies"] = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    result = api.ablate(dataclasses.replace(config, **changes), args.out, overwrite=args.overwrite, resume=args.resume)
    return report_failures(list(result.rows))
