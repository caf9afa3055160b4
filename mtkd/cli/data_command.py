"""`mtkd data prepare|info NAME`: prepare a data set once, or describe a prepared one."""

from __future__ import annotations

import argparse

from mtkd.cli.options import add_data_dir_option
from mtkd.data.embedded import EMBEDDED_DATASETS

_NAME_HELP = (
    f"data set name: embedded ({', '.join(EMBEDDED_DATASETS)}), a TFDS catalog name "
    "(mnist, fashion_mnist, cifar10, ...) or one already prepared under the data directory"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `data` with its `prepare` and `info` sub-commands."""
    data_parser = subparsers.add_parser(
        "data",
        help="prepare or describe data sets",
        description="Prepare data sets as TFDS array_record files, or describe prepared ones.",
    )
    actions = data_parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    prepare_parser = actions.add_parser(
        "prepare",
        help="prepare a data set once (catalog data sets need network and TensorFlow)",
        description=(
            "Prepare a data set as array_record files. Embedded data sets are generated locally; "
            "TFDS catalog data sets are downloaded, which needs network and "
            "`pip install 'mtkd[tensorflow]'`."
        ),
    )
    _add_common_arguments(prepare_parser)
    prepare_parser.set_defaults(func=run_prepare)

    info_parser = actions.add_parser(
        "info",
        help="print input shape, classes and split sizes of a data set",
        description="Describe a data set (embedded ones are prepared on first use).",
    )
    _add_common_arguments(info_parser)
    info_parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="fraction of TFDS 'train' held out for validation (default: 0.1)",
    )
    info_parser.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the validation carve (default: 0)",
    )
    info_parser.add_argument(
        "--val-indices",
        default=None,
        metavar="FILE",
        help="hold out these rows of TFDS 'train' for validation instead (a .npy array or a text file of whole numbers)",
    )
    info_parser.add_argument(
        "--val-split",
        default=None,
        metavar="NAME",
        help="validate on the data set's own split NAME instead (e.g. validation)",
    )
    info_parser.set_defaults(func=run_info)

    import_parser = actions.add_parser(
        "import",
        help="write your own NumPy arrays as a TFDS data set (then --dataset NAME everywhere)",
        description=(
            "Write the arrays of a .npz (x_train, y_train, x_test, y_test; optionally x_val, y_val) as the "
            "TFDS data set NAME under the data directory, in array_record files written by TFDS itself. "
            "Inputs: any numeric array (N, ...); uint8 images stay bytes and load scaled to [0, 1]. Labels: "
            "whole numbers from 0. With x_val/y_val the data set has a 'validation' split, which "
            "--val-split validation uses instead of carving one from train."
        ),
    )
    import_parser.add_argument("name", metavar="NAME", help="the new data set's name (lower case, digits, '_')")
    import_parser.add_argument("--npz", required=True, metavar="FILE", help="the arrays (np.savez)")
    add_data_dir_option(import_parser)
    import_parser.add_argument("--overwrite", action="store_true", help="replace a data set of that name")
    import_parser.set_defaults(func=run_import)


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help=_NAME_HELP)
    add_data_dir_option(parser)


def _describe(splits) -> list[str]:
    return [
        f"  input shape: {splits.input_shape}, classes: {splits.num_classes}",
        (f"  train: {splits.num_train} examples in TFDS 'train', validation: {splits.num_val} in "
         f"TFDS '{splits.val_split}'" if splits.val_split else
         f"  train: {splits.num_train_full} examples in TFDS 'train' -> "
         f"{splits.num_train} train + {splits.num_val} validation"),
        f"  test: {splits.num_test} examples (TFDS '{splits.test_split}')",
    ]


def run_import(args: argparse.Namespace) -> int:
    from mtkd.data import load_dataset
    from mtkd.data.importing import import_npz

    prepared_dir = import_npz(args.name, args.npz, data_dir=args.data_dir, overwrite=args.overwrite)
    splits = load_dataset(args.name, data_dir=args.data_dir)  # read back once: it loads, and the array cache is written
    print(f"imported {args.name} into {prepared_dir}")
    print("\n".join(_describe(splits)))
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from mtkd.data import load_dataset, prepare_dataset

    prepared_dir = prepare_dataset(args.name, data_dir=args.data_dir)
    # Loading once also writes the decoded-array cache, so later loads are fast.
    splits = load_dataset(args.name, data_dir=args.data_dir, prepare=False)
    print(f"prepared {args.name} in {prepared_dir}")
    print("\n".join(_describe(splits)))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from mtkd.data import load_dataset

    splits = load_dataset(
        args.name,
        data_dir=args.data_dir,
        val_fraction=args.val_fraction,
        split_seed=args.split_seed,
        val_indices=args.val_indices,
        val_split=args.val_split,
    )
    print(f"{splits.name} (version {splits.version}) from {splits.prepared_dir}")
    print("\n".join(_describe(splits)))
    return 0
