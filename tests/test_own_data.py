"""Your own data: `mtkd data import NAME --npz FILE` writes a TFDS data set with TFDS's writer,
every command then takes `--dataset NAME`, and `--val-split validation` validates on its own
validation split (teachers trained on all of train stay honest)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mtkd.cli.main import main
from mtkd.data import load_dataset


def own_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(330, 12)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    return {"x_train": x[:200], "y_train": y[:200], "x_test": x[200:270], "y_test": y[200:270],
            "x_val": x[270:], "y_val": y[270:]}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    arrays = own_arrays()
    np.savez(folder / "own.npz", **arrays)
    assert main(["data", "import", "own_data", "--npz", str(folder / "own.npz"), "--data-dir", str(folder / "tfds")]) == 0
    return folder, arrays


def test_imported_arrays_load_back_exactly_in_their_order(imported):
    folder, arrays = imported
    carved = load_dataset("own_data", data_dir=str(folder / "tfds"))
    np.testing.assert_array_equal(np.concatenate([carved.x_train, carved.x_val])[np.argsort(
        np.concatenate([carved.train_index, carved.val_index]))], arrays["x_train"])
    np.testing.assert_array_equal(carved.y_test, arrays["y_test"])
    assert carved.num_classes == 4 and carved.input_shape == (12,)
    own = load_dataset("own_data", data_dir=str(folder / "tfds"), val_split="validation")
    np.testing.assert_array_equal(own.x_train, arrays["x_train"])  # all of train is trained on
    np.testing.assert_array_equal(own.x_val, arrays["x_val"])
    np.testing.assert_array_equal(own.y_val, arrays["y_val"])
    assert own.val_split == "validation" and own.num_train_full == 200


def test_a_pool_and_a_run_on_the_data_sets_own_validation_split(imported, tmp_path, capsys):
    folder, arrays = imported
    data = ["--dataset", "own_data", "--data-dir", str(folder / "tfds")]
    # An external teacher from another framework, fitted on all of train: honest on `validation`.
    weights = np.linalg.lstsq(arrays["x_train"], np.eye(4)[arrays["y_train"]], rcond=None)[0]
    np.savez(tmp_path / "linear.npz", **{split: (4 * arrays[f"x_{key}"] @ weights).astype(np.float32)
                                         for split, key in (("train", "train"), ("test", "test"), ("validation", "val"))})
    spec = tmp_path / "pool.toml"
    spec.write_text('[[teachers]]\nname = "linear"\nexternal = "linear.npz"\n'
                    '[[teachers]]\nname = "mlp"\narch = "mlp"\noptions = { widths = [16] }\nepochs = 3\n')
    assert main(["teachers", "train", *data, "--val-split", "validation", "--pool", str(spec),
                 "--out", str(tmp_path / "pool")]) == 0
    manifest = json.loads((tmp_path / "pool" / "pool.json").read_text())
    linear = manifest["teachers"][0]
    logits = np.load(tmp_path / "linear.npz")
    assert linear["val_accuracy"] == pytest.approx(np.mean(logits["validation"].argmax(1) == arrays["y_val"]))
    run = ["distill", *data, "--teachers", str(tmp_path / "pool"), "--epochs", "2", "--seeds", "2",
           "--strategy", "uniform"]
    assert main(run + ["--val-split", "validation", "--out", str(tmp_path / "run")]) == 0
    assert len(json.loads((tmp_path / "run" / "results.json").read_text())["rows"][0]["val_accuracy"]) == 2
    capsys.readouterr()
    assert main(run + ["--out", str(tmp_path / "carved")]) == 2  # rows of train the teachers learned from
    assert "another validation split" in capsys.readouterr().err and not (tmp_path / "carved").exists()
    assert main(run + ["--val-split", "test", "--out", str(tmp_path / "on_test")]) == 2
    assert "touched only for the report" in capsys.readouterr().err


@pytest.mark.parametrize("change, words", [
    (lambda a: a.pop("y_test"), "lacks y_test"),
    (lambda a: a.pop("y_val"), "only one of x_val and y_val"),
    (lambda a: a.update(y_train=a["y_train"][:-1]), "one label per row of x_train"),
    (lambda a: a.update(y_train=a["y_train"].astype(np.float32)), "whole-number class labels"),
    (lambda a: a.update(x_test=a["x_test"][:, :5]), "x_test has shape (70, 5)"),
    (lambda a: a["x_train"].__setitem__((0, 0), np.nan), "x_train holds NaN"),
])
def test_bad_import_files_are_one_line(tmp_path, capsys, change, words):
    arrays = own_arrays()
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    assert main(["data", "import", "bad_data", "--npz", str(tmp_path / "bad.npz"), "--data-dir",
                 str(tmp_path / "tfds")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "tfds" / "bad_data").exists()


def test_an_import_never_replaces_a_data_set_unasked(imported, capsys):
    folder, _ = imported
    args = ["data", "import", "own_data", "--npz", str(folder / "own.npz"), "--data-dir", str(folder / "tfds")]
    assert main(args) == 2 and "already exists" in capsys.readouterr().err
    assert main(["data", "import", "mnist1d", "--npz", str(folder / "own.npz")]) == 2
    assert "embedded data set" in capsys.readouterr().err
