"""Teacher logits kept on disk between runs, so a rerun on the same pool and data skips the pool's
forward passes (on MNIST-1D about a second of start-up; on an image data set, minutes).

A file is named by a hash of everything the logits depend on: each teacher's recorded checksum
and architecture, the examples of each split (their indices and input bytes), the batch size of
the forward pass, and the JAX version and device kind that computed them (another machine may
round differently). So a retrained teacher, another split or another machine never reads a stale
file; and a file that does not read back as the expected arrays is computed again and replaced.

On by default; `MTKD_TEACHER_CACHE=off` turns it off, `MTKD_TEACHER_CACHE=DIR` moves it (default
`~/.cache/mtkd/teacher_logits`). The arrays read back are the ones computed: no number changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jaxlib
import numpy as np

from mtkd.cache_dirs import cache_setting

FORMAT = "mtkd-teacher-logits/1"


def teacher_cache_dir() -> Path | None:
    return cache_setting("MTKD_TEACHER_CACHE", "teacher_logits")


def outputs_key(teachers: Sequence[Mapping[str, Any]], inputs: Mapping[str, np.ndarray],
                indices: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> str:
    """A hex digest of the teachers' manifest entries, every split's inputs and the indices that
    carved them, and `extra` (e.g. the forward pass's batch size)."""
    digest = hashlib.blake2b(digest_size=20)
    device = jax.devices()[0]
    header = {"format": FORMAT, "teachers": list(teachers), "extra": dict(extra), "jax": jax.__version__,
              "jaxlib": jaxlib.__version__,
              "device": f"{device.platform}:{device.device_kind}"}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name, array in sorted({**{f"x/{k}": v for k, v in inputs.items()},
                               **{f"index/{k}": v for k, v in indices.items()}}.items()):
        array = np.ascontiguousarray(array)
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def cached_outputs(key: str, expected_shapes: Mapping[str, tuple[int, ...]],
                   compute: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays stored under `key` if they read back with `expected_shapes`; otherwise
    `compute()`, stored for next time (a failed write only loses the saving)."""
    directory = teacher_cache_dir()
    if directory is None:
        return {name: np.asarray(value) for name, value in compute().items()}
    path = directory / f"{key}.npz"
    stored = _read(path, expected_shapes)
    if stored is not None:
        return stored
    arrays = {name: np.asarray(value) for name, value in compute().items()}
    _write(path, arrays)
    return arrays


def _read(path: Path, expected_shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:  # zip members carry CRCs: a torn file fails here
            arrays = {name: stored[name] for name in expected_shapes}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    if any(arrays[name].shape != tuple(shape) for name, shape in expected_shapes.items()):
        return None
    return arrays


def _write(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed: a reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.partial")
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    except OSError:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


__all__ = ["cached_outputs", "outputs_key", "teacher_cache_dir"]
