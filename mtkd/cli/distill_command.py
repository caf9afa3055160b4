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
    from mtkd import distributed
    from mtkd.data import load_dataset
    from mtkd.devices import seed_placement
    from mtkd.distill.experiment import bind_pool_loss, build_strategies, read_loss_file, run_strategies, teacher_rows
    from mtkd.distill.pool_training import pool_for
    from mtkd.distill.results import format_table, write_results
    from mtkd.models import abstract_model
    from mtkd.data.splits import validation_checksum
    from mtkd.progress import stderr_line
    from mtkd.run_checkpoints import start_run
    from mtkd.runs import refuse_duplicates

    strategies = args.strategy or ["uniform"]
    refuse_duplicates(strategies, "--strategy")
    config = train_config_from(args)
    student = student_spec_from(args)
    seeds = seeds_from(args)
    interval = checkpoint_config_from(args)
    distributed.start(distributed_config_from(args))  # before any other JAX work
    placement = seed_placement(len(seeds), args.devices)
    splits = load_dataset(args.dataset, data_dir=args.data_dir, val_fraction=args.val_fraction,
                          split_seed=args.split_seed, val_indices=args.val_indices, val_split=args.val_split)
    pool = None
    if args.teachers:
        pool = pool_for(splits, None, args.teachers, args.data_dir, args.val_fraction, args.split_seed,
                        args.val_indices, args.val_split)
    elif any(name != "none" for name in strategies):  # the data set's default pool (a cache), as select train does
        pool = pool_for(splits, "default", None, args.data_dir, args.val_fraction, args.split_seed,
                        args.val_indices, args.val_split)
    abstract_model(student, splits.input_shape, splits.num_classes)  # a student that cannot be built fails here
    built = build_strategies(strategies, pool, {"policy": args.policy, "greedy": args.greedy})
    losses = read_loss_file(args.losses) if args.losses else None
    if losses is not None:
        bind_pool_loss(losses, pool, splits, student)  # layers and shapes checked before anything is written
    signature = {"kind": "distill", "dataset": args.dataset, "teachers": args.teachers, "strategies": strategies,
                 "student": student.to_dict(), "config": config.__dict__, "seeds": seeds,
                 "val_fraction": args.val_fraction, "split_seed": args.split_seed, "policy": args.policy,
                 **({"validation": validation_checksum(splits)} if args.val_indices or args.val_split else {}),
                 "losses": losses.to_dicts() if losses is not None else None, "devices": placement.devices}
    out, checkpoints = start_run(args.out, signature, overwrite=args.overwrite, resume=args.resume,
                                 config=interval, log=stderr_line)
    if checkpoints is None:
        return 0
    if placement.devices > 1:
        stderr_line(placement.describe(len(seeds)))
    rows, _ = run_strategies(splits, pool, built, student, config, seeds, metrics_dir=out / "metrics", losses=losses,
                             checkpoints=checkpoints, devices=placement.devices)
    teachers = teacher_rows(pool)
    write_results(out / "results.json", args.dataset, rows, teachers=teachers, student=student.to_dict(),
                  config=config.__dict__, devices=placement.devices, padded_seeds=placement.padding,
                  processes=distributed.process_count())
    checkpoints.remove()  # results.json is complete: nothing needs them now
    if distributed.is_writer():
        print(format_table(rows, teachers))
    return 0
