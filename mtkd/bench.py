"""Timing student epochs: no teachers vs K cached teachers (vs the published weighting methods and
the learned selector).

Times are medians over repeated, already-compiled epochs, with every output blocked on, so
ratios compare like with like in one process. No test asserts a time.
"""

from __future__ import annotations

import importlib
import platform
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp

from mtkd.data import DatasetSplits
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import init_students, unstack
from mtkd.optimizers import make_optimizer
from mtkd.distill.steps import FitState, StudentState, init_fit_state, make_epoch
from mtkd.fusion import make_strategy
from mtkd.fusion.strategies import StrategyShapes
from mtkd.models import ModelSpec
from mtkd.timing import epoch_runner, paired_ratios, ratio_summary
from mtkd.teachers import TeacherPool


PUBLISHED_METHODS = ("ebkd", "ca_mkd", "ae_kd", "mmkd", "mtkd_rl")


def published_method_costs(splits: DatasetSplits, pool: TeacherPool, repeats: int = 20,
                           student: ModelSpec = ModelSpec("mlp", {"widths": [100, 100]}),
                           methods=PUBLISHED_METHODS) -> dict:
    """Each published weighting method's student epoch against the uniform average's, in
    interleaved rounds (at least `repeats`): medians, and each ratio's summary under `ratios`."""
    config = TrainConfig()
    graphdef, params = init_students(student, splits.input_shape, splits.num_classes, [0])
    params = unstack(params, 0)
    optimizer = make_optimizer(config.optimizer, config.learning_rate)
    x, y = jnp.asarray(splits.x_train), jnp.asarray(splits.y_train)
    logits = pool.logits(splits)["train"]
    context = pool.strategy_context()
    shapes = StrategyShapes(len(pool), splits.num_classes, tuple(splits.input_shape), x.dtype, config.batch_size,
                            splits.num_train // config.batch_size)
    runners = {}
    for name in ("uniform",) + tuple(methods):
        strategy = make_strategy(name, context)
        epoch = make_epoch(graphdef, optimizer, strategy, config.alpha, config.temperature, config.batch_size)
        state = init_fit_state(StudentState(params, optimizer.init(params)), strategy, jax.random.key(1), shapes)
        runners[name] = epoch_runner(epoch, state, x, y, logits)
    timed = paired_ratios(runners, "uniform", min_rounds=repeats)
    report = {f"epoch_seconds_{name}": value for name, value in timed["seconds"].items()}
    report.update({f"ratio_{name}_uniform": timed["ratios"][name]["median"] for name in methods})
    report["ratios"] = {f"{name}/uniform": timed["ratios"][name] for name in methods}
    return report


def checkpoint_costs(splits: DatasetSplits, pool: TeacherPool, epochs: int = 40, rounds: int = 5, seeds: int = 3,
                     student: ModelSpec = ModelSpec("mlp", {"widths": [100, 100]})) -> dict:
    """What checkpointing costs a real `fit` run (uniform, `seeds` vmapped seeds): seconds per epoch
    without checkpoints, at the default interval, and with a save after every epoch, from epoch
    timestamps (so compilation is left out), the variants interleaved over `rounds` rounds.
    `ratio_default_with_saves` adds one save's cost per `every_seconds` of training."""
    import tempfile

    from mtkd.distill.fit import SplitArrays, fit
    from mtkd.run_checkpoints import CheckpointConfig, EpochCheckpoints

    config = TrainConfig(epochs=epochs)
    logits = pool.logits(splits)
    train = SplitArrays(jnp.asarray(splits.x_train), jnp.asarray(splits.y_train), logits["train"])
    val = SplitArrays(jnp.asarray(splits.x_val), jnp.asarray(splits.y_val))
    strategy = make_strategy("uniform", pool.strategy_context())
    variants = {"none": None, "default": CheckpointConfig(), "every_epoch": CheckpointConfig(every_epochs=1)}
    per_epoch: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(rounds):
            for name, interval in variants.items():
                stamps = []
                checkpoints = (EpochCheckpoints(f"{scratch}/{name}{round_}", interval)
                               if interval is not None else None)
                fit(student, splits.input_shape, splits.num_classes, train, val, strategy, config, list(range(seeds)),
                    on_epoch=lambda record: stamps.append(time.perf_counter()), checkpoints=checkpoints)
                per_epoch[name].append((stamps[-1] - stamps[0]) / (len(stamps) - 1))
    seconds = {name: statistics.median(values) for name, values in per_epoch.items()}
    saves = epochs - 2  # every epoch but the last, after the first stamp
    save_seconds = max(0.0, (seconds["every_epoch"] - seconds["none"]) * (epochs - 1) / saves)
    every = CheckpointConfig().every_seconds
    default = ratio_summary(per_epoch["default"], per_epoch["none"])  # paired within each round
    return {"epochs": epochs, "rounds": rounds, "seeds": seeds,
            **{f"epoch_seconds_{name}": value for name, value in seconds.items()},
            "save_seconds": save_seconds, "default_every_seconds": every,
            "ratio_default": default["median"], "ratio_default_summary": default,
            "ratio_default_with_saves": default["median"] + save_seconds / every,
            "ratio_every_epoch": ratio_summary(per_epoch["every_epoch"], per_epoch["none"])["median"],
            "goal_ratio_default": 1.03}


def student_epoch_costs(splits: DatasetSplits, pool: TeacherPool, repeats: int = 20,
                        student: ModelSpec = ModelSpec("mlp", {"widths": [100, 100]}),
                        log: Callable[[str], None] = print) -> dict:
    config = TrainConfig()
    graphdef, params = init_students(student, splits.input_shape, splits.num_classes, [0])
    params = unstack(params, 0)
    optimizer = make_optimizer(config.optimizer, config.learning_rate)
    state = FitState(StudentState(params, optimizer.init(params)))
    x, y = jnp.asarray(splits.x_train), jnp.asarray(splits.y_train)
    logits = pool.logits(splits)["train"]
    context = pool.strategy_context()
    no_teachers = jnp.zeros((0,) + logits.shape[1:], logits.dtype)

    def epoch(strategy_name):
        return make_epoch(graphdef, optimizer, make_strategy(strategy_name, context), config.alpha,
                          config.temperature, config.batch_size)

    timed = paired_ratios({"none": epoch_runner(epoch("none"), state, x, y, no_teachers),
                           "uniform": epoch_runner(epoch("uniform"), state, x, y, logits)}, "none",
                          min_rounds=repeats)
    alone, uniform = timed["seconds"]["none"], timed["seconds"]["uniform"]
    cached = timed["ratios"]["uniform"]
    log(f"student epoch, no teachers: {1e3 * alone:.2f} ms; {len(pool)} cached teachers (uniform): "
        f"{1e3 * uniform:.2f} ms; ratio {cached['median']:.3f} (min {cached['min']:.3f}, max {cached['max']:.3f}, "
        f"{cached['pairs']} interleaved pairs)")
    steps = splits.num_train // config.batch_size
    report = {
        "dataset": splits.name, "device": jax.devices()[0].device_kind, "platform": platform.machine(),
        "student": student.to_dict(), "batch_size": config.batch_size, "steps_per_epoch": steps,
        "num_teachers": len(pool), "repeats": repeats,
        "epoch_seconds_no_teachers": alone, "epoch_seconds_cached_teachers": uniform,
        "ratio_cached_teachers": cached["median"], "ratio_cached_teachers_summary": cached,
        "goal_ratio_cached_teachers": 1.3,
        "steps_per_second_no_teachers": steps / alone, "steps_per_second_cached_teachers": steps / uniform,
    }
    published = published_method_costs(splits, pool, repeats, student)
    for name in PUBLISHED_METHODS:
        log(f"student epoch under {name}: {1e3 * published[f'epoch_seconds_{name}']:.2f} ms, "
            f"{published[f'ratio_{name}_uniform']:.2f}x uniform (median of {published['ratios'][f'{name}/uniform']['pairs']} "
            f"interleaved pairs, min {published['ratios'][f'{name}/uniform']['min']:.2f}, "
            f"max {published['ratios'][f'{name}/uniform']['max']:.2f})")
    report["published_methods"] = published
    report["checkpoints"] = checkpoint_costs(splits, pool, student=student)
    costs = report["checkpoints"]
    default = costs["ratio_default_summary"]
    log(f"checkpoints: {costs['ratio_default_with_saves']:.3f}x per epoch at the default interval (median of "
        f"{default['pairs']} paired runs, min {default['min']:.3f}, max {default['max']:.3f}; one save "
        f"{1e3 * costs['save_seconds']:.0f} ms), {costs['ratio_every_epoch']:.2f}x saving every epoch")
    try:
        selector = importlib.import_module("agents.benchmark")
    except ModuleNotFoundError:
        return report
    report.update(selector.selector_epoch_cost(splits, pool, repeats=repeats))
    summary = report["ratio_rl_uniform_summary"]
    log(f"student epoch under the selector: {summary['median']:.3f}x uniform (median of {summary['pairs']} "
        f"interleaved pairs, min {summary['min']:.3f}, max {summary['max']:.3f})")
    return report
