"""Timing jitted epochs for benchmarks on a shared, noisy machine.

Every case is compiled first, then the cases run in interleaved rounds (A, B, C, A, B, C, ...), each
output blocked on. A ratio is taken within each round (case / baseline of the same round), so a
drift of the machine's speed hits both sides of every pair; the report is the median of those
pairwise ratios with its min, max, number of pairs and spread (interquartile range over the
median). Rounds go on until every spread is under `spread` (after `min_rounds`) or the time budget
runs out. No test asserts a time.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np


def epoch_runner(epoch_fn, state, x, y, teacher_logits, progress: float = 0.5) -> Callable[[int], None]:
    """`run(i)`: one compiled epoch of `epoch_fn(state, key_i, x, y, teacher_logits, progress)`,
    blocked on. Compiles (and runs once) before returning."""
    run = jax.jit(epoch_fn)
    key = jax.random.key(0)
    jax.block_until_ready(run(state, key, x, y, teacher_logits, jnp.float32(progress)))
    return lambda i: jax.block_until_ready(run(state, jax.random.fold_in(key, i), x, y, teacher_logits,
                                               jnp.float32(progress)))


def ratio_summary(times: list[float], baseline: list[float]) -> dict:
    """The pairwise ratios times[i] / baseline[i] of one comparison, summarised."""
    ratios = np.asarray(times, np.float64) / np.asarray(baseline, np.float64)
    median = float(np.median(ratios))
    q25, q75 = np.percentile(ratios, [25, 75])
    return {"median": median, "min": float(ratios.min()), "max": float(ratios.max()), "pairs": int(ratios.size),
            "spread": float((q75 - q25) / median)}


def interleaved_rounds(runners: Mapping[str, Callable[[int], None]], min_rounds: int = 10, max_rounds: int = 200,
                       budget_seconds: float = 30.0, baseline: str | None = None, spread: float = 0.05,
                       clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds of every case per round (lists of equal length). Stops after `max_rounds`, when the
    budget is spent (after `min_rounds`), or when every ratio to `baseline` has a spread under
    `spread` (after `min_rounds`)."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    started = clock()
    for index in range(max_rounds):
        for name, run in runners.items():
            before = clock()
            run(index)
            times[name].append(clock() - before)
        if index + 1 < min_rounds:
            continue
        if clock() - started > budget_seconds:
            break
        if baseline is not None and all(ratio_summary(times[name], times[baseline])["spread"] < spread
                                        for name in runners if name != baseline):
            break
    return times


def paired_ratios(runners: Mapping[str, Callable[[int], None]], baseline: str, **options) -> dict:
    """Median seconds per case and the summary of every case's ratio to `baseline`."""
    times = interleaved_rounds(runners, baseline=baseline, **options)
    return {"seconds": {name: statistics.median(values) for name, values in times.items()},
            "ratios": {name: ratio_summary(values, times[baseline]) for name, values in times.items()
                       if name != baseline}}


__all__ = ["epoch_runner", "interleaved_rounds", "paired_ratios", "ratio_summary"]
