"""The Python API (`mtkd.api`): the README's example runs as written; arrays and logits given in
memory give exactly what the commands give from the same arrays written to files; a student
class of one's own is registered and trains exactly as the architecture it copies."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from mtkd import api
from mtkd.api.inputs import content_name, register_model
from mtkd.seeds import seed_list
from mtkd.errors import ConfigError, DatasetError
from mtkd.models import MODELS

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    """The README's Python example: the first python block under its "Python" heading."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_is_at_most_15_lines_and_runs_as_written(tmp_path):
    code = readme_example()
    assert len(code.splitlines()) <= 15
    env = {**os.environ, "HOME": str(tmp_path / "home")}  # its data set and pool go to an empty cache
    for variable in ("MTKD_DATA_DIR", "MTKD_POOL_DIR", "MTKD_TEACHER_CACHE"):
        env.pop(variable, None)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(next((tmp_path / "runs").rglob("results.json")).read_text())
    rows = {row["strategy"]: row for row in results["rows"]}
    assert "rl" in rows and len(rows) >= 2
    # The printed table is results.json's: every row's mean test accuracy, in %, to 2 places.
    for name, row in rows.items():
        line = next(line for line in out.stdout.splitlines() if line.split()[:1] == [name])
        assert f"{100 * np.mean(row['test_accuracy']):.2f}" in line
    # The arrays became a TFDS data set in the (empty) HOME's cache, named after their content.
    prepared = list((tmp_path / "home" / ".cache" / "mtkd" / "tensorflow_datasets").glob("arrays_*"))
    assert [p.name for p in prepared] == [results["dataset"]]


def _digits_arrays():
    from sklearn.datasets import load_digits
    from sklearn.utils import shuffle

    x, y = shuffle(*load_digits(return_X_y=True), random_state=0)
    x = (x / 16).astype(np.float32)
    return {"x_train": x[:900], "y_train": y[:900], "x_val": x[900:1200], "y_val": y[900:1200],
            "x_test": x[1200:], "y_test": y[1200:]}


def _teacher_logits(data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    logits = {}
    for model in (LogisticRegression(max_iter=300), GaussianNB()):
        model.fit(data["x_train"], data["y_train"])
        logits[type(model).__name__] = {k: model.predict_log_proba(data[f"x_{k}"]) for k in ("train", "val", "test")}
    return logits


def test_arrays_and_logits_in_memory_give_what_the_commands_give_from_files(tmp_path, monkeypatch):
    """api.distill on arrays and logits against `mtkd data import`, `mtkd teachers train` with
    external teachers and `mtkd distill --dataset NAME --val-split validation`: the same numbers."""
    monkeypatch.setenv("MTKD_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("MTKD_POOL_DIR", str(tmp_path / "pools"))
    data = _digits_arrays()
    logits = _teacher_logits(data)
    result = api.distill("mlp", data, logits, strategies=["uniform", "weighted"], seeds=2, epochs=4,
                         student_options={"widths": [16]}, out=tmp_path / "api")

    np.savez(tmp_path / "data.npz", **data)
    spec = ["[[teachers]]"]
    for name, arrays in logits.items():
        np.savez(tmp_path / f"{name}.npz", train=arrays["train"], validation=arrays["val"], test=arrays["test"])
        spec += [f'[[teachers]]\nname = "{name}"\nexternal = "{tmp_path / name}.npz"']
    (tmp_path / "pool.toml").write_text("\n".join(spec[1:]) + "\n")
    env = {**os.environ, "MTKD_DATA_DIR": str(tmp_path / "tfds"), "MTKD_POOL_DIR": str(tmp_path / "pools")}

    def mtkd(*argv):
        done = subprocess.run([sys.executable, "-m", "mtkd.cli.main", *argv], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]

    mtkd("data", "import", "mine", "--npz", str(tmp_path / "data.npz"))
    mtkd("teachers", "train", "--dataset", "mine", "--val-split", "validation", "--pool", str(tmp_path / "pool.toml"),
         "--out", str(tmp_path / "pool"))
    mtkd("distill", "--dataset", "mine", "--val-split", "validation", "--teachers", str(tmp_path / "pool"),
         "--strategy", "uniform", "--strategy", "weighted", "--seeds", "2", "--epochs", "4",
         "--student-options", '{"widths": [16]}', "--out", str(tmp_path / "cli"))
    cli = api.RunResult.read(tmp_path / "cli")
    for name in ("uniform", "weighted"):
        assert result.row(name)["test_accuracy"] == cli.row(name)["test_accuracy"]
        assert result.row(name)["val_accuracy"] == cli.row(name)["val_accuracy"]
    assert [t["val_accuracy"] for t in result.teachers] == [t["val_accuracy"] for t in cli.teachers]
    assert result.test_accuracy("uniform") == pytest.approx(np.mean(cli.row("uniform")["test_accuracy"]))
    # Called again with the same arrays: the data set and the pool are reused, not written again.
    stamp = next((tmp_path / "tfds").glob("arrays_*/mtkd-arrays.txt"))
    before = stamp.stat().st_mtime_ns
    again = api.distill("mlp", data, logits, strategies=["uniform"], seeds=1, epochs=1,
                        student_options={"widths": [16]}, out=tmp_path / "again")
    assert stamp.stat().st_mtime_ns == before and again.dataset_name() == result.dataset_name()


class CopiedMLP(nnx.Module):
    """The `mlp` architecture with one hidden layer, written as a researcher would."""

    def __init__(self, input_shape, num_classes, *, rngs, width: int = 16):
        self.hidden = nnx.Linear(int(np.prod(input_shape)), width, rngs=rngs)
        self.head = nnx.Linear(width, num_classes, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.hidden(x.reshape(x.shape[0], -1)))
        return self.head(h), {"embedding": h}


def test_a_student_class_of_ones_own_trains_exactly_as_the_architecture_it_copies(tmp_path, data_dir,
                                                                                   tiny_pool_dir):
    common = dict(strategies=["uniform"], seeds=[3], epochs=2, data_dir=data_dir)
    own = api.distill(CopiedMLP, "mnist1d", str(tiny_pool_dir), out=tmp_path / "own", **common)
    builtin = api.distill("mlp", "mnist1d", str(tiny_pool_dir), student_options={"widths": [16]},
                          out=tmp_path / "builtin", **common)
    assert own.row("uniform")["test_accuracy"] == builtin.row("uniform")["test_accuracy"]
    assert own.document["student"] == {"arch": "CopiedMLP", "options": {}}
    assert MODELS.get("CopiedMLP") is CopiedMLP


def test_student_classes_are_registered_once_and_checked():
    class Redefined(nnx.Module):
        def __init__(self, input_shape, num_classes, *, rngs):
            pass

    first = Redefined
    assert register_model(first) == "Redefined"

    class Redefined(nnx.Module):  # noqa: F811  (a notebook cell run again)
        def __init__(self, input_shape, num_classes, *, rngs):
            pass

    register_model(Redefined)
    assert MODELS.get("Redefined") is Redefined and Redefined is not first

    class NoShape(nnx.Module):
        def __init__(self, *, rngs):
            pass

    with pytest.raises(ConfigError, match="lacks input_shape, num_classes"):
        api.student_spec(NoShape)
    mlp = type("mlp", (nnx.Module,), {"__init__": lambda self, input_shape, num_classes, *, rngs: None})
    with pytest.raises(ConfigError, match="model name 'mlp' is taken by mtkd.models.mlp.MLP"):
        api.student_spec(mlp)
    with pytest.raises(ConfigError, match="a student is a Flax NNX module class"):
        api.student_spec(3)


def test_bad_data_and_logits_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("MTKD_DATA_DIR", str(tmp_path / "tfds"))
    data = _digits_arrays()
    logits = _teacher_logits(data)
    with pytest.raises(ConfigError, match="data lacks y_test"):
        api.distill("mlp", {k: v for k, v in data.items() if k != "y_test"}, None, out=tmp_path / "a")
    with pytest.raises(ConfigError, match="data has array.s. x_extra"):
        api.distill("mlp", {**data, "x_extra": data["x_val"]}, None, out=tmp_path / "b")
    with pytest.raises(ConfigError, match="seeds must list whole numbers"):
        api.distill("mlp", data, logits, seeds=[1.5], out=tmp_path / "d")
    with pytest.raises(ConfigError, match="strategies is a list of strategy names"):
        api.distill("mlp", data, logits, strategies="uniform", out=tmp_path / "e")
    with pytest.raises(ConfigError, match="unknown argument.s. epoch; the training settings are"):
        api.distill("mlp", data, logits, epoch=3, out=tmp_path / "f")
    assert not (tmp_path / "tfds").exists()  # refused before the arrays were imported
    missing_val = {name: {k: v for k, v in arrays.items() if k != "val"} for name, arrays in logits.items()}
    with pytest.raises(ConfigError, match="the data has x_val, so give 'train', 'val' and 'test'"):
        api.distill("mlp", data, missing_val, out=tmp_path / "c")
    assert not any((tmp_path / name).exists() for name in "abcdef")
    name = api.import_arrays(data, name="mine")
    changed = {**data, "y_train": (data["y_train"] + 1) % 10}
    with pytest.raises(DatasetError, match="already exists"):
        api.import_arrays(changed, name=name)


def test_seeds_and_content_names():
    assert seed_list(3) == [0, 1, 2] and seed_list([7, 2]) == [7, 2]
    for bad in (0, [], [1, 1], True, [-1], "3"):
        with pytest.raises(ConfigError):
            seed_list(bad)
    a = {"x": np.arange(4, dtype=np.float32)}
    assert content_name("p", a) == content_name("p", {"x": np.arange(4, dtype=np.float32)})
    assert content_name("p", a) != content_name("p", {"x": np.arange(4, dtype=np.float64)})
    assert content_name("p", a) != content_name("p", {"y": np.arange(4, dtype=np.float32)})
