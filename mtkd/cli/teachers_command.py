"""`mtkd teachers train|import|show`: build, import and inspect teacher pools."""

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

    imported = commands.add_parser(
        "import", help="import PyTorch checkpoints of the CIFAR zoo's reference networks as a pool",
        description="Convert PyTorch state_dicts of the CRD / mdistiller CIFAR networks (raw, or under a 'model' or "
                    "'state_dict' key as the published checkpoints store them) into a teacher pool: every key and "
                    "shape checked against --arch before --out is claimed, each teacher's validation and test "
                    "accuracy in inference mode, Orbax checkpoints with checksums. Needs torch to read the files "
                    "(pip install 'mtkd[torch]').")
    add_data_options(imported)
    imported.add_argument("--arch", action="append", required=True, metavar="NAME",
                          help="the reference architecture of the next --torch file (resnet8x4, wrn_40_2, ...; "
                               "repeatable, once per --torch, in the same order)")
    imported.add_argument("--torch", action="append", required=True, metavar="FILE",
                          help="a PyTorch checkpoint (.pth) of that architecture (repeatable)")
    imported.add_argument("--name", action="append", default=None, metavar="NAME",
                          help="the teacher's name in the pool (repeatable, once per --torch; default: the "
                               "architecture's name, numbered where one repeats)")
    add_out_option(imported, "the pool (Orbax checkpoints and pool.json)")
    imported.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    imported.set_defaults(func=run_import)

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


def run_import(args: argparse.Namespace) -> int:
    from mtkd.distill.experiment import teacher_rows
    from mtkd.distill.results import format_table
    from mtkd.teachers.torch_import import import_torch_teachers

    if args.val_indices is not None or args.val_split is not None:
        from mtkd.errors import ConfigError

        raise ConfigError("teachers import carves validation with --val-fraction and --split-seed; "
                          "--val-indices and --val-split are for pools mtkd trains")
    pool = import_torch_teachers(args.dataset, args.arch, args.torch, args.out, names=args.name,
                                 data_dir=args.data_dir, val_fraction=args.val_fraction, split_seed=args.split_seed,
                                 overwrite=args.overwrite)
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
