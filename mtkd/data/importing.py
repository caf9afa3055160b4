"""Your own data: NumPy arrays written as a TFDS data set with TFDS's own writer.

`mtkd data import NAME --npz FILE` reads `x_train`, `y_train`, `x_test`, `y_test` (and, if
given, `x_val`, `y_val`) from a `.npz` and writes them under the data directory as a TFDS data
set in array_record files: a `GeneratorBasedBuilder` made for the arrays runs TFDS's own
`download_and_prepare`, which writes the files and `dataset_info.json` (nothing is downloaded).
After that every command takes `--dataset NAME`, and a data set imported with a validation split
can use it with `--val-split validation`.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np
import tensorflow_datasets as tfds

from mtkd.data.builders.base import EmbeddedBuilder
from mtkd.data.embedded import EMBEDDED_DATASETS
from mtkd.data.paths import resolve_data_dir
from mtkd.errors import ConfigError, DatasetError

IMPORT_VERSION = "1.0.0"
# TFDS's split names for the arrays of the .npz.
SPLITS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test"), "validation": ("x_val", "y_val")}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an import file, checked: inputs of one shape and a numeric type, whole-number
    labels from 0, one label per input; `x_val`/`y_val` both or neither."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--npz {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key]) for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise ConfigError(f"--npz {path} is not a NumPy .npz archive (np.savez)") from None
    return check_arrays(arrays, f"--npz {path}", extra_allowed=True)


def check_arrays(arrays: Mapping[str, np.ndarray], where: str, extra_allowed: bool = False) -> dict[str, np.ndarray]:
    """The checks of `read_npz` on arrays in memory (the Python API's data); `where` names them.
    Other arrays are ignored in an .npz (`extra_allowed`, as they always were) and refused in the
    API's mapping, where one is most likely a misspelt key."""
    arrays = dict(arrays)
    unknown = sorted(set(arrays) - {key for pair in SPLITS.values() for key in pair})
    if unknown and not extra_allowed:
        raise ConfigError(f"{where} has array(s) {', '.join(unknown)}; the arrays are x_train, y_train, x_test, "
                          f"y_test, and optionally x_val, y_val")
    needed = [key for split in ("train", "test") for key in SPLITS[split]]
    missing = [key for key in needed if key not in arrays]
    if missing:
        raise ConfigError(f"{where} lacks {', '.join(missing)} (it needs x_train, y_train, x_test, y_test, "
                          f"and may add x_val, y_val)")
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise ConfigError(f"{where} has only one of x_val and y_val; give both or neither")
    shape = arrays["x_train"].shape[1:]
    for split, (x_key, y_key) in SPLITS.items():
        if x_key not in arrays:
            continue
        x, y = arrays[x_key], arrays[y_key]
        if x.shape[1:] != shape or x.ndim < 2:
            raise ConfigError(f"{where}: {x_key} has shape {x.shape}; every x needs (N, {', '.join(map(str, shape))})")
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise ConfigError(f"{where}: {x_key} is {x.dtype}, not numbers")
        if not np.all(np.isfinite(x.astype(np.float64))):
            raise ConfigError(f"{where}: {x_key} holds NaN or infinite values")
        if y.ndim != 1 or len(y) != len(x) or len(y) == 0:
            raise ConfigError(f"{where}: {y_key} has shape {y.shape}; it needs one label per row of {x_key} "
                              f"({len(x)},)")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ConfigError(f"{where}: {y_key} must hold whole-number class labels from 0")
    return arrays


def _builder_class(name: str, arrays: Mapping[str, np.ndarray], num_classes: int):
    """A TFDS builder of these arrays, named `name` (not registered: mtkd instantiates it)."""
    x_dtype = np.uint8 if arrays["x_train"].dtype == np.uint8 else np.float32  # images stay bytes
    shape = tuple(int(d) for d in arrays["x_train"].shape[1:])
    splits = [split for split, (x_key, _) in SPLITS.items() if x_key in arrays]

    class Imported(EmbeddedBuilder, skip_registration=True):
        VERSION = tfds.core.Version(IMPORT_VERSION)
        RELEASE_NOTES = {IMPORT_VERSION: "Imported from NumPy arrays with `mtkd data import`."}

        def _info(self) -> tfds.core.DatasetInfo:
            return tfds.core.DatasetInfo(
                builder=self, description=f"{name}: imported from NumPy arrays by `mtkd data import`.",
                features=tfds.features.FeaturesDict({"x": tfds.features.Tensor(shape=shape, dtype=x_dtype),
                                                     "label": tfds.features.ClassLabel(num_classes=num_classes)}),
                supervised_keys=("x", "label"), disable_shuffling=True)  # rows keep the arrays' order

        def _split_generators(self, dl_manager):
            del dl_manager  # nothing to download
            return {split: self._generate_examples(*(arrays[key] for key in SPLITS[split])) for split in splits}

        def _generate_examples(self, x: np.ndarray, y: np.ndarray):
            for index in range(len(y)):
                yield index, {"x": x[index].astype(x_dtype), "label": int(y[index])}

    Imported.name = name
    return Imported


def import_npz(name: str, npz: str | Path, data_dir: str | None = None, overwrite: bool = False) -> str:
    """Writes the arrays of `npz` as the TFDS data set `name` under the data directory; returns its
    prepared folder. Refused if `name` is embedded, malformed, or already there (unless `overwrite`)."""
    check_name(name)
    return import_arrays_as(name, read_npz(npz), data_dir, overwrite, f"--npz {npz}")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"data set name {name!r} must be lower-case letters, digits and '_', starting with a letter")
    if name in EMBEDDED_DATASETS:
        raise ConfigError(f"{name!r} is an embedded data set; import under another name")
    return name


def import_arrays_as(name: str, arrays: Mapping[str, np.ndarray], data_dir: str | None = None,
                     overwrite: bool = False, where: str = "data") -> str:
    """Writes checked arrays (`check_arrays`) as the TFDS data set `name`; its prepared folder."""
    check_name(name)
    labels = np.concatenate([arrays[y] for _, y in SPLITS.values() if y in arrays])
    num_classes = int(labels.max()) + 1
    if num_classes < 2:
        raise ConfigError(f"{where}: the labels name one class only; distillation needs two or more")
    root = Path(resolve_data_dir(data_dir))
    if (root / name).exists():
        if not overwrite:
            raise DatasetError(f"data set {name!r} already exists under {root}; pass --overwrite to replace it")
        shutil.rmtree(root / name)
    builder = _builder_class(name, arrays, num_classes)(data_dir=os.fspath(root), file_format="array_record")
    builder.download_and_prepare(file_format="array_record")
    return os.fspath(builder.data_dir)


__all__ = ["check_arrays", "check_name", "import_arrays_as", "import_npz", "read_npz"]
