"""`fit_composite`: `fit` with a composite loss (several terms, teacher features, adapters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from mtkd.distributed import to_host
from mtkd.distill.composition import bind_loss, feature_shapes, make_composite_epoch
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import FitResult, SplitArrays, init_students, unstack
from mtkd.distill.loss_config import LossConfig, loss_config_from
from mtkd.optimizers import make_optimizer
from mtkd.distill.seed_loop import run_epochs
from mtkd.distill.steps import StudentState, evaluate
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


def fit_composite(
    spec: ModelSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    train: SplitArrays,
    val: SplitArrays,
    strategy: FusionStrategy,
    loss: LossConfig | Sequence[Mapping[str, Any]],
    config: TrainConfig,
    seeds: Sequence[int],
    test: SplitArrays | None = None,
    teacher_features: TeacherFeatures | None = None,
    teacher_names: Sequence[str] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    metrics_path: str | Path | None = None,
    teacher_heads: Sequence | None = None,
    checkpoints=None,
) -> FitResult:
    """Trains one student per seed with the composite `loss`; same protocol and result as `fit`.

    train.teacher_logits (K, N, C) and teacher_features {layer: K arrays (N, ...) or None} are the
    teachers' cached outputs on the training split (see `pool_features`). teacher_names (default
    teacher_0, ...) resolve the terms' `teachers` lists. The config's alpha and temperature are
    not used (the loss terms carry their own). Returned params are the student's (stacked over
    seeds); the adapters are trained with it and then dropped.
    """
    require_stateless(strategy, "the composite-loss trainer")
    loss_config = loss_config_from(loss)
    seeds = [int(s) for s in seeds]
    graphdef, student_params = init_students(spec, input_shape, num_classes, seeds)
    train = train.with_teachers(num_classes)
    num_teachers = int(train.teacher_logits.shape[0])
    names = tuple(teacher_names) if teacher_names is not None else tuple(f"teacher_{k}" for k in range(num_teachers))
    if len(names) != num_teachers:
        raise ConfigError(f"got {len(names)} teacher names for {num_teachers} teachers' logits")
    features = _aligned_features(teacher_features, num_teachers, int(train.x.shape[0]))
    teacher_shapes = [{layer: tuple(arrays[k].shape[1:]) for layer, arrays in features.items()
                       if arrays[k] is not None} for k in range(num_teachers)]
    composite = bind_loss(loss_config, names, feature_shapes(graphdef, unstack(student_params, 0), input_shape),
                          teacher_shapes, student_name=spec.arch)
    # Only what the loss reads travels into the jitted epoch.
    needed = composite.feature_layers()
    features = {layer: tuple(features[layer][k] if k in ks else None for k in range(num_teachers))
                for layer, ks in needed.items()}

    adapter_keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 2))(jnp.asarray(seeds, dtype=jnp.uint32))
    params = {"student": student_params, "adapters": jax.vmap(composite.init_adapters)(adapter_keys)}
    optimizer = make_optimizer(config.optimizer, config.learning_rate, config.weight_decay)
    # Committed like the epoch's outputs (and the pool's feature arrays), so epoch 2 reuses epoch 1's executable.
    state = jax.device_put(StudentState(params, jax.vmap(optimizer.init)(params)), jax.devices()[0])
    batch_size = min(config.batch_size, int(train.x.shape[0]))
    if composite.head_teachers() and (teacher_heads is None
                                      or any(teacher_heads[k] is None for k in composite.head_teachers())):
        raise ConfigError("a term reads the teachers' classifier heads (ca_mkd_feature) but teacher_heads lacks "
                          "them (see mtkd.distill.teacher_features.pool_heads)")
    epoch_fn = make_composite_epoch(graphdef, optimizer, strategy, composite, batch_size, teacher_heads)
    jitted_epoch = jax.jit(jax.vmap(epoch_fn, in_axes=(0, 0, None, None, None, None, None)), donate_argnums=(0,))
    run_eval = jax.jit(jax.vmap(lambda p, x, y: evaluate(graphdef, p, x, y, config.eval_batch_size),
                                in_axes=(0, None, None)))

    def run_epoch(state, keys, progress):
        return jitted_epoch(state, keys, train.x, train.y, train.teacher_logits, features, progress)

    def run_val(params):
        accuracy, val_loss = run_eval(params["student"], val.x, val.y)
        return {"val_accuracy": accuracy, "val_loss": val_loss}

    loop = run_epochs(state, run_epoch, run_val, lambda s: s.params, config.epochs, seeds, on_epoch, metrics_path,
                      checkpoints)
    best_student = loop.best_params["student"]
    test_accuracy = None
    if test is not None:
        test_accuracy = to_host(run_eval(best_student, test.x, test.y)[0]).tolist()
    return FitResult(graphdef, best_student, seeds, loop.best_epoch, loop.val_accuracy, test_accuracy, loop.history)


__all__ = ["fit_composite"]
