"""Public entry points: prepare a data set once, then load it as NumPy train/val/test arrays."""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np
import tensorflow_datasets as tfds

from mtkd.data import catalog
from mtkd.data.arrays import read_raw_splits, to_float_inputs
from mtkd.data.normalization import normalise
from mtkd.data.paths import resolve_data_dir
from mtkd.data.splits import (DatasetSplits, carve_validation, check_split_seed, check_val_fraction,
                               read_val_indices)
from mtkd.errors import ConfigError, DatasetError, UnknownNameError


class FullSplits(NamedTuple):
    """The whole TFDS 'train' split and the test split, before any validation carve.

    x_* float32 (N, *input_shape), y_* int32 (N,); `info` holds name, version, input_shape,
    num_classes, test_split, input_key, label_key and prepared_dir.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict[str, Any]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise UnknownNameError(f"data set name must be a non-empty string, got {name!r}")
    return name


def _num_classes(builder: tfds.core.DatasetBuilder, label_key: str, *labels: np.ndarray) -> int:
    """From the ClassLabel feature, else 1 + the largest label seen."""
    feature = builder.info.features[label_key]
    if isinstance(feature, tfds.features.ClassLabel) and feature.num_classes:
        return int(feature.num_classes)
    return int(max(int(y.max()) for y in labels)) + 1


def prepare_dataset(name: str, data_dir: str | None = None) -> str:
    """Prepare `name` as array_record files under `data_dir` and return the prepared directory.

    Idempotent. Embedded data sets are generated locally; TFDS catalog data sets are downloaded,
    which needs network and TensorFlow (`pip install 'mtkd[tensorflow]'`).
    """
    data_dir = resolve_data_dir(data_dir)
    builder = catalog.prepare_builder(_check_name(name), data_dir)
    return os.fspath(builder.data_dir)


def load_full_splits(name: str, data_dir: str | None = None, prepare: bool = True) -> FullSplits:
    """The full TFDS 'train' and test splits of a prepared data set as float32/int32 arrays.

    Embedded data sets are prepared on first use when `prepare`; others are never downloaded:
    DatasetError says how to prepare them.
    """
    data_dir = resolve_data_dir(data_dir)
    builder = catalog.open_prepared_builder(_check_name(name), data_dir, prepare=prepare)
    raw = read_raw_splits(builder)
    num_classes = _num_classes(builder, raw.label_key, raw.y_train, raw.y_test)
    for labels in (raw.y_train, raw.y_test):
        if labels.min() < 0 or labels.max() >= num_classes:
            raise DatasetError(f"labels of {name!r} fall outside 0..{num_classes - 1}")
    info = {
        "name": name,
        "version": str(builder.info.version),
        "input_shape": tuple(int(d) for d in raw.x_train.shape[1:]),
        "num_classes": num_classes,
        "test_split": raw.test_split,
        "input_key": raw.input_key,
        "label_key": raw.label_key,
        "prepared_dir": os.fspath(builder.data_dir),
    }
    base = catalog.base_name(name)
    return FullSplits(
        x_train=normalise(base, to_float_inputs(raw.x_train)),
        y_train=raw.y_train.astype(np.int32),
        x_test=normalise(base, to_float_inputs(raw.x_test)),
        y_test=raw.y_test.astype(np.int32),
        info=info,
    )


def load_dataset(
    name: str,
    data_dir: str | None = None,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    prepare: bool = True,
    val_indices: str | None = None,
    val_split: str | None = None,
) -> DatasetSplits:
    """Load `name` with a validation split carved deterministically from TFDS 'train' (or, with
    `val_indices`, a file of the train split's rows to hold out: `read_val_indices`; or, with
    `val_split`, the data set's own split of that name, and all of 'train' to train on).

    Arguments are validated before any work (ConfigError, UnknownNameError). See
    `DatasetSplits` for shapes and `load_full_splits` for what `prepare` does.
    """
    val_fraction = check_val_fraction(val_fraction)
    split_seed = check_split_seed(split_seed)
    if val_indices is not None and val_split is not None:
        raise ConfigError("give --val-split or --val-indices, not both: each names the validation rows")
    catalog.check_known(_check_name(name), resolve_data_dir(data_dir))
    from mtkd.distributed import barrier, is_writer, process_count  # (JAX, imported once needed)

    full = None
    if process_count() > 1:  # process 0 prepares a missing data set; the others read it once ready
        if is_writer():
            full = load_full_splits(name, data_dir=data_dir, prepare=prepare)
        barrier(f"mtkd: data set {name} ready")
    if full is None:
        full = load_full_splits(name, data_dir=data_dir, prepare=prepare)
    if val_split is not None:
        x_val, y_val = read_own_split(name, data_dir, val_split, full.info)
        train_index, val_index = np.arange(len(full.y_train), dtype=np.int64), np.zeros(0, np.int64)
    else:
        if val_indices is not None:
            train_index, val_index = read_val_indices(val_indices, len(full.y_train))
        else:
            train_index, val_index = carve_validation(len(full.y_train), val_fraction, split_seed)
        x_val, y_val = full.x_train[val_index], full.y_train[val_index]
    return DatasetSplits(
        name=name,
        input_shape=full.info["input_shape"],
        num_classes=full.info["num_classes"],
        x_train=full.x_train[train_index],
        y_train=full.y_train[train_index],
        x_val=x_val,
        y_val=y_val,
        x_test=full.x_test,
        y_test=full.y_test,
        train_index=train_index,
        val_index=val_index,
        test_split=full.info["test_split"],
        version=full.info["version"],
        prepared_dir=full.info["prepared_dir"],
        val_split=val_split or "",
    )


def read_own_split(name: str, data_dir: str | None, split: str, info: dict) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the data set's own split `split` for validation: not 'train' (the students learn
    from it) and not the split the report tests on."""
    from mtkd.data.arrays import read_split

    if not isinstance(split, str) or split in ("train", info["test_split"]):
        raise ConfigError(f"--val-split {split!r}: validation must be a split other than 'train' and the test split "
                          f"({info['test_split']!r}), which is touched only for the report")
    builder = catalog.open_prepared_builder(name, resolve_data_dir(data_dir), prepare=False)
    if split not in builder.info.splits:
        raise DatasetError(f"data set {name!r} has no split {split!r} (splits: {', '.join(builder.info.splits)}); "
                           f"use --val-indices FILE or --val-fraction instead")
    x, y = read_split(builder, split, info["input_key"], info["label_key"])
    if x.shape[1:] != tuple(info["input_shape"]):
        raise DatasetError(f"split {split!r} of {name!r} has inputs of shape {x.shape[1:]}, train {info['input_shape']}")
    return normalise(catalog.base_name(name), to_float_inputs(x)), y.astype(np.int32)
