"""Several students of one architecture: vmapped side by side, or one at a time in the same program.

The trainer's choice on a CPU (`mtkd.distill.seed_map`) runs the students of a convolutional
model one at a time, because a vmapped convolution with a kernel per student is one grouped
convolution. This measures both on this machine for the protocol's KD step (batch 64, crop and
flip, SGD, BatchNorm; `mtkd.image_bench`): one compiled epoch of `--steps` steps for `--students`
students with `vmap_chunk` 0 (all at once) and 1 (in turn), in interleaved rounds, as images per
second and their ratio, beside each program's memory plan from XLA's analysis. Random images, so
only the times mean anything.

    python experiments/students_in_turn.py --students 4 --arch resnet8x4 --out runs/students_in_turn
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.augment import augmentation
from mtkd.distill.fit import init_students
from mtkd.distill.seed_map import program_bytes, seed_map
from mtkd.distill.steps import FitState, StudentState, make_epoch
from mtkd.fusion import StrategyContext, make_strategy
from mtkd.image_bench import IMAGE_SHAPE, NUM_CLASSES, PROTOCOL, synthetic_batch_data
from mtkd.machine import describe_machine
from mtkd.models import ModelSpec
from mtkd.models.state import trainable
from mtkd.optimizers import training_optimizer
from mtkd.timing import interleaved_rounds, ratio_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4, help="students in the program (default: 4)")
    parser.add_argument("--arch", default="resnet8x4", help="a CIFAR zoo architecture (default: resnet8x4)")
    parser.add_argument("--steps", type=int, default=4, help="batches of 64 per timed epoch (default: 4)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: 3)")
    parser.add_argument("--out", required=True, help="folder for students_in_turn.json")
    args = parser.parse_args()

    x, y, teacher = synthetic_batch_data(args.steps, PROTOCOL.batch_size)
    graphdef, params = init_students(ModelSpec(args.arch), IMAGE_SHAPE, NUM_CLASSES, list(range(args.students)))
    optimizer = training_optimizer(PROTOCOL, args.steps)
    epoch = make_epoch(graphdef, optimizer, make_strategy("uniform", StrategyContext(["teacher"], [1.0])),
                       PROTOCOL.alpha, PROTOCOL.temperature, PROTOCOL.batch_size, augmentation(PROTOCOL.augment))
    state = FitState(StudentState(params, jax.vmap(optimizer.init)(trainable(params))))
    data = (jnp.asarray(x), jnp.asarray(y), jnp.asarray(teacher), jnp.float32(0.5))
    keys = jax.random.split(jax.random.key(0), args.students)

    runners, plans = {}, {}
    for name, chunk in (("side_by_side", 0), ("in_turn", 1)):
        program = jax.jit(seed_map(epoch, (0, 0, None, None, None, None), chunk))
        plans[name] = program_bytes(program.lower(state, keys, *data))
        jax.block_until_ready(program(state, keys, *data))  # compiled and run once before timing
        runners[name] = lambda i, program=program: jax.block_until_ready(
            program(state, jax.random.split(jax.random.key(i), args.students), *data))
    times = interleaved_rounds(runners, min_rounds=args.rounds, max_rounds=args.rounds, budget_seconds=0.0)
    images = args.students * args.steps * PROTOCOL.batch_size
    report = {
        "students": args.students, "arch": args.arch, "steps": args.steps, "rounds": args.rounds,
        "images_per_second": {name: images / float(np.median(t)) for name, t in times.items()},
        "in_turn_speed_over_side_by_side": ratio_summary(times["side_by_side"], times["in_turn"]),
        "memory_plan_gib": {name: size / 2**30 for name, size in plans.items()},
        "seconds": times, "machine": describe_machine(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "students_in_turn.json").write_text(json.dumps(report, indent=1) + "\n")
    for name in runners:
        print(f"{name:>12}: {report['images_per_second'][name]:.1f} images/s, "
              f"memory plan {report['memory_plan_gib'][name]:.2f} GiB")
    ratio = report["in_turn_speed_over_side_by_side"]
    print(f"in turn / side by side speed: {ratio['median']:.2f}x (min {ratio['min']:.2f}, max {ratio['max']:.2f})")


if __name__ == "__main__":
    main()
