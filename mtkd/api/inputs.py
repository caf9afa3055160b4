"""What the API takes besides names: a student as a Flax NNX class, data as NumPy arrays, and
teachers as their logits. Each becomes what the commands read: a registered architecture, a TFDS
data set written by TFDS's own writer (`mtkd data import`), and a pool of external teachers in
the pool cache. Both are named after their content, so calling again with the same arrays reuses
them, and a run's signature (what `--resume` compares) stays the same."""

from __future__ import annotations

import hashlib
import inspect
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from flax import nnx

from mtkd.data.importing import check_arrays, import_arrays_as
from mtkd.data.paths import resolve_data_dir
from mtkd.errors import ConfigError
from mtkd.models import MODELS, ModelSpec

# The constructor arguments mtkd passes to every model; any others are its options.
MODEL_ARGUMENTS = ("input_shape", "num_classes", "rngs")
# Logits keys of the API, named as the data's arrays are (x_train, x_val, x_test), and the split
# each is stored as in an external teacher's file.
LOGIT_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def student_spec(student: Any, options: Mapping[str, Any] | None = None) -> ModelSpec:
    """A `ModelSpec` from an architecture name, a `ModelSpec`, or a Flax NNX module class (then
    registered in `mtkd.models.MODELS` under its class name, once; redefining the class, as a
    notebook cell does when run again, replaces it)."""
    if isinstance(student, ModelSpec):
        if options:
            raise ConfigError("give a ModelSpec's options inside it, not as student_options")
        return student
    if isinstance(student, str):
        return ModelSpec(student, dict(options or {}))
    if isinstance(student, type) and issubclass(student, nnx.Module):
        return ModelSpec(register_model(student), dict(options or {}))
    raise ConfigError(f"a student is a Flax NNX module class, an architecture name or a ModelSpec, got {student!r}")


def register_model(model_class: type) -> str:
    """Registers `model_class` under its class name and returns the name."""
    parameters = inspect.signature(model_class.__init__).parameters
    missing = [name for name in MODEL_ARGUMENTS if name not in parameters]
    if missing:
        raise ConfigError(f"model class {model_class.__name__} must take (input_shape, num_classes, *, rngs, ...): "
                          f"its constructor lacks {', '.join(missing)}")
    name = model_class.__name__
    if name in MODELS:
        known = MODELS.get(name)
        if known is not model_class and (known.__module__, known.__qualname__) != (model_class.__module__,
                                                                                 model_class.__qualname__):
            raise ConfigError(f"model name {name!r} is taken by {known.__module__}.{known.__qualname__}; "
                              f"rename the class {model_class.__module__}.{model_class.__qualname__}")
        MODELS.replace(name, model_class)
    else:
        MODELS.add(name, model_class)
    return name


def content_name(prefix: str, parts: Mapping[str, np.ndarray]) -> str:
    """`prefix_` plus 12 hex digits of a SHA-256 over the arrays' names, shapes, types and bytes."""
    digest = hashlib.sha256()
    for key in sorted(parts):
        array = np.ascontiguousarray(parts[key])
        digest.update(f"{key}|{array.shape}|{array.dtype.str}|".encode())
        digest.update(array.tobytes())
    return f"{prefix}_{digest.hexdigest()[:12]}"


def import_arrays(arrays: Mapping[str, np.ndarray], name: str | None = None, data_dir: str | None = None) -> str:
    """Writes `arrays` (x_train, y_train, x_test, y_test, optionally x_val and y_val) as a TFDS
    data set, exactly as `mtkd data import` does, and returns its name (default: `arrays_` and the
    arrays' content hash). Already imported with the same content: reused; other content under a
    name given: refused."""
    if not isinstance(arrays, Mapping):
        raise ConfigError(f"data arrays are a mapping (a dict, or np.load of an .npz), got {type(arrays).__name__}")
    arrays = check_arrays({key: np.asarray(value) for key, value in arrays.items()}, "data")
    fingerprint = content_name("content", arrays)
    root = Path(resolve_data_dir(data_dir))
    stamp = root / (name or content_name("arrays", arrays)) / "mtkd-arrays.txt"
    if stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return stamp.parent.name
    # A content-named folder without its stamp is an import that was cut short: written again.
    # Under a name of the user's, a data set already there is refused (other content).
    import_arrays_as(stamp.parent.name, arrays, data_dir, overwrite=name is None)
    stamp.write_text(fingerprint + "\n")
    return stamp.parent.name


def logits_pool(dataset: str, logits: Mapping[str, Mapping[str, np.ndarray]], own_validation: bool,
                settings: str = "") -> tuple[str, dict[str, str]]:
    """A pool of external teachers from `{name: {"train": ..., "test": ...}}` logits (with "val"
    when the data set has its own validation split, `own_validation`), for the validation rows
    `settings` describes (part of the pool's name): their files are written beside the pool cache and the pool is built with `mtkd.distill.pool_training.train_pool`'s
    external teachers, which check every shape. Returns (the pool's directory, each teacher's file)."""
    from mtkd.teachers import default_pool_dir

    if not isinstance(logits, Mapping) or not logits:
        raise ConfigError("teachers as logits are a mapping of teacher names to {'train': ..., 'test': ...} arrays")
    needed = ("train", "val", "test") if own_validation else ("train", "test")
    files: dict[str, dict[str, np.ndarray]] = {}
    for teacher, splits in logits.items():
        if not isinstance(splits, Mapping):
            raise ConfigError(f"teacher {teacher!r}: logits are a mapping of split names to arrays, got "
                              f"{type(splits).__name__}")
        extra = sorted(set(splits) - set(needed))
        missing = [split for split in needed if split not in splits]
        if missing or extra:
            where = ("the data has x_val, so give 'train', 'val' and 'test'" if own_validation else
                     "validation rows are held out of x_train (give x_val and y_val for your own), so give "
                     "'train' (every row of x_train) and 'test'")
            raise ConfigError(f"teacher {teacher!r} has logits for {', '.join(sorted(splits)) or 'nothing'}: {where}")
        files[str(teacher)] = {LOGIT_SPLITS[split]: np.asarray(splits[split], np.float32) for split in needed}
    flat = {f"{teacher}/{split}": array for teacher, arrays in files.items() for split, array in arrays.items()}
    flat["settings"] = np.frombuffer(settings.encode(), np.uint8)
    pool_dir = default_pool_dir(dataset, content_name("logits", flat))
    sources = pool_dir.with_name(pool_dir.name + "-logits")
    sources.mkdir(parents=True, exist_ok=True)
    for teacher, arrays in files.items():
        path = sources / f"{teacher}.npz"
        if not path.is_file():  # content-named folder: a file already there holds these arrays
            with tempfile.NamedTemporaryFile(dir=sources, suffix=".npz", delete=False) as handle:
                np.savez(handle, **arrays)
            os.replace(handle.name, path)
    return os.fspath(pool_dir), {teacher: os.fspath(sources / f"{teacher}.npz") for teacher in files}


__all__ = ["import_arrays", "logits_pool", "register_model", "student_spec"]
