"""`mtkd teachers train|show`: build and inspect teacher pools."""

from __future__ import annotations

import argparse

from mtkd.cli.options import add_data_options, add_out_option, add_run_options, checkpoint_config_from
from mtkd.teachers.defaults import preset_names


def register(subparsers) -> None:
    parser = subparsers.add_parser("teachers", help="train or inspect a pool of frozen teachers",
                                   description="Train or inspect a pool of frozen teachers.")
    commands = parser.add_subparsers(dest="teachers_command", metavar="ACTION", required=True)

    train = commands.add_parser("train", help="train every teacher of a pool spec and save the pool",
                                description="Train every teacher of a pool spec, evaluate it on validation and "
                                            "test, and save it (Orbax) with a pool.json manifest.")
    add_data_options(train)
    train.add_argument("--pool", default="default",
                       help=f"pool spec: a .toml/.yaml file or a preset ({', '.join(preset_names())}; "
                            f"'default' picks the data set's own) (default: %(default)s)")
    add_out_option(train, "the pool (Orbax checkpoints and pool.json)")
    add_run_options(train, "pool training")
    train.set_defaults(func=run_train)

    show = commands.add_parser("show", help="print a saved pool's teachers and accuracies")
    add_data_options(show)
    show.add_argument("--teachers", default=None,
                      help="pool directory (default: the data set's default pool, where it has been trained)")
    show.set_defaults(func=run_show)


def run_train(args: argparse.Namespace) -> int:
    from mtkd import api
    from mtkd.distill.experiment import teacher_rows
    from mtkd.distill.results import format_table

    pool = api.train_teachers(args.pool, args.dataset, out=args.out, data_dir=args.data_dir,
                              val_fraction=args.val_fraction, split_seed=args.split_seed,
                              val_indices=args.val_indices, val_split=args.val_split,
                              checkpoint=checkpoint_config_from(args), overwrite=args.overwrite, resume=args.resume)
    print(format_table([], teacher_rows(pool)).rstrip())
    return 0


def run_show(args: argparse.Namespace) -> int:
    from mtkd.data import load_dataset
    from mtkd.distill.experiment import teacher_rows
    from mtkd.distill.results import format_table
    from mtkd.teachers import default_pool_dir, load_pool

    splits = load_dataset(args.dataset, data_dir=args.data_dir, val_fraction=args.val_fraction,
                          split_seed=args.split_seed, val_indices=args.val_indices, val_split=args.val_split)
    pool = load_pool(args.teachers or default_pool_dir(args.dataset), splits)
    print(format_table([], teacher_rows(pool)).rstrip())
    return 0
