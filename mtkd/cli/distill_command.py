"""`mtkd distill`: train a student from a teacher pool under one or more fusion strategies."""

from __future__ import annotations

import argparse

from mtkd.cli import names
from mtkd.cli.options import (add_data_options, add_device_options, add_out_option, add_run_options,
                              add_student_options,
                              checkpoint_config_from, distributed_config_from, seeds_from, student_spec_from,
                              train_config_from)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "distill", help="distill a student from a teacher pool",
        description="Train a student with alpha * CE + (1 - alpha) * T^2 * KL(fused teachers || student), "
                    "choose each seed's epoch on validation, report test accuracy, write results.json.")
    add_data_options(parser)
    parser.add_argument("--teachers", default=None,
                        help="teacher pool directory (from `mtkd teachers train`; default: the data set's default "
                             "pool, trained and cached on first use)")
    parser.add_argument("--strategy", action="append", default=None,
                        help=f"fusion strategy; repeat for several rows: {names.listed(names.STRATEGIES)} "
                             f"(default: uniform)")
    parser.add_argument("--policy", default=None, help="policy directory for --strategy rl (from `mtkd select train`)")
    parser.add_argument("--greedy", action="store_true", help="with --strategy rl: select greedily instead of sampling")
    parser.add_argument("--losses", default=None, metavar="FILE",
                        help=f"a loss configuration (TOML/YAML with a [[losses]] list of terms: "
                             f"{names.listed(names.LOSS_TERMS)}) used instead of "
                             "alpha*CE + (1-alpha)*T^2*KL; teacher terms are weighted by the strategy")
    add_student_options(parser)
    add_out_option(parser, "results.json, metrics/")
    add_device_options(parser)
    add_run_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mtkd import api
    from mtkd.distributed import is_writer

    result = api.distill(
        student_spec_from(args), args.dataset, args.teachers, strategies=args.strategy or ["uniform"],
        seeds=seeds_from(args), out=args.out, train=train_config_from(args), policy=args.policy,
        greedy=args.greedy, losses=args.losses, data_dir=args.data_dir, val_fraction=args.val_fraction,
        split_seed=args.split_seed, val_indices=args.val_indices, val_split=args.val_split, devices=args.devices,
        checkpoint=checkpoint_config_from(args), overwrite=args.overwrite, resume=args.resume,
        distributed=distributed_config_from(args))
    if not result.reused and is_writer():
        print(result.table())
    return 0
