"""`mtkd ablate --config FILE --out DIR`: run a list of strategies under one protocol."""

from __future__ import annotations

import argparse

from mtkd.cli.options import (add_data_dir_option, add_device_options, add_out_option, add_run_options,
                              checkpoint_config_from, distributed_config_from)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ablate", help="run several strategies over several seeds; write tables and plots",
        description="Run every strategy of a config (TOML or YAML, see experiments/) over S seeds on one data "
                    "set and pool, choose each run's epoch on validation, and write results.json, results.csv, "
                    "results.md and figures (PNG and PDF).")
    parser.add_argument("--config", required=True, help="ablation config file (.toml or .yaml)")
    add_out_option(parser, "results.json, .csv, .md, metrics/, plots")
    parser.add_argument("--seeds", type=int, default=None, help="override the config's number of seeds")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the config's [train] epochs (a shorter recipe, e.g. to try it out)")
    parser.add_argument("--teacher-epochs", type=int, default=None,
                        help="train the pool's teachers for this many epochs (in a folder of their own: "
                             "the pool's default folder plus -teacher-epochsN), e.g. to try a recipe out")
    add_data_dir_option(parser, "override the config's TFDS data directory")
    parser.add_argument("--strategies", default=None, metavar="NAMES",
                        help="comma-separated strategies and [[families]] of the config to run (default: all)")
    add_run_options(parser, "ablation")
    add_device_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mtkd import api
    from mtkd.ablation import load_ablation_config
    from mtkd.cli.options import report_failures

    config = load_ablation_config(args.config)
    # "" (or no flag) keeps every row; "," names none, which the config refuses.
    strategies = [name.strip() for name in args.strategies.split(",") if name.strip()] if args.strategies else None
    result = api.ablate(config, args.out, seeds=args.seeds, epochs=args.epochs, teacher_epochs=args.teacher_epochs,
                        strategies=strategies,
                        data_dir=args.data_dir, devices=args.devices,
                        checkpoint=checkpoint_config_from(args, config.checkpoint), overwrite=args.overwrite,
                        resume=args.resume, distributed=distributed_config_from(args))
    return report_failures(list(result.rows))
