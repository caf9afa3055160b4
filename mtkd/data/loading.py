"""Public entry points: prepare a data set once, then load it as NumPy train/val/test arrays."""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np
import tensorflow_datasets as tfds

from mtkd.data import catalog
from mtkd.data.arrays import read_raw_splits, to_float_inputs
from mtkd.data.paths import resolve_data_dir
from mtkd.data.splits import (DatasetSplits, carve_validation, check_split_seed, check_val_fraction,
                               read_val_indices)
from mtkd.errors import DatasetError, UnknownNameError


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
    return FullSplits(
        x_train=to_float_inputs(raw.x_train),
        y_train=raw.y_train.astype(np.int32),
        x_test=to_float_inputs(raw.x_test),
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
) -> DatasetSplits:
    """Load `name` with a validation split carved deterministically from TFDS 'train' (or, with
    `val_indices`, a file of the train split's rows to hold out: `read_val_indices`).

    Arguments are validated before any work (ConfigError, UnknownNameError). See
    `DatasetSplits` for shapes and `load_full_splits` for what `prepare` does.
    """
    val_fraction = check_val_fraction(val_fraction)
    split_seed = check_split_seed(split_seed)
    catalog.check_known(_check_name(name), resolve_data_dir(data_dir))
    from mtkd.distributed import barrier, is_writer, process_count  # (JAX, imported once needed)

    full = None
    if process_count() > 1:  # process 0 prepares a missing data set; the others read it once ready
        if is_writer():
            full = load_full_splits(name, data_dir=data_dir, prepare=prepare)
        barrier(f"mtkd: data set {name} ready")
    if full is None:
        full = load_full_splits(name, data_dir=data_dir, prepare=prepare)
    if val_indices is not None:
        train_index, val_index = read_val_indices(val_indices, len(full.y_train))
    else:
        train_index, val_index = carve_validation(len(full.y_train), val_fraction, split_seed)
    return DatasetSplits(
        name=name,
        input_shape=full.info["input_shape"],
        num_classes=full.info["num_classes"],
        x_train=full.x_train[train_index],
        y_train=full.y_train[train_index],
        x_val=full.x_train[val_index],
        y_val=full.y_train[val_index],
        x_test=full.x_test,
        y_test=full.y_test,
        train_index=train_index,
        val_index=val_index,
        test_split=full.info["test_split"],
        version=full.info["version"],
        prepared_dir=full.info["prepared_dir"],
    )
