"""Reading whole splits of a prepared TFDS data set into NumPy arrays, with an .npz cache.

Decoding tens of thousands of examples through `as_data_source` takes seconds (images are PNG
decoded one by one), so the decoded (raw dtype) arrays are saved next to the prepared files as
`mtkd-arrays-VERSION.npz` and reused while the data set's `dataset_info.json` is unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tempfile
import zipfile

import numpy as np
import tensorflow_datasets as tfds

from mtkd.errors import DatasetError

# Bump when the cached content or its meaning changes, so that old caches are ignored.
CACHE_FORMAT = 1
# Examples decoded per `__getitems__` call: bounds the list of Python dicts held at once.
READ_CHUNK = 2048


@dataclasses.dataclass(frozen=True)
class RawSplits:
    """Train and test arrays as stored: x_* (N, *input_shape) any dtype, y_* (N,) int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_key: str
    label_key: str
    test_split: str


def supervised_keys(info: tfds.core.DatasetInfo) -> tuple[str, str]:
    """(input feature, label feature) from `info.supervised_keys`; ('image', 'label') if unset."""
    keys = info.supervised_keys
    if keys is None:
        keys = ("image", "label")
    if len(keys) < 2 or not all(isinstance(key, str) for key in keys[:2]):
        raise DatasetError(
            f"data set {info.full_name!r} has nested supervised keys {keys!r}; mtkd needs one "
            f"input feature and one label feature"
        )
    input_key, label_key = keys[0], keys[1]
    for key in (input_key, label_key):
        if key not in info.features:
            raise DatasetError(
                f"data set {info.full_name!r} has no feature {key!r} "
                f"(features: {', '.join(info.features)})"
            )
    return input_key, label_key


def test_split_name(info: tfds.core.DatasetInfo) -> str:
    """'test', or 'validation' for data sets (e.g. imagenet2012) that have no 'test' split."""
    if "train" not in info.splits:
        raise DatasetError(f"data set {info.full_name!r} has no 'train' split")
    for name in ("test", "validation"):
        if name in info.splits:
            return name
    raise DatasetError(
        f"data set {info.full_name!r} has neither a 'test' nor a 'validation' split "
        f"(splits: {', '.join(info.splits)})"
    )


def _read_split(
    builder: tfds.core.DatasetBuilder, split: str, input_key: str, label_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """x (N, *shape) as stored and y (N,) int64 for one split, decoded in chunks."""
    source = builder.as_data_source(split=split)
    num_examples = len(source)
    if num_examples == 0:
        raise DatasetError(f"split {split!r} of {builder.info.full_name!r} is empty")
    inputs, labels = [], []
    for start in range(0, num_examples, READ_CHUNK):
        examples = source.__getitems__(list(range(start, min(num_examples, start + READ_CHUNK))))
        inputs.extend(np.asarray(example[input_key]) for example in examples)
        labels.extend(example[label_key] for example in examples)
    shapes = {x.shape for x in inputs}
    if len(shapes) != 1:
        raise DatasetError(
            f"feature {input_key!r} of {builder.info.full_name!r} has examples of different "
            f"shapes ({sorted(shapes)[:3]} ...); mtkd needs one fixed shape"
        )
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(
            f"label {label_key!r} of {builder.info.full_name!r} must be one integer per example"
        )
    return np.stack(inputs), y.astype(np.int64)


def _fingerprint(
    builder: tfds.core.DatasetBuilder, input_key: str, label_key: str, test_split: str
) -> str:
    """Changes when the prepared files (their dataset_info.json) or what mtkd reads change."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{input_key}|{label_key}|{test_split}|".encode())
    info_path = os.path.join(os.fspath(builder.data_dir), "dataset_info.json")
    with open(info_path, "rb") as info_file:
        digest.update(info_file.read())
    return digest.hexdigest()


def cache_path(builder: tfds.core.DatasetBuilder) -> str:
    """`DATA_DIR/NAME/[CONFIG/]VERSION/mtkd-arrays-VERSION.npz`."""
    return os.path.join(os.fspath(builder.data_dir), f"mtkd-arrays-{builder.info.version}.npz")


def _load_cache(path: str, fingerprint: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as cached:
            if str(cached["fingerprint"]) != fingerprint:
                return None
            return {key: cached[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):  # absent, stale or corrupt
        return None


def _save_cache(path: str, fingerprint: str, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (temporary file then rename); skip silently where not writable."""
    tmp_path = None
    try:
        handle, tmp_path = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz.tmp")
        with os.fdopen(handle, "wb") as tmp_file:
            np.savez(tmp_file, fingerprint=np.asarray(fingerprint), **arrays)
        os.replace(tmp_path, path)
    except OSError:
        if tmp_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)


def read_raw_splits(builder: tfds.core.DatasetBuilder) -> RawSplits:
    """Full 'train' and test split of a prepared array_record builder, from the cache if valid."""
    info = builder.info
    input_key, label_key = supervised_keys(info)
    test_split = test_split_name(info)
    fingerprint = _fingerprint(builder, input_key, label_key, test_split)
    path = cache_path(builder)
    arrays = _load_cache(path, fingerprint)
    if arrays is None:
        x_train, y_train = _read_split(builder, "train", input_key, label_key)
        x_test, y_test = _read_split(builder, test_split, input_key, label_key)
        if x_train.shape[1:] != x_test.shape[1:]:
            raise DatasetError(
                f"train and {test_split} inputs of {info.full_name!r} differ in shape: "
                f"{x_train.shape[1:]} vs {x_test.shape[1:]}"
            )
        arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        _save_cache(path, fingerprint, arrays)
    return RawSplits(**arrays, input_key=input_key, label_key=label_key, test_split=test_split)


def read_split(builder: tfds.core.DatasetBuilder, split: str, input_key: str, label_key: str):
    """x (N, *shape) as stored and y (N,) of one more split (e.g. a data set's own validation
    split); not cached: it is read once per run."""
    return _read_split(builder, split, input_key, label_key)


def to_float_inputs(x: np.ndarray) -> np.ndarray:
    """float32 inputs: uint8 (images) scaled to [0, 1]; other numbers converted as they are."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DatasetError(f"inputs of dtype {x.dtype} are not numeric")
    return x.astype(np.float32)
