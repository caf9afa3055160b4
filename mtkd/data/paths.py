"""Where prepared data sets live on disk."""

from __future__ import annotations

import os

from mtkd.cache_dirs import cache_root

# Environment variable that overrides the default data directory.
DATA_DIR_ENV = "MTKD_DATA_DIR"


def default_data_dir() -> str:
    """`$MTKD_DATA_DIR` if set, else `~/.cache/mtkd/tensorflow_datasets`."""
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return os.path.expanduser(from_env)
    return str(cache_root() / "tensorflow_datasets")


def resolve_data_dir(data_dir: str | os.PathLike | None) -> str:
    """The directory to use: `data_dir` itself (user-expanded, absolute), or the default."""
    chosen = default_data_dir() if data_dir is None else os.fspath(data_dir)
    resolved = os.path.abspath(os.path.expanduser(chosen))
    if os.path.exists(resolved) and not os.path.isdir(resolved):
        from mtkd.errors import DatasetError

        raise DatasetError(f"data directory {resolved} is a file, not a directory (--data-dir or MTKD_DATA_DIR)")
    return resolved
