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
import numpy as np

from mtkd.data import DatasetSplits
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import init_students, unstack
from mtkd.optimizers import make_optimizer
from mtkd.distill.steps import FitState, StudentState, init_fit_state, make_epoch
from mtkd.fusion import make_strategy
from mtkd.fusion.strategies import StrategyShapes
from mtkd.models import ModelSpec
from mtkd.distill.timed_epochs import MLP_STUDENT, seeds_epoch_runner
from mtkd.timing import epoch_runner, interleaved_rounds, paired_ratios, ratio_summary
from mtkd.runs import save_figure
from mtkd.teachers import TeacherPool


PUBLISHED_METHODS = ("ebkd", "ca_mkd", "ae_kd", "mmkd", "mtkd_rl")
CNN_STUDENT = ModelSpec("cnn1d", {})
SCALING_SEEDS = (1, 2, 4, 8, 16)
SCALING_TEACHERS = (1, 2, 4, 8, 16)


def peer_costs(splits: DatasetSplits, pool: TeacherPool, peer: str = "torch", seeds: int = 8, min_rounds: int = 5,
               budget_seconds: float = 60.0, threads: int | None = None,
               log: Callable[[str], None] = print) -> dict:
    """Student steps per second of the JAX epoch against a plain PyTorch loop doing the same work
    (`mtkd.torch_peer`: MLP, K cached teachers, batch, Adam, alpha, T), interleaved in one process:
    one seed against one PyTorch run, and `seeds` vmapped seeds against `seeds` PyTorch runs in a
    row. Ratios are PyTorch seconds over JAX seconds, per round."""
    from mtkd.torch_peer import TorchEpoch, cpu_threads, import_torch

    if peer != "torch":
        raise ValueError(f"unknown peer {peer!r}")
    torch = import_torch()
    threads = threads or cpu_threads()  # XLA on the CPU uses every core it may run on
    config = TrainConfig()
    logits = pool.logits(splits)["train"]
    teachers = np.asarray(logits)
    widths = MLP_STUDENT.options["widths"]
    peers = [TorchEpoch(splits.x_train, splits.y_train, teachers, splits.num_classes, widths, config.batch_size,
                        config.learning_rate, config.alpha, config.temperature, threads, seed=s) for s in range(seeds)]
    peers[0](0)  # warm-up, as the JAX runners are compiled and run once
    runners = {"jax_1": seeds_epoch_runner(splits, logits, 1, config=config),
               "torch_1": peers[0],
               f"jax_{seeds}": seeds_epoch_runner(splits, logits, seeds, config=config),
               f"torch_{seeds}": lambda i: [run(i) for run in peers]}
    times = interleaved_rounds(runners, min_rounds=min_rounds, max_rounds=min_rounds, budget_seconds=budget_seconds)
    steps = splits.num_train // config.batch_size
    seconds = {name: statistics.median(values) for name, values in times.items()}
    one = ratio_summary(times["torch_1"], times["jax_1"])
    many = ratio_summary(times[f"torch_{seeds}"], times[f"jax_{seeds}"])
    report = {"peer": "torch", "torch_version": torch.__version__, "threads": threads, "seeds": seeds,
              "steps_per_epoch": steps, "epoch_seconds": seconds,
              "steps_per_second_jax_1": steps / seconds["jax_1"],
              "steps_per_second_torch_1": steps / seconds["torch_1"],
              f"steps_per_second_jax_{seeds}": seeds * steps / seconds[f"jax_{seeds}"],
              f"steps_per_second_torch_{seeds}": seeds * steps / seconds[f"torch_{seeds}"],
              "ratio_jax_torch_1": one["median"], "ratio_jax_torch_1_summary": one,
              f"ratio_jax_torch_{seeds}": many["median"], f"ratio_jax_torch_{seeds}_summary": many,
              "goal_ratio_jax_torch_1": 4.0, f"goal_ratio_jax_torch_{seeds}": 15.0}
    log(f"against PyTorch {torch.__version__} ({threads} threads): one seed {report['steps_per_second_jax_1']:.0f} "
        f"vs {report['steps_per_second_torch_1']:.0f} steps/s, {one['median']:.2f}x (min {one['min']:.2f}, "
        f"max {one['max']:.2f}, {one['pairs']} pairs); {seeds} vmapped seeds vs {seeds} runs in a row "
        f"{many['median']:.2f}x (min {many['min']:.2f}, max {many['max']:.2f})")
    return report


def scaling_costs(splits: DatasetSplits, pool: TeacherPool, rounds: int = 3, budget_seconds: float = 60.0,
                  log: Callable[[str], None] = print) -> dict:
    """Student steps per second (all seeds together) of the uniform-fusion epoch for 1, 2, 4, 8 and 16
    vmapped seeds (K = the pool's teachers, MLP), for K = 1, 2, 4, 8 and 16 cached teachers (one
    seed; the pool's logits repeated to K), and for the 1-D CNN student (one seed), timed in
    interleaved rounds."""
    config = TrainConfig()
    logits = pool.logits(splits)["train"]
    steps = splits.num_train // config.batch_size
    cases, work = {}, {}
    for seeds in SCALING_SEEDS:
        cases[f"seeds_{seeds}"] = seeds_epoch_runner(splits, logits, seeds, config=config)
        work[f"seeds_{seeds}"] = seeds
    for k in SCALING_TEACHERS:
        tiled = jnp.concatenate([logits] * -(-k // logits.shape[0]), axis=0)[:k]
        cases[f"teachers_{k}"] = seeds_epoch_runner(splits, tiled, 1, config=config)
        work[f"teachers_{k}"] = 1
    cases["cnn1d"] = seeds_epoch_runner(splits, logits, 1, CNN_STUDENT, config=config)
    work["cnn1d"] = 1
    times = interleaved_rounds(cases, min_rounds=rounds, max_rounds=rounds, budget_seconds=budget_seconds)
    rate = {name: work[name] * steps / statistics.median(values) for name, values in times.items()}
    report = {"steps_per_epoch": steps, "rounds": len(times["cnn1d"]),
              "seeds": {str(s): rate[f"seeds_{s}"] for s in SCALING_SEEDS},
              "teachers": {str(k): rate[f"teachers_{k}"] for k in SCALING_TEACHERS},
              "students": {"mlp": rate[f"teachers_{len(pool)}"] if len(pool) in SCALING_TEACHERS else None,
                           "cnn1d": rate["cnn1d"]},
              "cnn_student": CNN_STUDENT.to_dict()}
    log("scaling, steps/s: seeds " + ", ".join(f"{s}: {v:.0f}" for s, v in report["seeds"].items())
        + "; teachers " + ", ".join(f"{k}: {v:.0f}" for k, v in report["teachers"].items())
        + f"; cnn1d student {rate['cnn1d']:.0f}")
    return report


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
                checkpoints = (EpochCheckpoints(f"{scratch}/{name}{round_}", interval)
                               if interval is not None else None)
                per_epoch[name].append(_fit_epoch_seconds(
                    lambda on_epoch: fit(student, splits.input_shape, splits.num_classes, train, val, strategy, config,
                                         list(range(seeds)), on_epoch=on_epoch, checkpoints=checkpoints)))
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


def _fit_epoch_seconds(run: Callable[[Callable[[dict], None]], object]) -> float:
    """Seconds per epoch of a real run, compilation left out: `run(on_epoch)` trains, and the
    progress callback's timestamps span the epochs between the first and the last read of the
    loop's buffered scalars (`seed_loop`: epochs reach the host in blocks)."""
    stamps = []
    run(lambda record: stamps.append((record["epoch"], time.perf_counter())))
    # All epochs of a block are seen at its read, microseconds apart; blocks are at least an epoch
    # apart. Time from the first block's read to the last's, over the epochs between them.
    (first_epoch, first), (last_epoch, last) = stamps[0], stamps[-1]
    close = min(1e-3, 0.5 * (last - first) / max(1, last_epoch - first_epoch))
    first_block_end = max(epoch for epoch, moment in stamps if moment - first < close)
    return (last - first) / (last_epoch - first_block_end)


def loop_costs(splits: DatasetSplits, pool: TeacherPool, epochs: int = 61, rounds: int = 3,
               student: ModelSpec = ModelSpec("mlp", {"widths": [100, 100]}),
               log: Callable[[str], None] = print) -> dict:
    """A real run's epochs against the bare epoch: seconds per epoch of `fit` (one seed, uniform;
    validation, the best epoch, metrics, the NaN check), with its scalars read back every epoch
    (`sync_every` 1, the earlier loop) and from the on-device buffer (the default), against
    `seeds_epoch_runner`'s bare epoch; the three interleaved in each of `rounds` rounds."""
    from mtkd.distill import seed_loop
    from mtkd.distill.fit import SplitArrays, fit

    config = TrainConfig(epochs=epochs)
    logits = pool.logits(splits)
    train = SplitArrays(jnp.asarray(splits.x_train), jnp.asarray(splits.y_train), logits["train"])
    val = SplitArrays(jnp.asarray(splits.x_val), jnp.asarray(splits.y_val))
    strategy = make_strategy("uniform", pool.strategy_context())
    bare = seeds_epoch_runner(splits, logits["train"], 1, student, config=config)
    default_sync = seed_loop.SYNC_EVERY
    per_epoch: dict[str, list[float]] = {"bare": [], "synced": [], "buffered": []}

    def real_run(sync_every):
        seed_loop.SYNC_EVERY = sync_every
        try:
            return _fit_epoch_seconds(lambda on_epoch: fit(student, splits.input_shape, splits.num_classes, train, val,
                                                           strategy, config, [0], on_epoch=on_epoch))
        finally:
            seed_loop.SYNC_EVERY = default_sync

    for round_ in range(rounds):
        started = time.perf_counter()
        for i in range(20):
            bare(round_ * 20 + i)
        per_epoch["bare"].append((time.perf_counter() - started) / 20)
        per_epoch["synced"].append(real_run(1))
        per_epoch["buffered"].append(real_run(default_sync))
    report = {"epochs": epochs, "rounds": rounds, "sync_every": default_sync,
              **{f"epoch_seconds_{name}": statistics.median(values) for name, values in per_epoch.items()},
              "ratio_buffered_bare": ratio_summary(per_epoch["buffered"], per_epoch["bare"]),
              "ratio_synced_bare": ratio_summary(per_epoch["synced"], per_epoch["bare"]),
              "ratio_synced_buffered": ratio_summary(per_epoch["synced"], per_epoch["buffered"]),
              "goal_ratio_buffered_bare": 1.3}
    log(f"a real run's epoch: {report['ratio_buffered_bare']['median']:.2f}x the bare epoch with the scalars "
        f"buffered on the device, {report['ratio_synced_bare']['median']:.2f}x read every epoch")
    return report


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
    report["loop"] = loop_costs(splits, pool, student=student, log=log)
    costs = report["checkpoints"]
    default = costs["ratio_default_summary"]
    log(f"checkpoints: {costs['ratio_default_with_saves']:.3f}x per epoch at the default interval (median of "
        f"{default['pairs']} paired runs, min {default['min']:.3f}, max {default['max']:.3f}; one save "
        f"{1e3 * costs['save_seconds']:.0f} ms), {costs['ratio_every_epoch']:.2f}x saving every epoch")
    try:
        selector = importlib.import_module("mtkd.agents.benchmark")
    except ModuleNotFoundError:
        return report
    report.update(selector.selector_epoch_cost(splits, pool, repeats=repeats))
    summary = report["ratio_rl_uniform_summary"]
    log(f"student epoch under a saved policy (the rl strategy): {summary['median']:.3f}x uniform (median of "
        f"{summary['pairs']} interleaved pairs, min {summary['min']:.3f}, max {summary['max']:.3f})")
    joint = report["joint_selector"] = selector.joint_selector_cost(splits, pool)
    epoch, plain = joint["ratio_joint_epoch_validated_uniform_summary"], joint["ratio_joint_epoch_unvalidated_uniform_summary"]
    log(f"joint selector ({joint['seeds']} seeds): epoch {joint['ratio_joint_epoch_uniform']:.3f}x uniform "
        f"({plain['median']:.3f}x without the environment's validation, min {plain['min']:.3f}, max {plain['max']:.3f}; "
        f"{epoch['median']:.3f}x with it, before each credit round; {plain['pairs']} pairs), credit round "
        f"{joint['ratio_credit_round_uniform']:.2f}x "
        f"a uniform epoch, one every {joint['rounds_every']} epochs: {joint['ratio_joint_amortised_uniform']:.3f}x "
        f"per epoch in all")
    population = report["population_selector"] = selector.population_cost(splits, pool)
    log(f"population selector: {population['population']} students vmapped train "
        f"{population['students_per_second_population']:.1f} student-epochs/s against "
        f"{population['students_per_second_one']:.1f} for one student ({population['vmap_speedup']:.2f}x); a population "
        f"epoch costs {population['ratio_population_epoch_row_epoch']:.2f}x a {population['seeds']}-seed row's, so the "
        f"default rl row ({population['generations']} generations) should cost about "
        f"{population['predicted_ratio_rl_uniform']:.1f}x a uniform row")
    return report


def plot_scaling(scaling: dict, path) -> None:
    """Steps/s against vmapped seeds and against cached teachers (log-log), the CNN student as a
    marker on the teachers panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    seeds = [int(s) for s in scaling["seeds"]]
    left.plot(seeds, list(scaling["seeds"].values()), "o-", label="vmapped seeds (MLP, K = pool)")
    left.plot(seeds, [scaling["seeds"]["1"] * s for s in seeds], ":", color="grey", label="linear in seeds")
    left.set(xscale="log", yscale="log", xlabel="seeds", ylabel="student steps / s (all seeds)")
    left.set_xticks(seeds, [str(s) for s in seeds])
    left.legend(fontsize=8)
    teachers = [int(k) for k in scaling["teachers"]]
    right.plot(teachers, list(scaling["teachers"].values()), "o-", label="MLP student, 1 seed")
    right.axhline(scaling["students"]["cnn1d"], color="C1", ls="--", label="1-D CNN student, 1 seed")
    right.set(xscale="log", xlabel="cached teachers K", ylabel="student steps / s")
    right.set_xticks(teachers, [str(k) for k in teachers])
    right.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path, dpi=120)  # written whole, as every other plot
    plt.close(figure)
