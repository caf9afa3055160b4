"""Tests of mtkd.data: embedded TFDS builders, loading prepared data sets, splits, errors."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mtkd.cli.main import main as cli_main
from mtkd.data import (
    EMBEDDED_DATASETS,
    DatasetSplits,
    carve_validation,
    default_data_dir,
    load_dataset,
    load_full_splits,
    prepare_dataset,
)
from mtkd.errors import ConfigError, DatasetError, UnknownNameError

TOY_TRAIN, TOY_TEST = 30, 7


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    """A data directory with both embedded data sets prepared once for the whole module."""
    directory = str(tmp_path_factory.mktemp("tfds"))
    for name in EMBEDDED_DATASETS:
        prepared = prepare_dataset(name, data_dir=directory)
        assert prepared == os.path.join(directory, name, "1.0.0")
    return directory


# ----------------------------------------------------------------------------- embedded sets


def test_mnist1d_equals_direct_generation_in_train_order(data_dir):
    import mnist1d.data

    expected = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    full = load_full_splits("mnist1d", data_dir=data_dir)
    assert full.x_train.shape == (4000, 40) and full.x_test.shape == (1000, 40)
    assert full.x_train.dtype == np.float32 and full.y_train.dtype == np.int32
    np.testing.assert_array_equal(full.x_train, expected["x"].astype(np.float32))
    np.testing.assert_array_equal(full.y_train, expected["y"])
    np.testing.assert_array_equal(full.x_test, expected["x_test"].astype(np.float32))
    np.testing.assert_array_equal(full.y_test, expected["y_test"])
    assert full.info["input_shape"] == (40,) and full.info["num_classes"] == 10


def test_mnist1d_default_splits(data_dir):
    splits = load_dataset("mnist1d", data_dir=data_dir)
    assert (splits.num_train, splits.num_val, splits.num_test) == (3600, 400, 1000)
    assert splits.input_shape == (40,) and splits.num_classes == 10
    for x, y in (splits.split(name) for name in ("train", "val", "test")):
        assert x.dtype == np.float32 and x.shape[1:] == (40,)
        assert y.dtype == np.int32 and y.min() >= 0 and y.max() <= 9
    assert set(np.unique(splits.y_train)) == set(range(10))


def test_digits_values_and_fixed_test_split(data_dir):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, test_index = train_test_split(
        np.arange(1797), test_size=0.2, random_state=0, stratify=digits.target
    )
    test_index = np.sort(test_index)
    full = load_full_splits("digits", data_dir=data_dir)
    assert full.x_train.shape == (1437, 8, 8, 1) and full.x_test.shape == (360, 8, 8, 1)
    assert full.x_train.dtype == np.float32 and full.x_train.min() == 0.0
    assert full.x_train.max() == 1.0
    np.testing.assert_array_equal(full.x_test[..., 0], digits.images[test_index] / 16.0)
    np.testing.assert_array_equal(full.y_test, digits.target[test_index])
    # Stratified: every class holds 20% (rounded) of its images in the test split.
    test_counts = np.bincount(full.y_test, minlength=10)
    all_counts = np.bincount(digits.target, minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * all_counts) <= 1)

    splits = load_dataset("digits", data_dir=data_dir)
    assert (splits.num_train, splits.num_val, splits.num_test) == (1293, 144, 360)
    assert splits.input_shape == (8, 8, 1)


def test_loading_twice_and_without_cache_gives_identical_arrays(data_dir):
    first = load_dataset("digits", data_dir=data_dir)
    second = load_dataset("digits", data_dir=data_dir)
    cache = os.path.join(first.prepared_dir, "mtkd-arrays-1.0.0.npz")
    assert os.path.isfile(cache)
    os.remove(cache)  # forces decoding the array_record files again
    third = load_dataset("digits", data_dir=data_dir)
    assert os.path.isfile(cache)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "val_index"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
        np.testing.assert_array_equal(getattr(first, field), getattr(third, field))


def test_corrupt_cache_is_ignored(data_dir):
    expected = load_full_splits("mnist1d", data_dir=data_dir)
    cache = os.path.join(expected.info["prepared_dir"], "mtkd-arrays-1.0.0.npz")
    with open(cache, "wb") as handle:
        handle.write(b"not a zip file")
    again = load_full_splits("mnist1d", data_dir=data_dir)
    np.testing.assert_array_equal(again.x_train, expected.x_train)


def test_prepare_is_idempotent(data_dir):
    info_file = os.path.join(data_dir, "digits", "1.0.0", "dataset_info.json")
    before = os.stat(info_file).st_mtime_ns
    assert prepare_dataset("digits", data_dir=data_dir) == os.path.dirname(info_file)
    assert os.stat(info_file).st_mtime_ns == before


def test_mnist1d_generation_keeps_global_numpy_rng():
    from mtkd.data.builders.mnist1d import make_mnist1d_arrays

    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    make_mnist1d_arrays()  # reseeds numpy internally
    assert np.random.rand() == expected


# ----------------------------------------------------------------------------------- splits


def test_validation_split_partitions_train_deterministically(data_dir):
    full = load_full_splits("mnist1d", data_dir=data_dir)
    splits = load_dataset("mnist1d", data_dir=data_dir, val_fraction=0.25, split_seed=3)
    assert splits.num_val == 1000 and splits.num_train == 3000
    train, val = splits.train_index, splits.val_index
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(4000))
    np.testing.assert_array_equal(splits.x_val, full.x_train[val])
    np.testing.assert_array_equal(splits.y_train, full.y_train[train])
    np.testing.assert_array_equal(splits.x_test, full.x_test)

    same = load_dataset("mnist1d", data_dir=data_dir, val_fraction=0.25, split_seed=3)
    other = load_dataset("mnist1d", data_dir=data_dir, val_fraction=0.25, split_seed=4)
    np.testing.assert_array_equal(same.val_index, val)
    assert not np.array_equal(other.val_index, val)


@pytest.mark.parametrize(
    "num_examples, fraction, expected_val",
    [(10, 0.0001, 1), (10, 0.9999, 9), (10, 0.5, 5), (4000, 0.1, 400), (7, 0.3, 2)],
)
def test_carve_validation_sizes(num_examples, fraction, expected_val):
    train, val = carve_validation(num_examples, fraction, split_seed=0)
    assert len(val) == expected_val and len(train) == num_examples - expected_val
    assert np.all(np.diff(val) > 0) and np.all(np.diff(train) > 0)


def test_split_accessor_rejects_unknown_names(data_dir):
    splits = load_dataset("digits", data_dir=data_dir)
    assert isinstance(splits, DatasetSplits)
    assert splits.split("val")[0] is splits.x_val
    assert "train=1293" in repr(splits)
    with pytest.raises(ConfigError):
        splits.split("validation")


# ------------------------------------------------------- a data set prepared by someone else


def _png(value: int) -> bytes:
    import PIL.Image

    buffer = io.BytesIO()
    PIL.Image.fromarray(np.full((4, 4), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _toy_builder_class(name: str, register: bool):
    """A small image data set: example i of split s has all pixels (10 * i + offset[s]) % 256."""

    class ToyImages(tfds.core.GeneratorBasedBuilder, skip_registration=not register):
        VERSION = tfds.core.Version("1.2.0")

        @tfds.core.utils.classproperty
        @classmethod
        def code_path(cls):
            # Avoids TFDS's checksums lookup, which fails without `importlib_resources` when
            # this module is imported as part of a package (tests/__init__.py).
            return None

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "picture": tfds.features.Image(shape=(4, 4, 1), encoding_format="png"),
                        "digit": tfds.features.ClassLabel(num_classes=3),
                    }
                ),
                supervised_keys=("picture", "digit"),
                disable_shuffling=True,
            )

        def _split_generators(self, dl_manager):
            # No 'test' split: mtkd must fall back to 'validation'.
            return {
                "train": self._generate_examples(TOY_TRAIN, 0),
                "validation": self._generate_examples(TOY_TEST, 100),
            }

        def _generate_examples(self, count, offset):
            # Images as PNG bytes: encoding numpy images would need TensorFlow.
            for index in range(count):
                yield index, {"picture": _png((10 * index + offset) % 256), "digit": index % 3}

    ToyImages.name = name
    return ToyImages


@pytest.fixture(scope="module")
def registered_toy_class():
    # Registered like a TFDS catalog data set: loading goes through `tfds.builder(name)`.
    return _toy_builder_class("mtkd_test_registered_toy", register=True)


@pytest.mark.parametrize("registered", [False, True], ids=["not-in-catalog", "in-catalog"])
def test_loads_a_toy_prepared_elsewhere(tmp_path, registered, registered_toy_class):
    if registered:
        builder_class = registered_toy_class
    else:
        builder_class = _toy_builder_class("mtkd_test_toy", register=False)
    builder_class(data_dir=str(tmp_path), file_format="array_record").download_and_prepare(
        file_format="array_record"
    )
    splits = load_dataset(builder_class.name, data_dir=str(tmp_path), val_fraction=0.2)
    assert splits.input_shape == (4, 4, 1) and splits.num_classes == 3
    assert (splits.num_train, splits.num_val, splits.num_test) == (24, 6, TOY_TEST)
    assert splits.test_split == "validation" and splits.version == "1.2.0"
    expected_train = (10 * np.arange(TOY_TRAIN)) % 256 / 255.0
    assert splits.x_train.dtype == np.float32
    close = dict(rtol=1e-6)
    train_pixels, val_pixels = splits.x_train[:, 0, 0, 0], splits.x_val.max(axis=(1, 2, 3))
    np.testing.assert_allclose(train_pixels, expected_train[splits.train_index], **close)
    np.testing.assert_allclose(val_pixels, expected_train[splits.val_index], **close)
    expected_test = (10 * np.arange(TOY_TEST) + 100) / 255.0
    np.testing.assert_allclose(splits.x_test[:, 3, 3, 0], expected_test, **close)
    np.testing.assert_array_equal(splits.y_train, splits.train_index % 3)


def test_tfrecord_prepared_data_set_is_refused(tmp_path):
    builder_class = _toy_builder_class("mtkd_test_toy_tfrecord", register=False)
    builder = builder_class(data_dir=str(tmp_path), file_format="array_record")
    builder.download_and_prepare(file_format="array_record")
    # Writing tfrecord needs TensorFlow: turn the array_record layout into a tfrecord one.
    variant_dir = os.fspath(builder.data_dir)
    info_path = os.path.join(variant_dir, "dataset_info.json")
    with open(info_path) as handle:
        info = json.load(handle)
    info["fileFormat"] = "tfrecord"
    with open(info_path, "w") as handle:
        json.dump(info, handle)
    for file_name in os.listdir(variant_dir):
        if ".array_record-" in file_name:
            renamed = file_name.replace(".array_record-", ".tfrecord-")
            os.rename(os.path.join(variant_dir, file_name), os.path.join(variant_dir, renamed))
    with pytest.raises(DatasetError, match="array_record"):
        load_dataset(builder_class.name, data_dir=str(tmp_path))


# --------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_unprepared_catalog_data_set_fails_fast_without_downloading(tmp_path, name):
    start = time.monotonic()
    with pytest.raises(DatasetError) as error:
        load_dataset(name, data_dir=str(tmp_path))
    assert time.monotonic() - start < 10.0  # bound on hanging in network retries
    message = str(error.value)
    assert f"mtkd data prepare {name} --data-dir {tmp_path}" in message
    assert "mtkd[tensorflow]" in message
    assert os.listdir(tmp_path) == []  # nothing downloaded or created


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TF installed")
def test_preparing_a_catalog_data_set_without_tensorflow_says_what_to_install(tmp_path):
    start = time.monotonic()
    with pytest.raises(DatasetError, match=r"mtkd\[tensorflow\]"):
        prepare_dataset("mnist", data_dir=str(tmp_path))
    assert time.monotonic() - start < 10.0


def test_unprepared_embedded_data_set_with_prepare_false(tmp_path):
    with pytest.raises(DatasetError, match="mtkd data prepare digits"):
        load_dataset("digits", data_dir=str(tmp_path), prepare=False)


@pytest.mark.parametrize(
    "name", ["no_such_data_set", "huggingface:mnist", "MNIST", "", "digits:1.0.0"]
)
def test_unknown_name_is_refused_before_any_work(tmp_path, name):
    with pytest.raises(UnknownNameError) as error:
        load_dataset(name, data_dir=str(tmp_path / "data"))
    if name == "no_such_data_set":
        assert "mnist1d" in str(error.value) and "digits" in str(error.value)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, math.nan, True, "0.1", None])
def test_bad_val_fraction_is_refused_before_any_work(tmp_path, fraction):
    with pytest.raises(ConfigError, match="val_fraction"):
        load_dataset("digits", data_dir=str(tmp_path / "data"), val_fraction=fraction)
    assert not (tmp_path / "data").exists()


def test_default_data_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MTKD_DATA_DIR", str(tmp_path / "custom"))
    assert default_data_dir() == str(tmp_path / "custom")
    monkeypatch.delenv("MTKD_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == str(tmp_path / ".cache" / "mtkd" / "tensorflow_datasets")


# ------------------------------------------------------------------------------------ CLI


def test_cli_info_prints_shape_classes_and_sizes(data_dir, capsys):
    argv = ["data", "info", "mnist1d", "--data-dir", data_dir, "--val-fraction", "0.2"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "(40,)" in out and "classes: 10" in out
    assert "3200 train + 800 validation" in out and "test: 1000" in out


def test_cli_prepare_and_errors(data_dir, tmp_path, capsys):
    assert cli_main(["data", "prepare", "digits", "--data-dir", data_dir]) == 0
    out = capsys.readouterr().out
    assert os.path.join(data_dir, "digits", "1.0.0") in out and "test: 360" in out
    assert cli_main(["data", "info", "mnist", "--data-dir", str(tmp_path)]) == 2
    assert "mtkd data prepare mnist" in capsys.readouterr().err
