"""Timing jitted epochs for benchmarks: compiled first, every output blocked on, medians over
repeats (in interleaved rounds when several cases are compared). No test asserts a time."""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp


def time_epoch(epoch_fn, state, x, y, teacher_logits, repeats: int) -> float:
    """Median seconds of one jitted epoch (compiled first, outputs blocked on)."""
    run = jax.jit(epoch_fn)
    key = jax.random.key(0)
    jax.block_until_ready(run(state, key, x, y, teacher_logits, jnp.float32(0)))
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        jax.block_until_ready(run(state, jax.random.fold_in(key, i), x, y, teacher_logits, jnp.float32(0)))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def interleaved_epoch_seconds(epochs: dict, states: dict, x, y, teacher_logits, repeats: int) -> dict:
    """Median seconds of each named jitted epoch, timed in round-robin rounds (every case once
    per round), so that drifts of the machine's speed hit all cases alike and their ratios."""
    runs = {name: jax.jit(fn) for name, fn in epochs.items()}
    key = jax.random.key(0)
    for name, run in runs.items():  # compile and warm up
        jax.block_until_ready(run(states[name], key, x, y, teacher_logits, jnp.float32(0.5)))
    times = {name: [] for name in runs}
    for i in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            jax.block_until_ready(run(states[name], jax.random.fold_in(key, i), x, y, teacher_logits, jnp.float32(0.5)))
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(ts) for name, ts in times.items()}


__all__ = ["interleaved_epoch_seconds", "time_epoch"]
