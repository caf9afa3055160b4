"""`mtkd bench`: the cost of cached teachers (and of the selector) per student epoch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mtkd.cli.options import add_data_dir_option, add_out_option
from mtkd.errors import ConfigError


DESCRIPTION = ("Median wall time of one jitted student epoch on mnist1d without teachers and with the K cached "
               "teachers of the default pool (and under the learned selector), their ratio, and student training "
               "steps per second; ratios come from interleaved pairs of runs in one process.")


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", description=DESCRIPTION,
                                   help="time student epochs with and without cached teachers; writes bench.json")
    add_out_option(parser, "bench.json, scaling.png")
    add_data_dir_option(parser)
    parser.add_argument("--teachers", default=None, help="teacher pool directory (default: the default mnist1d pool)")
    parser.add_argument("--repeats", type=int, default=20, help="timed epochs per case (default: %(default)s)")
    parser.add_argument("--peer", choices=["torch"], default=None,
                        help="also time the same work in plain PyTorch, in this process (needs "
                             "`pip install 'mtkd[bench]'`): one seed against one run, and --peer-seeds vmapped "
                             "seeds against that many runs in a row")
    parser.add_argument("--peer-seeds", type=int, default=8,
                        help="seeds of the vmapped side of the --peer comparison (default: %(default)s)")
    parser.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=True,
                        help="steps/s for 1-16 vmapped seeds, 1-16 cached teachers and a 1-D CNN student "
                             "(default: on), plotted to scaling.png")
    parser.add_argument("--student", default=None, metavar="ARCH",
                        help="instead: images/s of the CIFAR-100 protocol's KD step (32x32x3, batch 64, crop and "
                             "flip, SGD, BatchNorm) for this zoo student (e.g. resnet8x4), against the same step "
                             "in PyTorch with --peer torch, and the real-data estimate for one and 240 epochs")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved timed rounds of 8 steps each, with --student (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import jax

    from mtkd.bench import peer_costs, plot_scaling, scaling_costs, student_epoch_costs
    from mtkd.machine import describe_machine, device_memory
    from mtkd.data import load_dataset
    from mtkd.distill.pool_training import pool_for
    from mtkd.progress import stderr_line
    from mtkd.teachers import default_pool_dir
    from mtkd.torch_peer import import_torch

    if args.repeats < 1 or args.peer_seeds < 1:
        raise ConfigError(f"--repeats and --peer-seeds must be >= 1, got {args.repeats} and {args.peer_seeds}")
    if args.peer is not None:
        import_torch()  # fails here, before any work, when PyTorch is missing
    if args.student is not None:
        return run_image_student(args)
    splits = load_dataset("mnist1d", data_dir=args.data_dir)
    pool = pool_for(splits, "default", args.teachers or default_pool_dir("mnist1d"), args.data_dir)
    machine = describe_machine()
    stderr_line(f"machine: {machine['backend']} {machine['device_kind']} x{machine['device_count']}"
                f"{_gib(machine['device_memory']['bytes_limit'], ' device memory')}; host {machine['host']['cpu']}, "
                f"{machine['host']['cores_usable']} cores{_gib(machine['host']['memory_bytes'], '')}")
    report = student_epoch_costs(splits, pool, repeats=args.repeats,
                                 log=stderr_line)
    if args.peer is not None:
        report["peer"] = peer_costs(splits, pool, args.peer, seeds=args.peer_seeds, log=stderr_line)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.scaling:
        report["scaling"] = scaling_costs(splits, pool, log=stderr_line)
        plot_scaling(report["scaling"], out / "scaling.png")
    # The device's peak memory is read at the end, over everything the bench ran (None on CPU).
    machine["device_memory"] = device_memory(jax.local_devices()[0])
    report["machine"] = machine
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


def run_image_student(args: argparse.Namespace) -> int:
    from mtkd.image_bench import IMAGE_SHAPE, image_student_costs
    from mtkd.machine import describe_machine
    from mtkd.models import ModelSpec, abstract_model
    from mtkd.progress import stderr_line

    if args.rounds < 1:
        raise ConfigError(f"--rounds must be >= 1, got {args.rounds}")
    abstract_model(ModelSpec(args.student), IMAGE_SHAPE, 100)  # an unknown or unfit student fails before any work
    if args.peer is not None:
        from mtkd.models.cifar.torch_reference import build_torch_model

        build_torch_model(args.student)  # a student without a PyTorch peer fails before any work
    out = Path(args.out)
    report = image_student_costs(args.student, peer=args.peer, rounds=args.rounds, log=stderr_line)
    report["machine"] = describe_machine()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


def _gib(size: int | None, what: str) -> str:
    return "" if size is None else f", {size / 2**30:.1f} GiB{what}"
