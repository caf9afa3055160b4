"""Where mtkd keeps what it computes once and reuses: folders under `~/.cache/mtkd/`, each of which
an environment variable can move (a directory) or, for the caches that are only a saving, turn off.
"""

from __future__ import annotations

import os
from pathlib import Path

OFF = ("0", "off", "false", "no")


def cache_root() -> Path:
    return Path.home() / ".cache" / "mtkd"


def cache_setting(variable: str, name: str) -> Path | None:
    """`$variable` as a directory, None where it says off (`OFF`), else `~/.cache/mtkd/name`."""
    setting = os.environ.get(variable, "")
    if setting.lower() in OFF:
        return None
    return Path(setting).expanduser() if setting else cache_root() / name


__all__ = ["OFF", "cache_root", "cache_setting"]
