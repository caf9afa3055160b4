"""Shared fixtures: one prepared data directory and one tiny trained teacher pool per session."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile

import jax
import pytest

from mtkd.compilation_cache import enable_compilation_cache
from mtkd.data import load_dataset
from mtkd.distill.pool_training import train_pool
from mtkd.teachers.pool import POOL_FILE
from mtkd.teachers.spec import pool_spec_from_dict

# One persistent compilation cache for the session, shared with the commands the tests start as
# subprocesses (they inherit the variable): a program compiled once is read back after that.
# Two test workers may share one GPU: neither may take most of its memory up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("MTKD_COMPILATION_CACHE", tempfile.mkdtemp(prefix="mtkd-jax-cache-"))
# Teacher logits kept between runs go to the session's own folder too, not the user's HOME.
os.environ.setdefault("MTKD_TEACHER_CACHE", tempfile.mkdtemp(prefix="mtkd-teacher-cache-"))
# Compilation is about 40% of the suite's time on a 2-core CPU (measured: a warm cache runs
# test_agents_joint and test_composition in 92 s against 147 s cold). XLA's backend optimisation
# level 0 compiles faster (134 s against 152 s there). The tests check numbers against independent
# references with tolerances, and every pair of runs a test compares is compiled alike (the
# commands it starts inherit the flag), so nothing a test asserts depends on the level. Set
# before JAX starts its backend; `tests/test_devices.py` and `test_distributed.py` add their
# device counts to it.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0"]))
enable_compilation_cache()
# Every program this process compiles goes to the cache, however short its compilation (the
# commands' own threshold skips the small ones): the commands the tests start read them back.
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

TINY_POOL = {
    "defaults": {"epochs": 3, "batch_size": 128, "learning_rate": 3e-3},
    "teachers": [
        {"name": "mlp_a", "arch": "mlp", "options": {"widths": [32]}},
        {"name": "mlp_b", "arch": "mlp", "options": {"widths": [32]}, "seed": 1, "label_noise": 0.5},
        {"name": "cnn", "arch": "cnn1d", "options": {"channels": [8, 8]}, "data_fraction": 0.5},
    ],
}


# A two-teacher pool spec for commands that train a pool of their own (`mtkd teachers train`, an
# ablation's `pool = "spec.toml"`).
SMALL_POOL_SPEC = """
[defaults]
epochs = 6
batch_size = 256
[[teachers]]
name = "small"
arch = "mlp"
options = { widths = [16] }
[[teachers]]
name = "wide"
arch = "mlp"
options = { widths = [64] }
seed = 3
"""


@contextlib.contextmanager
def shared_by_workers(tmp_path_factory, name: str):
    """A folder every test worker of this session shares (pytest-xdist gives each its own temp
    folder, under one common parent), and a lock held while the caller fills it: what one worker
    built, the others reuse."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield root / name
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    with shared_by_workers(tmp_path_factory, "tfds") as folder:
        folder.mkdir(exist_ok=True)
        load_dataset("mnist1d", data_dir=str(folder))  # prepared once, by the first worker
    return str(folder)


@pytest.fixture(scope="session")
def mnist1d(data_dir):
    return load_dataset("mnist1d", data_dir=data_dir)


@pytest.fixture(scope="session")
def tiny_pool_dir(tmp_path_factory, data_dir, mnist1d):
    with shared_by_workers(tmp_path_factory, "pool") as out:
        if not (out / POOL_FILE).is_file():  # trained once, by the first worker that needs it
            train_pool("mnist1d", pool_spec_from_dict(TINY_POOL, "tiny"), out, data_dir=data_dir, log=lambda line: None)
    return out


def metrics_without_times(path) -> list[dict]:
    """A metrics file's records without `wall_time`, the one value a rerun or a resume does not
    reproduce (every other number must match exactly)."""
    import json

    return [{k: v for k, v in json.loads(line).items() if k != "wall_time"}
            for line in open(path).read().splitlines()]
