"""Students in chunks (`mtkd.distill.seed_map`): the chunked map computes each student as a loop
over students does; the chosen chunk fits the memory the analysis reports; a run in chunks gives
the run all at once, to rounding; the setting is typed and kept out of a run's signature."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.distill import seed_map as seed_map_module
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.distill.seed_map import fitting_chunk, program_bytes, seed_map
from mtkd.errors import ConfigError
from mtkd.fusion.strategies import StrategyContext, make_strategy
from mtkd.models import ModelSpec


def _student(params, key, shared, scale):
    """A per-student function with a pytree state, a key, shared data and a scalar."""
    noise = jax.random.normal(key, (3,))
    hidden = jnp.tanh(shared @ params["w"] + params["b"] + noise)
    return {"w": params["w"] * scale, "b": params["b"] + hidden.mean(axis=0)}, {"loss": (hidden ** 2).sum()}


def _students(count):
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(count, 4, 3)), jnp.float32),
              "b": jnp.asarray(rng.normal(size=(count, 3)), jnp.float32)}
    keys = jax.random.split(jax.random.key(1), count)
    shared = jnp.asarray(rng.normal(size=(5, 4)), jnp.float32)
    return params, keys, shared


def _loop_reference(params, keys, shared, scale):
    """Each student on its own, in NumPy: the tanh layer and the updates by hand."""
    out_w, out_b, losses = [], [], []
    for i in range(keys.shape[0]):
        noise = np.asarray(jax.random.normal(keys[i], (3,)))
        w, b = np.asarray(params["w"][i]), np.asarray(params["b"][i])
        hidden = np.tanh(np.asarray(shared) @ w + b + noise)
        out_w.append(w * scale)
        out_b.append(b + hidden.mean(axis=0))
        losses.append((hidden ** 2).sum())
    return np.stack(out_w), np.stack(out_b), np.asarray(losses)


@pytest.mark.parametrize("count,chunk,devices", [(5, 0, 1), (5, 1, 1), (5, 2, 1), (6, 4, 1), (6, 1, 2), (8, 3, 2)])
def test_chunked_map_equals_each_student_alone(count, chunk, devices):
    params, keys, shared = _students(count)
    mapped = jax.jit(seed_map(_student, (0, 0, None, None), chunk, devices))
    state, metrics = mapped(params, keys, shared, jnp.float32(0.5))
    w, b, losses = _loop_reference(params, keys, shared, 0.5)
    np.testing.assert_allclose(np.asarray(state["w"]), w, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(state["b"]), b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(metrics["loss"]), losses, rtol=1e-5)


def test_empty_leaves_and_a_remainder_keep_their_shapes():
    """A state may hold empty arrays (a strategy without teachers): (5, 0) stays (5, 0) in chunks of 2."""
    state = {"empty": jnp.zeros((5, 0, 3)), "x": jnp.arange(5.0)}
    out = jax.jit(seed_map(lambda s: {"empty": s["empty"] * 2, "x": s["x"] ** 2}, (0,), 2))(state)
    assert out["empty"].shape == (5, 0, 3)
    np.testing.assert_array_equal(np.asarray(out["x"]), np.arange(5.0) ** 2)


def test_a_chunk_plans_less_memory_than_all_students_at_once():
    """XLA's own analysis of the compiled programs: the wide intermediate is held per chunk."""
    def wide(x):
        return jnp.sin(jnp.outer(x, x)).sum()

    xs = jnp.ones((16, 512), jnp.float32)
    at_once = program_bytes(jax.jit(seed_map(wide, (0,), 0)).lower(xs))
    in_twos = program_bytes(jax.jit(seed_map(wide, (0,), 2)).lower(xs))
    one_student = 512 * 512 * 4
    assert at_once >= 16 * one_student
    assert in_twos < 4 * one_student < at_once


class _Lowered:
    """A lowered program whose analysis reports `bytes` (as `program_bytes` reads it)."""

    def __init__(self, size):
        stats = types.SimpleNamespace(temp_size_in_bytes=size, argument_size_in_bytes=0, output_size_in_bytes=0,
                                      alias_size_in_bytes=0)
        self.compile = lambda: types.SimpleNamespace(memory_analysis=lambda: stats)
        self.as_text = lambda: "func.func public @main() { stablehlo.add }"


def _chosen(monkeypatch, memory, cost, per_device=45):
    monkeypatch.setattr(seed_map_module, "memory_budget", lambda device: memory)
    tried, lines = [], []

    def lower(chunk):
        tried.append(chunk)
        return _Lowered(cost(chunk or per_device))

    return fitting_chunk(lower, per_device, types.SimpleNamespace(platform="gpu"), lines.append), tried, lines


def test_all_students_at_once_when_they_fit(monkeypatch):
    chunk, tried, lines = _chosen(monkeypatch, 100_000, lambda students: 1_000 * students)
    assert (chunk, tried, lines) == (0, [0], [])  # 45,000 <= 100,000: one compilation, no line


def test_the_chunk_is_an_equal_split_that_fits(monkeypatch):
    # 1 GB fixed + 1 GB a student, 30 GB to plan in: the estimate says 45 * 30 / 46 = 29 at once,
    # split evenly as 2 chunks of 23, which cost 24 <= 30.
    chunk, tried, lines = _chosen(monkeypatch, 30 * 2**30, lambda students: (1 + students) * 2**30)
    assert (chunk, tried) == (23, [0, 23])
    assert lines and "45 students need 46.0 GiB" in lines[0] and "23 at a time" in lines[0]


def test_halves_until_the_chunk_fits(monkeypatch):
    # A fixed cost the per-student estimate does not see: 20 GB + 1 GB a student, 30 GB to plan in.
    # The estimate, 45 * 30 / 65 = 20, split evenly is 3 chunks of 15 (35 GB); halved, 7 chunks of 7 (27 GB).
    chunk, tried, _ = _chosen(monkeypatch, 30 * 2**30, lambda students: (20 + students) * 2**30)
    assert (chunk, tried) == (7, [0, 15, 7])


def test_refuses_when_one_student_alone_does_not_fit(monkeypatch):
    with pytest.raises(ConfigError, match="one student alone needs"):
        _chosen(monkeypatch, 0.6 * 2**30, lambda students: 2**31 * students)


def test_unknown_memory_runs_everything_at_once(monkeypatch):
    chunk, tried, _ = _chosen(monkeypatch, None, lambda students: 2**50)
    assert (chunk, tried) == (0, [0])  # lowered to look for convolutions, never compiled


def test_on_the_cpu_students_of_a_convolutional_model_run_one_at_a_time():
    """A vmapped convolution with per-student kernels is one grouped convolution: slower on XLA:CPU
    than the students in turn, and larger than planned. Matrix products stay vmapped."""
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.normal(size=(2, 8, 8, 3)), jnp.float32)
    kernels = jnp.asarray(rng.normal(size=(6, 3, 3, 3, 4)), jnp.float32)
    matrices = jnp.asarray(rng.normal(size=(6, 3, 4)), jnp.float32)

    def conv(kernel):
        return jax.lax.conv_general_dilated(images, kernel, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC")).sum()

    def product(matrix):
        return (images @ matrix).sum()

    cpu = jax.devices("cpu")[0]
    lines = []
    seed_map_module._said.clear()  # said once per process: this test's own
    for fn, args, expected in ((conv, kernels, 1), (product, matrices, 0)):
        for _ in range(2):  # said the first time only
            chunk = fitting_chunk(lambda c, fn=fn, args=args: jax.jit(seed_map(fn, (0,), c)).lower(args), 6, cpu,
                                  lines.append)
            assert chunk == expected
    assert len(lines) == 1 and "one at a time on the CPU" in lines[0]
    # One student alone is never the grouped case, whatever it computes.
    assert fitting_chunk(lambda c: jax.jit(seed_map(conv, (0,), c)).lower(kernels[:1]), 1, cpu) == 0
    np.testing.assert_allclose(np.asarray(jax.jit(seed_map(conv, (0,), 1))(kernels)),
                               np.asarray([conv(k) for k in kernels]), rtol=1e-5)


def _run(vmap_chunk, seeds=(0, 1, 2, 3, 4)):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(96, 12)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 4, 96), jnp.int32)
    teachers = jnp.asarray(rng.normal(size=(3, 96, 4)), jnp.float32)
    masks = np.asarray([[1, 0, 0], [0, 1, 1], [1, 1, 1], [0, 0, 1], [1, 0, 1]], np.float32)[:len(seeds)]
    strategy = make_strategy("uniform", StrategyContext(("a", "b", "c"), (0.5, 0.5, 0.5)))
    return fit(ModelSpec("mlp", {"widths": [16]}), (12,), 4, SplitArrays(x, y, teachers), SplitArrays(x[:48], y[:48]),
               strategy, TrainConfig(epochs=3, batch_size=32, vmap_chunk=vmap_chunk), list(seeds),
               test=SplitArrays(x[48:], y[48:]), teacher_masks=masks)


def test_a_run_in_chunks_is_the_run_at_once_to_rounding():
    at_once, in_twos = _run(0), _run(2)
    assert in_twos.seeds == at_once.seeds and in_twos.best_epoch == at_once.best_epoch
    np.testing.assert_allclose(in_twos.val_accuracy, at_once.val_accuracy, atol=1e-6)
    np.testing.assert_allclose(in_twos.test_accuracy, at_once.test_accuracy, atol=1e-6)
    for a, b in zip(jax.tree.leaves(in_twos.params), jax.tree.leaves(at_once.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    for ours, theirs in zip(in_twos.history, at_once.history):
        np.testing.assert_allclose(ours["train_loss"], theirs["train_loss"], rtol=1e-5)
    # Each student is its own: the third (its seed and mask) trained beside two others, one at a time.
    alone = _run(1, seeds=(0, 1, 2))
    for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(in_twos.params)):
        np.testing.assert_allclose(np.asarray(a)[2], np.asarray(b)[2], rtol=1e-4, atol=1e-6)


def test_a_machine_too_small_for_one_student_is_refused_before_training(monkeypatch):
    monkeypatch.setattr(seed_map_module, "memory_budget", lambda device: 16)
    with pytest.raises(ConfigError, match="one student alone needs .* use a smaller batch_size"):
        _run(0)


def test_the_setting_is_checked_and_stays_out_of_the_signature():
    with pytest.raises(ConfigError, match="vmap_chunk must be >= 0"):
        TrainConfig(vmap_chunk=-1)
    assert "vmap_chunk" not in TrainConfig(vmap_chunk=4).signature()
    assert TrainConfig(vmap_chunk=4).signature() == TrainConfig().signature()
