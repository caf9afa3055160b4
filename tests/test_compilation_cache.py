"""The persistent compilation cache: where it goes, that it can be turned off, and that it keeps
small programs too (a rerun reads back every program a run compiled)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mtkd.compilation_cache import compilation_cache_dir

PROGRAMS = textwrap.dedent("""
    import jax, jax.numpy as jnp
    from mtkd.compilation_cache import enable_compilation_cache
    print(enable_compilation_cache())
    jax.jit(lambda x: x * 2 + 1)(jnp.arange(3.0)).block_until_ready()   # compiles in milliseconds
    jnp.sin(jnp.ones(5)).block_until_ready()                             # an eager operation
""")


def run_programs(env_value: str, home: Path) -> str:
    env = {**os.environ, "MTKD_COMPILATION_CACHE": env_value, "HOME": str(home), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", PROGRAMS], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_cache_directory_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MTKD_COMPILATION_CACHE", raising=False)
    assert compilation_cache_dir() == tmp_path / ".cache" / "mtkd" / "jax_cache"
    monkeypatch.setenv("MTKD_COMPILATION_CACHE", "Off")
    assert compilation_cache_dir() is None
    monkeypatch.setenv("MTKD_COMPILATION_CACHE", str(tmp_path / "elsewhere"))
    assert compilation_cache_dir() == tmp_path / "elsewhere"


def test_small_programs_are_kept_and_off_writes_nothing(tmp_path):
    cache = tmp_path / "cache"
    assert run_programs(str(cache), tmp_path) == str(cache)
    entries = [p for p in cache.iterdir() if "atime" not in p.name]
    assert len(entries) >= 2, sorted(p.name for p in cache.iterdir())  # the jitted function and the eager sin
    assert run_programs("off", tmp_path) == "None"
    assert not (tmp_path / ".cache").exists()
