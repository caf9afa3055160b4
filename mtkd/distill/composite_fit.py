"""`fit_composite`: `fit` with a composite loss (several terms, teacher features, adapters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from mtkd.distill.composition import bind_loss, make_composite_epoch, model_feature_shapes
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import FitResult, SplitArrays, fit_result, graphdef_of, init_students, student_evaluation
from mtkd.models.architectures import parameters_only_model
from mtkd.distill.loss_config import LossConfig, loss_config_from
from mtkd.distill.steps import StudentState
from mtkd.progress import stderr_line
from mtkd.distill.trainer import Method, train_seeds
from mtkd.augment import augmentation
from mtkd.optimizers import training_optimizer
from mtkd.errors import ConfigError
from mtkd.fusion.strategies import FusionStrategy, require_stateless
from mtkd.models import ModelSpec

TeacherFeatures = Mapping[str, Sequence[Any]]


def _aligned_features(teacher_features: TeacherFeatures | None, num_teachers: int, num_examples: int):
    """{layer: K-tuple of (N, ...) arrays or None}, checked against the teacher count and N."""
    aligned = {}
    for layer, arrays in (teacher_features or {}).items():
        arrays = tuple(arrays)
        if len(arrays) != num_teachers:
            raise ConfigError(f"teacher features {layer!r}: got {len(arrays)} arrays for {num_teachers} teachers "
                              f"(use None for a teacher without it)")
        for array in arrays:
            if array is not None and array.shape[0] != num_examples:
                raise ConfigError(f"teacher features {layer!r} have {array.shape[0]} examples, the training split "
                                  f"{num_examples}")
        aligned[layer] = tuple(None if a is None else jnp.asarray(a) for a in arrays)
    return aligned


def fit_composite(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int, train: SplitArrays,
                  val: SplitArrays, strategy: FusionStrategy, loss: LossConfig | Sequence[Mapping[str, Any]],
                  config: TrainConfig, seeds: Sequence[int], test: SplitArrays | None = None,
                  teacher_features: TeacherFeatures | None = None, teacher_names: Sequence[str] | None = None,
                  on_epoch: Callable[[dict], None] | None = None, metrics_path: str | Path | None = None,
                  teacher_heads: Sequence | None = None, checkpoints=None, devices: int | None = None) -> FitResult:
    """Trains one student per seed with the composite `loss`; same protocol and result as `fit`.

    train.teacher_logits (K, N, C) and teacher_features {layer: K arrays (N, ...) or None} are the
    teachers' cached outputs on the training split (see `pool_features`). teacher_names (default
    teacher_0, ...) resolve the terms' `teachers` lists. The config's alpha and temperature are
    not used (the loss terms carry their own). Returned params are the student's (stacked over
    seeds); the adapters are trained with it and then dropped. An adapter of the trainer skeleton
    (`mtkd.distill.trainer`), like `fit`; seeds over up to `devices` local devices.
    """
    require_stateless(strategy, "the composite-loss trainer")
    loss_config = loss_config_from(loss)
    seeds = [int(s) for s in seeds]
    parameters_only_model(spec, input_shape, num_classes, "training with feature or composite losses")
    graphdef = graphdef_of(spec, input_shape, num_classes)
    train = train.with_teachers(num_classes)
    num_teachers = int(train.teacher_logits.shape[0])
    names = tuple(teacher_names) if teacher_names is not None else tuple(f"teacher_{k}" for k in range(num_teachers))
    if len(names) != num_teachers:
        raise ConfigError(f"got {len(names)} teacher names for {num_teachers} teachers' logits")
    features = _aligned_features(teacher_features, num_teachers, int(train.x.shape[0]))
    teacher_shapes = [{layer: tuple(arrays[k].shape[1:]) for layer, arrays in features.items()
                       if arrays[k] is not None} for k in range(num_teachers)]
    composite = bind_loss(loss_config, names, model_feature_shapes(spec, input_shape, num_classes),
                          teacher_shapes, student_name=spec.arch)
    # Only what the loss reads travels into the jitted epoch.
    needed = composite.feature_layers()
    features = {layer: tuple(features[layer][k] if k in ks else None for k in range(num_teachers))
                for layer, ks in needed.items()}
    if composite.head_teachers() and (teacher_heads is None
                                      or any(teacher_heads[k] is None for k in composite.head_teachers())):
        raise ConfigError("a term reads the teachers' classifier heads (ca_mkd_feature) but teacher_heads lacks "
                          "them (see mtkd.distill.teacher_features.pool_heads)")
    batch_size = min(config.batch_size, int(train.x.shape[0]))
    optimizer = training_optimizer(config, int(train.x.shape[0]) // batch_size)
    epoch = make_composite_epoch(graphdef, optimizer, strategy, composite, batch_size, teacher_heads,
                                 augmentation(config.augment))
    student = student_evaluation(graphdef, config.eval_batch_size, part=lambda params: params["student"])

    def build(seeds, placement):
        _, student_params = init_students(spec, input_shape, num_classes, seeds)
        adapter_keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 2))(jnp.asarray(seeds, jnp.uint32))
        params = {"student": student_params, "adapters": jax.vmap(composite.init_adapters)(adapter_keys)}
        state = StudentState(params, jax.vmap(optimizer.init)(params))
        return Method(epoch, student, (train.x, train.y, train.teacher_logits, features)), state

    trained = train_seeds(seeds, build, config.epochs, (val.x, val.y), None if test is None else (test.x, test.y),
                          on_epoch, metrics_path, checkpoints, devices, config.vmap_chunk, stderr_line)
    return fit_result(graphdef, trained, params_part=lambda params: params["student"])


__all__ = ["fit_composite"]
