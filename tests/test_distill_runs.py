"""End to end: students trained alone and distilled, results.json, determinism, bad inputs."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.cli.main import main
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.errors import ConfigError, TrainingDivergedError
from mtkd.fusion import make_strategy
from mtkd.fusion.strategies import StrategyContext
from mtkd.models import ModelSpec


def _distill(data_dir, pool_dir, out, *extra):
    return main(["distill", "--data-dir", data_dir, "--teachers", str(pool_dir), "--strategy", "none",
                 "--strategy", "uniform", "--seeds", "2", "--epochs", "4", "--out", str(out), *extra])


def test_distill_cli_writes_results_in_the_documented_format(data_dir, tiny_pool_dir, tmp_path, capsys):
    assert _distill(data_dir, tiny_pool_dir, tmp_path / "run") == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["dataset"] == "mnist1d"
    assert [row["strategy"] for row in results["rows"]] == ["none", "uniform"]
    for row in results["rows"]:
        assert row["seeds"] == [0, 1]
        assert len(row["val_accuracy"]) == len(row["test_accuracy"]) == 2
        assert all(0.0 <= v <= 1.0 for v in row["val_accuracy"] + row["test_accuracy"])
    # metrics: one line per epoch per strategy; the chosen epoch's validation accuracy is the best.
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics" / "uniform.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2, 3, 4]
    best = np.max([l["val_accuracy"] for l in lines], axis=0)
    np.testing.assert_allclose(results["rows"][1]["val_accuracy"], best)
    printed = capsys.readouterr().out
    assert "uniform" in printed and "mlp_a" in printed


def test_same_seed_same_numbers(data_dir, tiny_pool_dir, tmp_path):
    _distill(data_dir, tiny_pool_dir, tmp_path / "a")
    _distill(data_dir, tiny_pool_dir, tmp_path / "b")
    a = json.loads((tmp_path / "a" / "results.json").read_text())["rows"]
    b = json.loads((tmp_path / "b" / "results.json").read_text())["rows"]
    assert [r["test_accuracy"] for r in a] == [r["test_accuracy"] for r in b]


def test_distilled_student_learns_from_a_perfect_teacher(mnist1d):
    """A student distilled from label-perfect teachers beats the same student alone (tiny run)."""
    onehot = np.eye(10, dtype=np.float32)[mnist1d.y_train] * 6.0
    teachers = jnp.asarray(np.stack([onehot, onehot]))
    train = SplitArrays(jnp.asarray(mnist1d.x_train[:512]), jnp.asarray(mnist1d.y_train[:512]), teachers[:, :512])
    val = SplitArrays(jnp.asarray(mnist1d.x_val), jnp.asarray(mnist1d.y_val))
    config = TrainConfig(epochs=3, batch_size=64, alpha=0.0, temperature=1.0)
    context = StrategyContext(("a", "b"), (1.0, 1.0))
    uniform = fit(ModelSpec("mlp", {"widths": [32]}), (40,), 10, train, val, make_strategy("uniform", context), config, [0])
    # With alpha = 0 and one-hot-like targets the loss still trains toward the labels; the
    # selection record says every teacher had weight 1 on every batch.
    assert np.allclose(uniform.history[-1]["selection"], 1.0)
    alone = fit(ModelSpec("mlp", {"widths": [32]}), (40,), 10, train, val, make_strategy("none", context), config, [0])
    assert np.allclose(alone.history[-1]["selection"], 0.0)
    assert alone.history[0]["train_loss"] != uniform.history[0]["train_loss"]


def test_nan_loss_stops_with_the_epoch(mnist1d):
    x = np.array(mnist1d.x_train[:256])
    x[5, 3] = np.nan
    train = SplitArrays(jnp.asarray(x), jnp.asarray(mnist1d.y_train[:256]))
    val = SplitArrays(jnp.asarray(mnist1d.x_val), jnp.asarray(mnist1d.y_val))
    with pytest.raises(TrainingDivergedError, match="at epoch 1"):
        fit(ModelSpec("mlp", {"widths": [8]}), (40,), 10, train, val,
            make_strategy("none", StrategyContext((), ())), TrainConfig(epochs=2, batch_size=256), [0])


@pytest.mark.parametrize("args,message", [
    (["--temperature", "0"], "temperature must be > 0"),
    (["--alpha", "1.5"], "alpha must be in"),
    (["--student", "transformer"], "unknown model"),
    (["--strategy", "single:nobody"], "names no teacher"),
    (["--strategy", "mystery"], "unknown fusion strategy"),
])
def test_bad_inputs_fail_before_any_work(data_dir, tiny_pool_dir, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code = main(["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--epochs", "2",
                 "--out", str(out), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (out / "results.json").exists()


def test_unknown_dataset_and_occupied_output(data_dir, tiny_pool_dir, tmp_path, capsys):
    assert main(["distill", "--dataset", "no_such_set", "--data-dir", data_dir, "--out", str(tmp_path / "x")]) == 2
    assert "unknown data set" in capsys.readouterr().err
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "results.json").write_text('{"precious": true}')
    assert _distill(data_dir, tiny_pool_dir, occupied) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert json.loads((occupied / "results.json").read_text()) == {"precious": True}


def test_train_config_validation():
    with pytest.raises(ConfigError):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError):
        TrainConfig(learning_rate=-1.0)
    with pytest.raises(Exception, match="unknown optimizer"):
        TrainConfig(optimizer="lbfgs")


def test_distill_accepts_a_loss_configuration(data_dir, tiny_pool_dir, tmp_path, capsys):
    losses = tmp_path / "losses.toml"
    losses.write_text('[[losses]]\nloss = "ce"\n[[losses]]\nloss = "dkd"\n[[losses]]\nloss = "hint"\n'
                      'weight = 0.5\nstudent_layer = "hidden_0"\nteacher_layer = "embedding"\n')
    out = tmp_path / "composite"
    assert main(["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--strategy", "uniform",
                 "--seeds", "2", "--epochs", "2", "--losses", str(losses), "--out", str(out)]) == 0
    plain = tmp_path / "plain"
    assert main(["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--strategy", "uniform",
                 "--seeds", "2", "--epochs", "2", "--out", str(plain)]) == 0
    composite_rows = json.loads((out / "results.json").read_text())["rows"]
    plain_rows = json.loads((plain / "results.json").read_text())["rows"]
    assert len(composite_rows[0]["test_accuracy"]) == 2
    # Same seeds and batches, another objective: the training losses must differ.
    composite_loss = json.loads((out / "metrics" / "uniform.jsonl").read_text().splitlines()[0])["train_loss"]
    plain_loss = json.loads((plain / "metrics" / "uniform.jsonl").read_text().splitlines()[0])["train_loss"]
    assert composite_loss != plain_loss
    capsys.readouterr()
    losses.write_text('[[losses]]\nloss = "hint"\nstudent_layer = "hidden_9"\nteacher_layer = "embedding"\n')
    assert main(["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--epochs", "2",
                 "--losses", str(losses), "--out", str(tmp_path / "bad")]) == 2
    assert "has no feature 'hidden_9'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
