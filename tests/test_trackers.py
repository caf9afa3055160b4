"""Weights & Biases and MLflow through the tracking hook (`MTKD_TRACKERS`): every finished row
sent once, epoch by epoch, with the numbers of its metrics file. The libraries are optional
extras; stand-ins with their call signatures record what mtkd sends."""

from __future__ import annotations

import contextlib
import importlib.machinery
import json
import sys
import types

import numpy as np
import pytest

from mtkd import api
from mtkd.errors import ConfigError
from mtkd.tracking import check_trackers


class Recorder:
    def __init__(self):
        self.runs = []  # each: {"name", "config" or "params", "steps": {step: scalars}, "summary"}


def fake_wandb(recorder: Recorder) -> types.ModuleType:
    module = types.ModuleType("wandb")
    module.__spec__ = importlib.machinery.ModuleSpec("wandb", None)

    class Run:
        def __init__(self, name, config):
            self.record = {"name": name, "config": config, "steps": {}, "summary": {}, "finished": False}
            self.summary = self.record["summary"]
            recorder.runs.append(self.record)

        def log(self, data, step):
            self.record["steps"].setdefault(step, {}).update(data)

        def finish(self):
            self.record["finished"] = True

    module.init = lambda project, name, group, config: Run(name, config)
    return module


def fake_mlflow(recorder: Recorder) -> types.ModuleType:
    module = types.ModuleType("mlflow")
    module.__spec__ = importlib.machinery.ModuleSpec("mlflow", None)
    current = []

    @contextlib.contextmanager
    def start_run(run_name):
        current.append({"name": run_name, "params": {}, "steps": {}, "summary": {}})
        yield
        recorder.runs.append(current.pop())

    def log_metrics(metrics, step=None):
        target = current[-1]["steps"].setdefault(step, {}) if step is not None else current[-1]["summary"]
        target.update(metrics)

    module.set_experiment = lambda name: None
    module.start_run = start_run
    module.log_params = lambda params: current[-1]["params"].update(params)
    module.log_metrics = log_metrics
    return module


def test_every_row_goes_once_to_wandb_and_mlflow_with_its_metrics(tmp_path, monkeypatch, data_dir, tiny_pool_dir):
    wandb, mlflow = Recorder(), Recorder()
    monkeypatch.setitem(sys.modules, "wandb", fake_wandb(wandb))
    monkeypatch.setitem(sys.modules, "mlflow", fake_mlflow(mlflow))
    monkeypatch.setenv("MTKD_TRACKERS", "wandb, mlflow")
    result = api.distill("mlp", "mnist1d", str(tiny_pool_dir), strategies=["uniform", "none"], seeds=[0, 1],
                         epochs=3, student_options={"widths": [16]}, data_dir=data_dir, out=tmp_path / "run")
    for recorder in (wandb, mlflow):
        assert sorted(run["name"] for run in recorder.runs) == ["run/none", "run/uniform"]
        for run in recorder.runs:
            row = result.row(run["name"].split("/")[1])
            lines = [json.loads(line) for line in (tmp_path / "run" / "metrics" /
                                                   f"{row['strategy']}.jsonl").read_text().splitlines()]
            assert sorted(run["steps"]) == [1, 2, 3]
            for line in lines:
                sent = run["steps"][line["epoch"]]
                assert sent["val_accuracy/seed0"] == line["val_accuracy"][0]
                assert sent["val_accuracy/seed1"] == line["val_accuracy"][1]
                assert sent["val_accuracy/mean"] == pytest.approx(np.mean(line["val_accuracy"]))
                assert sent["train_loss/mean"] == pytest.approx(np.mean(line["train_loss"]))
            if row["strategy"] == "uniform":  # each teacher's selection frequency (uniform: every teacher, always)
                assert {sent[f"selection/{name}"] for name in ("mlp_a", "mlp_b", "cnn") for sent in
                        run["steps"].values()} == {1.0}
            assert run["summary"]["result/test_accuracy_mean"] == pytest.approx(np.mean(row["test_accuracy"]))
    assert all(run["finished"] for run in wandb.runs)
    # Written again (a resumed ablation writes results after every row): nothing is sent twice.
    from mtkd.tracking import track_run

    track_run(tmp_path / "run", list(result.rows), ["mlp_a", "mlp_b", "cnn"])
    assert len(wandb.runs) == 2 and len(mlflow.runs) == 2


def test_a_tracker_that_fails_warns_and_gets_the_row_again_next_time(tmp_path, monkeypatch, capsys):
    from mtkd.tracking import TRACKERS, track_run

    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "uniform.jsonl").write_text(
        json.dumps({"epoch": 1, "train_loss": [1.0], "val_accuracy": [0.5], "val_loss": [1.2]}) + "\n")
    rows = [{"strategy": "uniform", "seeds": [0], "val_accuracy": [0.5], "test_accuracy": [0.4]},
            {"strategy": "broken", "seeds": [0], "error": "ValueError: no"}]
    calls = []

    def flaky(name, path, row, seeds, teachers):
        calls.append(name)
        if len(calls) == 1:
            raise ConnectionError("service down")

    monkeypatch.setitem(TRACKERS._entries, "flaky", flaky)
    monkeypatch.setenv("MTKD_TRACKERS", "flaky")
    track_run(tmp_path, rows)
    assert "warning: tracker flaky could not take row uniform (ConnectionError: service down)" in capsys.readouterr().err
    assert not (tmp_path / "tracking" / "flaky" / "uniform").exists()
    track_run(tmp_path, rows)  # the next write sends it; the failed row is never sent
    track_run(tmp_path, rows)
    assert calls == [f"{tmp_path.name}/uniform"] * 2


def test_an_unknown_or_missing_tracker_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("MTKD_TRACKERS", "tensorbored")
    with pytest.raises(ConfigError, match="MTKD_TRACKERS: unknown tracker 'tensorbored'; known: mlflow, wandb"):
        check_trackers()
    monkeypatch.setenv("MTKD_TRACKERS", "wandb")
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"MTKD_TRACKERS names wandb, which is not installed: pip install 'mtkd\[wandb\]'"):
        api.distill("mlp", "mnist1d", None, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()
