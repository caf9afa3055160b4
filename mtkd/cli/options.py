"""Options shared by several sub-commands, and turning them into configs.

Light on purpose: everything here, and every command's `register`, imports no JAX, Flax or
Orbax, so `mtkd --help` and a bad flag answer at once; the commands import those when they run."""

from __future__ import annotations

import argparse
import dataclasses
import json

from mtkd.cli import names
from mtkd.config_flags import add_config_flags, config_from_values, given_values
from mtkd.errors import ConfigError
from mtkd.checkpoint_config import CheckpointConfig
from mtkd.train_config import TrainConfig


DATA_DIR_HELP = "TFDS data directory (default: $MTKD_DATA_DIR or ~/.cache/mtkd/tensorflow_datasets)"


def add_out_option(parser, contents: str, default: str | None = None) -> None:
    """--out, the directory every long command writes to (required unless it has a default)."""
    shown = f" (default: {default})" if default is not None else ""
    parser.add_argument("--out", required=default is None, default=default, help=f"output directory: {contents}{shown}")


def add_data_dir_option(parser, help: str = DATA_DIR_HELP) -> None:
    parser.add_argument("--data-dir", default=None, metavar="DIR", help=help)


def add_data_options(parser: argparse.ArgumentParser, dataset_default: str | None = "mnist1d") -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default=dataset_default, required=dataset_default is None,
                       help="data set name: mnist1d, digits, or any prepared TFDS data set (default: %(default)s)")
    add_data_dir_option(group)
    group.add_argument("--val-fraction", type=float, default=0.1,
                       help="fraction of the training split held out for validation (default: %(default)s)")
    group.add_argument("--split-seed", type=int, default=0,
                       help="seed of the train/validation split (default: %(default)s)")
    group.add_argument("--val-indices", default=None, metavar="FILE",
                       help="hold out these rows of the data set's train split for validation instead of a random "
                            "--val-fraction: a .npy array or a text file of whole numbers (e.g. the rows your "
                            "teachers were not trained on, so that validation stays unseen by them)")
    group.add_argument("--val-split", default=None, metavar="NAME",
                       help="validate on the data set's own split NAME (e.g. validation) and train on all of its "
                            "train split, instead of holding rows of train out")


def add_student_options(parser: argparse.ArgumentParser) -> None:
    """The student, its seeds, and one flag per `TrainConfig` field (`--batch-size` is `batch_size`)."""
    group = parser.add_argument_group("student training")
    group.add_argument("--student", default="mlp",
                       help=f"student architecture: {names.listed(names.ARCHITECTURES)} (default: %(default)s)")
    group.add_argument("--student-options", default="{}", metavar="JSON",
                       help='student architecture options as JSON, e.g. \'{"widths": [100, 100]}\'')
    group.add_argument("--seeds", type=int, default=3, help="number of seeds, run together under vmap (default: %(default)s)")
    group.add_argument("--first-seed", type=int, default=0, help="seeds are FIRST..FIRST+N-1 (default: %(default)s)")
    add_config_flags(group, [("", TrainConfig)])


def train_config_from(args: argparse.Namespace) -> TrainConfig:
    return config_from_values(TrainConfig, given_values(args, TrainConfig), "student training")


def student_spec_from(args: argparse.Namespace):
    from mtkd.models import ModelSpec

    try:
        options = json.loads(args.student_options)
    except ValueError as error:
        raise ConfigError(f"--student-options is not valid JSON: {error}") from None
    if not isinstance(options, dict):
        raise ConfigError("--student-options must be a JSON object")
    return ModelSpec(args.student, options)


def seeds_from(args: argparse.Namespace) -> list[int]:
    from mtkd.seeds import seed_list

    return seed_list(args.seeds, args.first_seed)


def add_run_options(parser: argparse.ArgumentParser, what: str = "run") -> None:
    """--overwrite, --resume and the checkpoint interval: one name each across every long command."""
    group = parser.add_argument_group("output, checkpoints and resume")
    group.add_argument("--overwrite", action="store_true",
                       help=f"empty --out first if it holds another (or this) {what}")
    group.add_argument("--resume", action="store_true",
                       help=f"continue the {what} in --out from its last good checkpoint (OUT/checkpoints/); the "
                            "results equal those of an uninterrupted run. Refused if the config differs")
    group.add_argument("--checkpoint-every-epochs", type=int, default=None, metavar="N",
                       help="also checkpoint every N epochs (default: by time only)")
    group.add_argument("--checkpoint-every-seconds", type=float, default=None, metavar="S",
                       help=f"checkpoint when S seconds have passed since the last one (default: "
                            f"{CheckpointConfig().every_seconds:g}; 0: after every epoch)")


def checkpoint_config_from(args: argparse.Namespace, base: CheckpointConfig = CheckpointConfig()) -> CheckpointConfig:
    """The checkpoint interval: the flags given, over `base` (e.g. an ablation config's [checkpoint])."""
    changes = {name: getattr(args, name) for name in ("checkpoint_every_epochs", "checkpoint_every_seconds")
               if getattr(args, name) is not None}
    return dataclasses.replace(base, **{name.removeprefix("checkpoint_"): value for name, value in changes.items()})


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """--devices and the multi-process flags of `mtkd.distributed`: one name each across commands."""
    group = parser.add_argument_group("devices and processes")
    group.add_argument("--devices", type=int, default=None,
                       help="split the seeds over at most N local devices (default: all): as few as give the "
                            "fewest seeds per device, padded with copies of the last seed that are dropped from "
                            "every result; results.json records devices and padded_seeds")
    add_process_options(group)


def add_process_options(group) -> None:
    """The multi-process flags (`mtkd.distributed`) on a parser or argument group."""
    group.add_argument("--coordinator-address", default=None, metavar="HOST:PORT",
                       help="start a multi-process run: every process runs the same command with the address of "
                            "process 0, --num-processes and its own --process-id; the seeds are split over every "
                            "process's devices and process 0 writes all files")
    group.add_argument("--num-processes", type=int, default=None, metavar="N",
                       help="processes of a multi-process run (with --coordinator-address)")
    group.add_argument("--process-id", type=int, default=None, metavar="I",
                       help="this process's index in [0, N) (with --coordinator-address)")
    group.add_argument("--distributed-auto", action="store_true",
                       help="start a multi-process run from what jax.distributed.initialize() detects in the "
                            "environment (SLURM, ...) instead of the three flags above")


def distributed_config_from(args: argparse.Namespace):
    from mtkd.distributed import DistributedConfig

    return DistributedConfig(args.coordinator_address, args.num_processes, args.process_id, args.distributed_auto)


def report_failures(rows: list[dict]) -> int:
    """The exit code of a command whose rows are written: 1, with a last line naming them, when any
    row failed (SLURM and CI must not count the job as a success); else 0."""
    import sys

    from mtkd.runs import failed_rows

    failed = failed_rows(rows)
    if failed:
        print(f"mtkd: {len(failed)} of {len(rows)} row(s) failed: {', '.join(failed)} (the others' results are "
              f"written; results.json gives each failure)", file=sys.stderr)
        return 1
    return 0
