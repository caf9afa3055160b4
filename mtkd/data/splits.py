"""The train / validation / test arrays a run uses, and the deterministic validation carve."""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from mtkd.errors import ConfigError, DatasetError

SPLIT_NAMES = ("train", "val", "test")


def check_val_fraction(val_fraction: float) -> float:
    """`val_fraction` as a float strictly between 0 and 1, else ConfigError."""
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real):
        raise ConfigError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    value = float(val_fraction)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    return value


def check_split_seed(split_seed: int) -> int:
    """`split_seed` as a non-negative int, else ConfigError."""
    is_int = isinstance(split_seed, numbers.Integral) and not isinstance(split_seed, bool)
    if not is_int or split_seed < 0:
        raise ConfigError(f"split_seed must be a non-negative integer, got {split_seed!r}")
    return int(split_seed)


def carve_validation(
    num_examples: int, val_fraction: float, split_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train_index, val_index): sorted int64 indices partitioning range(num_examples).

    The validation part holds round(val_fraction * num_examples) examples (at least 1, and at
    least 1 left for training), chosen by a permutation seeded with `split_seed`. Not stratified.
    """
    if num_examples < 2:
        raise DatasetError(f"cannot carve a validation split from {num_examples} example(s)")
    num_val = min(max(1, round(val_fraction * num_examples)), num_examples - 1)
    order = np.random.default_rng(split_seed).permutation(num_examples)
    val_index = np.sort(order[:num_val]).astype(np.int64)
    train_index = np.sort(order[num_val:]).astype(np.int64)
    return train_index, val_index


def read_val_indices(path: str, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_index, val_index) from a file of validation indices into the TFDS 'train' split: a
    `.npy` array, or text with whole numbers separated by spaces, commas or newlines. The user's
    own carve: e.g. the examples their teachers were not trained on, so that teachers trained
    elsewhere can be judged on validation honestly. Each index in range, none twice, at least one
    example left on either side; else one clear error."""
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"validation indices file {path} does not exist")
    try:
        if file.suffix == ".npy":
            values = np.load(file, allow_pickle=False)
        else:
            values = np.array(file.read_text().replace(",", " ").split(), dtype=object)
            values = np.array([int(v) for v in values], dtype=np.int64)
    except (ValueError, OSError) as error:
        raise ConfigError(f"validation indices file {path} is not a list of whole numbers: {error}") from None
    values = np.asarray(values)
    if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise ConfigError(f"validation indices file {path} must hold a non-empty 1-D list of whole numbers, got "
                          f"shape {values.shape} of {values.dtype}")
    if values.min() < 0 or values.max() >= num_examples:
        raise ConfigError(f"validation indices in {path} must lie in 0..{num_examples - 1} (the train split's rows); "
                          f"found {int(values.min())}..{int(values.max())}")
    val_index = np.unique(values).astype(np.int64)
    if val_index.size != values.size:
        raise ConfigError(f"validation indices file {path} lists {values.size - val_index.size} index(es) twice")
    if val_index.size >= num_examples:
        raise ConfigError(f"validation indices in {path} cover the whole train split; leave examples to train on")
    train_index = np.setdiff1d(np.arange(num_examples, dtype=np.int64), val_index)
    return train_index, val_index


def validation_checksum(splits: "DatasetSplits") -> str:
    """Which rows a run validates on: the held-out rows of 'train', or the data set's own split."""
    if splits.val_split:
        import hashlib

        return hashlib.sha256(f"split:{splits.val_split}:{splits.num_val}".encode()).hexdigest()[:16]
    return index_checksum(splits.val_index)


def index_checksum(index: np.ndarray) -> str:
    """A short fingerprint of a validation carve (pools record theirs; a run must use the same)."""
    import hashlib

    return hashlib.sha256(np.asarray(index, dtype=np.int64).tobytes()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class DatasetSplits:
    """A data set ready for training, with a validation split carved from TFDS 'train'.

    x_* are float32 (N, *input_shape) (uint8 images scaled to [0, 1]); y_* are int32 (N,).
    x_test / y_test come from the TFDS 'test' split, or 'validation' when there is no 'test'
    (`test_split` says which); it is never used for model selection.
    `train_index` / `val_index` (int64, sorted) index the full TFDS 'train' split, so arrays
    aligned with it (e.g. precomputed teacher logits `full[train_index]`) split the same way.
    (eq=False: comparing arrays element-wise has no single truth value.)
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray
    test_split: str = "test"
    version: str = ""
    prepared_dir: str = ""
    # The data set's own validation split (`--val-split`), or "" for rows held out of 'train'
    # (`val_index`, then empty here: no row of 'train' is held out).
    val_split: str = ""

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @property
    def num_val(self) -> int:
        return len(self.y_val)

    @property
    def num_test(self) -> int:
        return len(self.y_test)

    @property
    def num_train_full(self) -> int:
        """Size of the full TFDS 'train' split (train + validation parts, or all of it for train
        when validation is the data set's own split)."""
        return self.num_train + (0 if self.val_split else self.num_val)

    def external_val(self, logits: dict) -> np.ndarray:
        """An external teacher's validation logits: its rows of 'train' held out, or its array of
        the data set's own validation split."""
        return logits[self.val_split] if self.val_split else logits["train"][self.val_index]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of 'train', 'val' or 'test'."""
        if name not in SPLIT_NAMES:
            raise ConfigError(f"unknown split {name!r}; known: {', '.join(SPLIT_NAMES)}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def __repr__(self) -> str:
        return (
            f"DatasetSplits(name={self.name!r}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}, train={self.num_train}, val={self.num_val}, "
            f"{self.test_split}={self.num_test})"
        )


def restrict_training(splits: DatasetSplits, keep: np.ndarray) -> DatasetSplits:
    """The same splits with the training part reduced to the examples `keep` (indices into
    x_train, or a boolean mask). Validation and test are unchanged, and `train_index` follows,
    so teacher outputs cached on the full train split still line up."""
    keep = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.sort(np.asarray(keep, dtype=np.int64))
    if keep.size == 0:
        raise ConfigError("the restricted training split would be empty")
    return dataclasses.replace(splits, x_train=splits.x_train[keep], y_train=splits.y_train[keep],
                               train_index=splits.train_index[keep])


def training_fraction(splits: DatasetSplits, fraction: float, seed: int = 0) -> DatasetSplits:
    """A deterministic random `fraction` of the training split (e.g. Hinton's 3% experiment)."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"student data fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return splits
    count = max(1, int(round(fraction * splits.num_train)))
    return restrict_training(splits, np.random.default_rng([seed, 7]).choice(splits.num_train, count, replace=False))
