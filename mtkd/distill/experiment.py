"""Distilling one student under several fusion strategies, over several seeds, on one pool."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax.numpy as jnp

from mtkd.distributed import is_writer
from mtkd.config_files import read_config_file
from mtkd.data import DatasetSplits
from mtkd.distill.config import TrainConfig
from mtkd.distill.composite_fit import fit_composite
from mtkd.distill.composition import bind_loss, model_feature_shapes
from mtkd.distill.fit import FitResult, SplitArrays, fit
from mtkd.distill.loss_config import LossConfig
from mtkd.distill.teacher_features import check_teacher_layers, pool_feature_shapes, pool_features, pool_heads
from mtkd.distill.results import result_row
from mtkd.errors import ConfigError, MtkdError
from mtkd.fusion.strategies import FusionStrategy, StrategyContext, make_strategy, require_stateless
from mtkd.models import ModelSpec
from mtkd.interrupts import stop_point
from mtkd.runs import metrics_stem
from mtkd.run_checkpoints import RunCheckpoints
from mtkd.teachers.leak import pool_rows
from mtkd.teachers.pool import TeacherPool
from mtkd.progress import epoch_reporter, stderr_line


def mean_val_accuracy(record: dict) -> str:
    return f"mean val accuracy {sum(record['val_accuracy']) / len(record['val_accuracy']):.3f}"


def teacher_rows(pool: TeacherPool | None) -> list[dict]:
    """Each teacher's validation and test accuracy and its `leak` check (`mtkd.teachers.leak`)."""
    if pool is None:
        return []
    return pool_rows(pool)


def build_strategies(names: Sequence[str], pool: TeacherPool | None,
                     options: Mapping[str, Any] | None = None):
    """Builds every strategy first, so a bad name fails before any training."""
    context = pool.strategy_context(options) if pool is not None else StrategyContext((), (), dict(options or {}))
    strategies = []
    for name in names:
        strategy = make_strategy(name, context)
        if strategy.uses_teachers and pool is None:
            raise ConfigError(f"strategy {name!r} needs a teacher pool (--teachers DIR)")
        strategies.append(strategy)
    return strategies


def bind_pool_loss(losses: LossConfig, pool: TeacherPool | None, splits: DatasetSplits, student: ModelSpec):
    """Checks a loss configuration against the student's and the teachers' layers and shapes
    (before any training) and returns `(composite, the teachers' cached training-split features
    it reads, the classifier heads it reads or None)`."""
    student_shapes = model_feature_shapes(student, splits.input_shape, splits.num_classes)
    if pool is None:
        if losses.uses_teachers:
            raise ConfigError("the loss configuration has teacher terms but no teacher pool was given")
        return bind_loss(losses, (), student_shapes, [], student.arch), {}, None
    composite = bind_loss(losses, pool.names, student_shapes, pool_feature_shapes(pool, splits), student.arch)
    heads = pool_heads(pool, composite)  # before the features: an external teacher's refusal names the head
    check_teacher_layers(composite, pool, splits)  # a layer a teacher lacks, named with the layers it has
    return composite, pool_features(pool, splits, composite)["train"], heads


def read_loss_file(path: str | Path) -> LossConfig:
    """A loss configuration from a TOML/YAML file holding a `losses` list of terms."""
    raw = read_config_file(path, "loss configuration")  # its errors name the file already
    try:
        return LossConfig.from_dict(raw)
    except ConfigError as error:
        raise ConfigError(f"loss configuration {path}: {error}") from None


def run_strategies(splits: DatasetSplits, pool: TeacherPool | None, strategies: Sequence[FusionStrategy],
                   student: ModelSpec, config: TrainConfig, seeds: Sequence[int],
                   metrics_dir: Path | None = None, log: Callable[[str], None] | None = None,
                   keep_going: bool = False, losses: LossConfig | None = None,
                   checkpoints: RunCheckpoints | None = None,
                   devices: int | None = None) -> tuple[list[dict], dict[str, FitResult]]:
    """Returns one `results.json` row per strategy (and the fit results by strategy name).

    Strategies come from `build_strategies`, called before the output directory is claimed so
    that a bad name or policy fails before anything is written. With `losses` (a composite loss
    configuration, `mtkd.distill.loss_config`) each strategy's weights mix the per-teacher terms
    of that loss instead of the default `alpha * CE + (1 - alpha) * T^2 * KL` objective.

    With `keep_going`, a strategy that fails (e.g. diverges) is reported in its row as
    `error` and the others still run. `devices`: see `fit`. With `checkpoints`, each strategy's loop checkpoints under
    its name (and resumes from there); its checkpoints are dropped once it is done.
    """
    log = log or stderr_line
    if losses is not None:
        for strategy in strategies:  # before any strategy trains
            require_stateless(strategy, "the composite-loss trainer")
    _, features, heads = bind_pool_loss(losses, pool, splits, student) if losses is not None else (None, None, None)
    logits = pool.logits(splits) if pool is not None else None
    train_x, train_y = jnp.asarray(splits.x_train), jnp.asarray(splits.y_train)
    val = SplitArrays(jnp.asarray(splits.x_val), jnp.asarray(splits.y_val))
    test = SplitArrays(jnp.asarray(splits.x_test), jnp.asarray(splits.y_test))
    rows, fits = [], {}
    for index, strategy in enumerate(strategies):
        if index:
            stop_point(f"after {strategies[index - 1].name}")
        train = SplitArrays(train_x, train_y, logits["train"] if strategy.uses_teachers else None)
        started = time.perf_counter()

        progress = epoch_reporter(strategy.name, config.epochs, log, mean_val_accuracy)

        metrics_path = None
        if metrics_dir is not None:
            if is_writer():
                metrics_dir.mkdir(parents=True, exist_ok=True)
            metrics_path = metrics_dir / f"{metrics_stem(strategy.name)}.jsonl"
        loop_checkpoints = checkpoints.loop(strategy.name) if checkpoints is not None else None
        try:
            if losses is None or not strategy.uses_teachers:  # a student alone is trained on CE either way
                result = fit(student, splits.input_shape, splits.num_classes, train, val, strategy, config, seeds,
                             test=test, on_epoch=progress, metrics_path=metrics_path, checkpoints=loop_checkpoints,
                             devices=devices)
            else:
                result = fit_composite(student, splits.input_shape, splits.num_classes, train, val, strategy,
                                       losses, config, seeds, test=test, teacher_features=features,
                                       teacher_names=pool.names, on_epoch=progress, metrics_path=metrics_path,
                                       teacher_heads=heads, checkpoints=loop_checkpoints, devices=devices)
        except MtkdError as error:
            if not keep_going:
                raise
            log(f"  {strategy.name}: failed: {error}")
            rows.append({"strategy": strategy.name, "seeds": list(seeds), "error": str(error)})
            continue
        fits[strategy.name] = result
        rows.append(result_row(strategy.name, result.seeds, result.val_accuracy, result.test_accuracy,
                               best_epoch=result.best_epoch, seconds=round(time.perf_counter() - started, 2)))
    return rows, fits
