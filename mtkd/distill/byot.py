"""Self-distillation, "Be Your Own Teacher" (Zhang et al., ICCV 2019; docs/methods.md, Deep mutual learning and self-distillation).

A network with an exit after every stage (`mtkd.models.byot`) learns from its own deepest exit C.
Per shallow exit i:

    (1 - kd_weight) * CE(y, q_i) + kd_weight * T^2 * KL(q_C^T || q_i^T) + lambda * ||F_i - F_C||^2

and the deepest exit is trained with CE(y, q_C) only. q_C and F_C enter the shallow terms through
`stop_gradient`: the teacher is not pulled toward its students. F_i is the pooled output of exit
i's bottleneck (its adapter to F_C's shape). `||F_i - F_C||^2` is taken as the mean over the
feature's elements (as `mtkd.losses.hint`), so lambda does not scale with the width **[unverified:
the paper's reduction]**. The T^2 factor keeps the soft-target gradient independent of T, as in
KD. Defaults kd_weight 0.3, T 3, lambda 0.03 follow a common public reimplementation **[unverified
against the paper]**.

No teacher pool is used; the model is selected on validation by its deepest exit.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtkd.data import DatasetSplits
from mtkd.distill.composition import model_feature_shapes
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import FitResult, fit_result, graphdef_of, init_students
from mtkd.models.architectures import parameters_only_model
from mtkd.distill.objective import cross_entropy
from mtkd.optimizers import training_optimizer
from mtkd.distill.results import result_row
from mtkd.distill.steps import StudentState, apply_model, epoch_batches
from mtkd.distill.trainer import Method, train_seeds
from mtkd.config_flags import DictConfig
from mtkd.errors import ConfigError
from mtkd.losses import hint, kd_per_example
from mtkd.models import ModelSpec
from mtkd.progress import epoch_reporter, stderr_line


@dataclasses.dataclass(frozen=True)
class ByotConfig(DictConfig):
    """kd_weight: weight of the KL term (CE gets 1 - kd_weight), in [0, 1] (named so because it
    weights the KL, where `TrainConfig.alpha` weights the CE); temperature > 0;
    feature_weight (lambda) >= 0."""

    kd_weight: float = 0.3
    temperature: float = 3.0
    feature_weight: float = 0.03

    def __post_init__(self):
        if not (isinstance(self.kd_weight, (int, float)) and 0.0 <= self.kd_weight <= 1.0):
            raise ConfigError(f"byot kd_weight must be in [0, 1], got {self.kd_weight!r}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature > 0):
            raise ConfigError(f"byot temperature must be a finite number > 0, got {self.temperature!r}")
        if not (isinstance(self.feature_weight, (int, float)) and math.isfinite(self.feature_weight)
                and self.feature_weight >= 0):
            raise ConfigError(f"byot feature_weight must be a finite number >= 0, got {self.feature_weight!r}")


@dataclasses.dataclass
class ByotFitResult(FitResult):
    """A FitResult (deepest exit) plus each exit's test accuracy: exit_test_accuracy[i][s] for
    exit i (the last is the deepest) and seed s, with the parameters chosen on validation."""

    exit_test_accuracy: list[list[float]] | None = None


def exit_outputs(features, num_exits: int):
    """Stacks the exits' outputs: logits (S, B, C) and features (S, B, D), deepest last."""
    logits = jnp.stack([features[f"exit_{i}_logits"] for i in range(num_exits)])
    feats = jnp.stack([features[f"exit_{i}_feature"] for i in range(num_exits)])
    return logits, feats


def byot_loss(exit_logits, exit_features, labels, byot: ByotConfig):
    """exit_logits (S, B, C), exit_features (S, B, D), labels (B,) -> (loss, parts).

    loss = CE(y, q_C) + sum over shallow i of the module docstring's terms (batch means).
    parts: "ce" (S,), "kl" (S-1,), "feature" (S-1,), each a batch mean, unweighted.
    """
    teacher_logits = jax.lax.stop_gradient(exit_logits[-1])
    teacher_feature = jax.lax.stop_gradient(exit_features[-1])
    ce = jax.vmap(lambda z: cross_entropy(z, labels).mean())(exit_logits)
    kl = jax.vmap(lambda z: kd_per_example(z, teacher_logits, byot.temperature).mean())(exit_logits[:-1])
    feature = jax.vmap(lambda f: hint(f, teacher_feature))(exit_features[:-1])
    shallow = (1.0 - byot.kd_weight) * ce[:-1] + byot.kd_weight * kl + byot.feature_weight * feature
    return ce[-1] + jnp.sum(shallow), {"ce": ce, "kl": kl, "feature": feature}


def make_byot_epoch(graphdef, optimizer: optax.GradientTransformation, byot: ByotConfig, num_exits: int,
                    batch_size: int):
    """Returns `epoch(state, key, x, y, progress) -> (state, metrics)`: one `lax.scan` over
    batches; metrics hold the mean loss and the mean of each part (see `byot_loss`)."""

    def loss_fn(params, x, y):
        _, features = apply_model(graphdef, params, x)
        return byot_loss(*exit_outputs(features, num_exits), y, byot)

    def epoch(state: StudentState, key, x, y, progress):
        def body(state, index):
            (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, x[index], y[index])
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            return StudentState(optax.apply_updates(state.params, updates), opt_state), (loss, parts)

        state, (losses, parts) = jax.lax.scan(body, state, epoch_batches(key, x.shape[0], batch_size))
        return state, {"loss": losses.mean(), **{f"{k}_part": v.mean(axis=0) for k, v in parts.items()}}

    return epoch


def exit_accuracies(graphdef, params, x, y, num_exits: int, batch_size: int):
    """Accuracy of every exit on (x, y): (S,), computed in chunks under `lax.map`."""
    n = x.shape[0]
    batch_size = min(batch_size, n)
    chunks = -(-n // batch_size)
    padded = jnp.concatenate([x, jnp.zeros((chunks * batch_size - n,) + x.shape[1:], x.dtype)])
    logits = jax.lax.map(lambda xb: exit_outputs(apply_model(graphdef, params, xb)[1], num_exits)[0],
                         padded.reshape((chunks, batch_size) + x.shape[1:]))  # (chunks, S, b, C)
    logits = jnp.moveaxis(logits, 1, 0).reshape((num_exits, chunks * batch_size, -1))[:, :n]
    return jnp.mean(jnp.argmax(logits, axis=-1) == y[None], axis=-1)


def count_exits(spec: ModelSpec, shapes) -> int:
    exits = 0
    while f"exit_{exits}_logits" in shapes and f"exit_{exits}_feature" in shapes:
        exits += 1
    if exits < 2:
        raise ConfigError(f"model {spec.arch!r} has no auxiliary exits (features exit_i_logits / exit_i_feature); "
                          f"BYOT needs an architecture such as 'byot'")
    return exits


def fit_byot(splits: DatasetSplits, spec: ModelSpec, config: TrainConfig, seeds: Sequence[int],
             byot: ByotConfig = ByotConfig(), on_epoch: Callable[[dict], None] | None = None,
             metrics_path: str | Path | None = None, checkpoints=None, devices: int | None = None) -> ByotFitResult:
    """Trains one self-distilling network per seed; selects each seed's epoch by the deepest
    exit's validation accuracy; evaluates every exit on the test split once, at the end.

    The config's alpha and temperature are not used (`byot` carries BYOT's own)."""
    seeds = [int(s) for s in seeds]
    parameters_only_model(spec, splits.input_shape, splits.num_classes, "BYOT")
    graphdef = graphdef_of(spec, splits.input_shape, splits.num_classes)
    num_exits = count_exits(spec, model_feature_shapes(spec, splits.input_shape, splits.num_classes))
    config.refuse_augmentation("BYOT")
    x, y = jnp.asarray(splits.x_train), jnp.asarray(splits.y_train)
    batch_size = min(config.batch_size, int(x.shape[0]))
    optimizer = training_optimizer(config, int(x.shape[0]) // batch_size)
    epoch = make_byot_epoch(graphdef, optimizer, byot, num_exits, batch_size)

    def evaluation(params, xs, ys):  # the deepest exit chooses the epoch; every exit is recorded
        accuracy = exit_accuracies(graphdef, params, xs, ys, num_exits, config.eval_batch_size)
        return {"accuracy": accuracy[-1], "exit_accuracy": accuracy}

    def build(seeds, placement):
        _, params = init_students(spec, splits.input_shape, splits.num_classes, seeds)
        return Method(epoch, evaluation, (x, y)), StudentState(params, jax.vmap(optimizer.init)(params))

    trained = train_seeds(seeds, build, config.epochs, (jnp.asarray(splits.x_val), jnp.asarray(splits.y_val)),
                          (jnp.asarray(splits.x_test), jnp.asarray(splits.y_test)), on_epoch, metrics_path,
                          checkpoints, devices, config.vmap_chunk, stderr_line)
    result = fit_result(graphdef, trained)
    return ByotFitResult(**vars(result), exit_test_accuracy=trained.test["exit_accuracy"].T.tolist())


def run_byot(splits: DatasetSplits, config: TrainConfig, seeds: Sequence[int], *,
             metrics_dir: Path | None = None, log: Callable[[str], None] | None = None, checkpoints=None,
             devices: int | None = None, kd_weight: float = 0.3, temperature: float = 3.0, feature_weight: float = 0.03,
             **model_options) -> list[dict]:
    """The `byot` strategy of an ablation: one results.json row (deepest exit), with each exit's
    test accuracy in `exit_test_accuracy` (per exit, per seed). model_options go to the `byot`
    architecture (channels, blocks, kernel_size)."""
    log = log or stderr_line
    spec = ModelSpec("byot", model_options)
    byot = ByotConfig(kd_weight, temperature, feature_weight)
    metrics_path = None
    if metrics_dir is not None:
        Path(metrics_dir).mkdir(parents=True, exist_ok=True)
        metrics_path = Path(metrics_dir) / "byot.jsonl"

    progress = epoch_reporter("byot", config.epochs, log,
                              lambda record: f"mean val accuracy {np.mean(record['val_accuracy']):.3f}")

    started = time.perf_counter()
    result = fit_byot(splits, spec, config, seeds, byot, on_epoch=progress, metrics_path=metrics_path,
                      checkpoints=checkpoints, devices=devices)
    return [result_row("byot", result.seeds, result.val_accuracy, result.test_accuracy,
                       best_epoch=result.best_epoch, seconds=round(time.perf_counter() - started, 2),
                       exit_test_accuracy=result.exit_test_accuracy, student=spec.to_dict(),
                       byot=dataclasses.asdict(byot))]


__all__ = ["ByotConfig", "ByotFitResult", "byot_loss", "exit_accuracies", "fit_byot", "make_byot_epoch", "run_byot"]
