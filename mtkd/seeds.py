"""The student seeds of a run, checked once for the commands (`--seeds`, `--first-seed`) and the
Python API (a count or a list). Light: the command-line parser imports it."""

from __future__ import annotations

from typing import Sequence

from mtkd.errors import ConfigError


def seed_list(seeds: int | Sequence[int], first_seed: int = 0) -> list[int]:
    """`seeds` students from `first_seed` on, or the seeds listed (uint32 PRNG seeds)."""
    if isinstance(seeds, bool) or not isinstance(seeds, (int, Sequence)) or isinstance(seeds, str):
        raise ConfigError(f"seeds is a count or a list of seeds, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, got {seeds}")
        if not (0 <= first_seed and first_seed + seeds <= 2 ** 32):
            raise ConfigError(f"--first-seed must be in 0..{2 ** 32 - seeds}, got {first_seed}")
        return list(range(first_seed, first_seed + seeds))
    listed = list(seeds)
    if not listed or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2 ** 32 for s in listed):
        raise ConfigError(f"seeds must list whole numbers in 0..{2 ** 32 - 1}, got {seeds!r}")
    if len(set(listed)) != len(listed):
        raise ConfigError(f"seeds lists a seed twice: {listed}")
    return listed


__all__ = ["seed_list"]
