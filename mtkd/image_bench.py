"""`mtkd bench --student ARCH`: images per second of one CIFAR-protocol training step of a zoo
student (32x32x3, batch 64, KD from one cached teacher at T = 4 with alpha = 0.1, crop and flip
inside the step, SGD with momentum 0.9 and weight decay 5e-4, BatchNorm in training mode),
against the same step in plain PyTorch (`mtkd.torch_peer.TorchImageEpoch`), the two timed in
interleaved rounds in one process. Synthetic images: a step's cost does not depend on them.

Also the real-data estimate: one CIFAR-100 epoch (the 45,000 training images left after mtkd's
10% validation carve) and the protocol's 240 epochs at the measured rate, per seed."""

from __future__ import annotations

import statistics
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.augment import augmentation
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import init_students, unstack
from mtkd.distill.steps import FitState, StudentState, make_epoch
from mtkd.fusion import make_strategy
from mtkd.fusion.strategies import StrategyContext
from mtkd.models import ModelSpec
from mtkd.models.state import trainable
from mtkd.optimizers import training_optimizer
from mtkd.timing import epoch_runner, interleaved_rounds, ratio_summary

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 100
CIFAR100_TRAIN = 45_000  # 50,000 minus mtkd's default 10% validation carve
PROTOCOL_EPOCHS = 240
PROTOCOL = TrainConfig(epochs=PROTOCOL_EPOCHS, batch_size=64, learning_rate=0.05, optimizer="sgd", weight_decay=5e-4,
                       alpha=0.1, temperature=4.0, lr_milestones="150,180,210", augment="crop_flip")


def synthetic_batch_data(steps: int, batch_size: int, seed: int = 0):
    """Normalised-looking images, labels and one teacher's logits for `steps` full batches."""
    rng = np.random.default_rng(seed)
    n = steps * batch_size
    x = rng.normal(size=(n, *IMAGE_SHAPE)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, n).astype(np.int32)
    teacher = rng.normal(size=(1, n, NUM_CLASSES)).astype(np.float32) * 3
    return x, y, teacher


def jax_image_epoch(arch: str, x, y, teacher_logits, config: TrainConfig = PROTOCOL) -> Callable[[int], None]:
    """`run(i)`: one compiled epoch of the protocol's KD step over (x, y), one seed, as `fit` runs it."""
    spec = ModelSpec(arch)
    graphdef, params = init_students(spec, IMAGE_SHAPE, NUM_CLASSES, [0])
    params = unstack(params, 0)
    steps = x.shape[0] // config.batch_size
    optimizer = training_optimizer(config, steps)
    strategy = make_strategy("uniform", StrategyContext(["teacher"], [1.0]))
    epoch = make_epoch(graphdef, optimizer, strategy, config.alpha, config.temperature, config.batch_size,
                       augmentation(config.augment))
    state = FitState(StudentState(params, optimizer.init(trainable(params))))
    return epoch_runner(epoch, state, jnp.asarray(x), jnp.asarray(y), jnp.asarray(teacher_logits))


def image_student_costs(arch: str, peer: str | None = "torch", steps: int = 8, rounds: int = 5,
                        budget_seconds: float = 120.0, threads: int | None = None,
                        log: Callable[[str], None] = print) -> dict:
    """Images per second of the JAX step and (with `peer`) the PyTorch one, in interleaved rounds;
    `ratio_jax_torch` is PyTorch seconds over JAX seconds per round (above 1: JAX is faster)."""
    config = PROTOCOL
    x, y, teacher = synthetic_batch_data(steps, config.batch_size)
    runners = {"jax": jax_image_epoch(arch, x, y, teacher, config)}
    report: dict = {"student": arch, "batch_size": config.batch_size, "steps_per_round": steps,
                    "image_shape": list(IMAGE_SHAPE), "backend": jax.default_backend(),
                    "device": jax.local_devices()[0].device_kind}
    if peer is not None:
        from mtkd.torch_peer import TorchImageEpoch, cpu_threads, import_torch

        torch = import_torch()
        threads = threads or cpu_threads()
        runners["torch"] = TorchImageEpoch(arch, x, y, teacher[0], config, threads=threads)
        runners["torch"](0)  # warm-up, as the JAX side is compiled and run once
        report.update({"peer": "torch", "torch_version": torch.__version__, "threads": threads})
    times = interleaved_rounds(runners, min_rounds=rounds, max_rounds=rounds, budget_seconds=budget_seconds)
    images = steps * config.batch_size
    seconds = {name: statistics.median(values) for name, values in times.items()}
    report["rounds"] = len(times["jax"])
    report["images_per_second"] = {name: images / s for name, s in seconds.items()}
    report["estimate_seconds"] = {name: {"epoch": CIFAR100_TRAIN / rate, f"{PROTOCOL_EPOCHS}_epochs":
                                         PROTOCOL_EPOCHS * CIFAR100_TRAIN / rate}
                                  for name, rate in report["images_per_second"].items()}
    line = f"{arch}, batch {config.batch_size}: JAX {report['images_per_second']['jax']:.0f} images/s"
    if peer is not None:
        summary = ratio_summary(times["torch"], times["jax"])
        report["ratio_jax_torch"], report["ratio_jax_torch_summary"] = summary["median"], summary
        line += (f", PyTorch {report['images_per_second']['torch']:.0f} images/s ({summary['median']:.2f}x, "
                 f"min {summary['min']:.2f}, max {summary['max']:.2f}, {summary['pairs']} rounds)")
    estimate = report["estimate_seconds"]["jax"]
    log(line + f"; one CIFAR-100 epoch {estimate['epoch'] / 60:.1f} min, {PROTOCOL_EPOCHS} epochs "
               f"{estimate[f'{PROTOCOL_EPOCHS}_epochs'] / 3600:.1f} h per seed (JAX)")
    return report


__all__ = ["PROTOCOL", "image_student_costs", "jax_image_epoch", "synthetic_batch_data"]
