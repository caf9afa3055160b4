"""JAX's persistent compilation cache under the mtkd cache directory, so that a second run of a
command (a resume, a rerun with other seeds) skips most of the compilation.

On by default for the `mtkd` commands; `MTKD_COMPILATION_CACHE=off` turns it off and
`MTKD_COMPILATION_CACHE=DIR` puts it elsewhere (default `~/.cache/mtkd/jax_cache`). A cached
executable is the one the compiler would build again, so no number changes.
"""

from __future__ import annotations

from pathlib import Path

import jax

from mtkd.cache_dirs import cache_setting

# Every program is kept, however small: a run compiles about a hundred small ones (parameter
# initialisation, the pool's forward passes, eager array operations) at about 25 ms each, and on a
# 2-core CPU reading them back made a rerun's start-up 7.5 s -> 5.2 s against a 0.2 s threshold.
MIN_COMPILE_SECONDS = 0.0


def compilation_cache_dir() -> Path | None:
    return cache_setting("MTKD_COMPILATION_CACHE", "jax_cache")


def enable_compilation_cache() -> Path | None:
    """Points JAX's persistent cache at `compilation_cache_dir()`; returns it (None when off)."""
    directory = compilation_cache_dir()
    if directory is None:
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return directory


__all__ = ["compilation_cache_dir", "enable_compilation_cache"]
