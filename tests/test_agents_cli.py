"""`mtkd select train` end to end on the session's tiny pool."""

import json

import pytest

from mtkd import agents
from mtkd.cli.main import main

TINY_RUN = ["--procedure", "episodic", "--episodes", "2", "--num-envs", "2", "--episode-epochs", "1", "--epochs", "1", "--seeds", "2",
            "--batch-size", "64", "--student-options", '{"widths": [16]}']


@pytest.fixture
def common(tiny_pool_dir, data_dir):
    """The session's tiny mnist1d pool (tests/conftest.py): three teachers, one on noisy labels."""
    return ["--dataset", "mnist1d", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir)]


def test_select_train_writes_policy_selection_log_and_results(common, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["select", "train", *common, "--out", str(out), "--compare", "uniform", *TINY_RUN])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "mnist1d"
    assert [row["strategy"] for row in results["rows"]] == ["rl", "uniform"]
    for row in results["rows"]:
        assert row["seeds"] == [0, 1] and len(row["val_accuracy"]) == 2 and len(row["test_accuracy"]) == 2
        assert all(0.0 <= a <= 1.0 for a in row["test_accuracy"])
    records = [json.loads(line) for line in (out / "selection.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in records] == [1, 2]
    assert set(records[0]["selection"]) == {"mlp_a", "mlp_b", "cnn"}
    assert all(0.0 <= f <= 1.0 for r in records for f in r["selection"].values())
    assert all(0.0 <= r["val_accuracy"] <= 1.0 and len(r["returns"]) == 2 for r in records)
    policy, params, meta = agents.load_policy(out / "policy")
    assert meta.num_teachers == 3 and meta.teacher_names == ["mlp_a", "mlp_b", "cnn"]
    printed = capsys.readouterr()
    assert "episode 2/2" in printed.err and "rl" in printed.out

    # the saved policy drives `mtkd distill --strategy rl --policy DIR` too
    distilled = tmp_path / "distill"
    assert main(["distill", *common, "--strategy", "rl", "--policy", str(out / "policy"), "--greedy",
                 "--epochs", "1", "--seeds", "1", "--batch-size", "64", "--student-options", '{"widths": [16]}',
                 "--out", str(distilled)]) == 0
    row = json.loads((distilled / "results.json").read_text())["rows"][0]
    assert row["strategy"] == "rl" and len(row["test_accuracy"]) == 1
    # The run directory itself names its policy as well (`--policy RUN_DIR`), to the same numbers.
    assert main(["distill", *common, "--strategy", "rl", "--policy", str(out), "--greedy",
                 "--epochs", "1", "--seeds", "1", "--batch-size", "64", "--student-options", '{"widths": [16]}',
                 "--out", str(tmp_path / "distill_run_dir")]) == 0
    again = json.loads((tmp_path / "distill_run_dir" / "results.json").read_text())["rows"][0]
    assert again["test_accuracy"] == row["test_accuracy"]


def test_bad_options_fail_before_anything_is_written(common, tmp_path, capsys):
    for bad in (["--reward", "accuracy"], ["--policy-arch", "transformer"], ["--num-envs", "1"],
                ["--policy-options", "[1]"], ["--compare", "nonsense"]):
        out = tmp_path / bad[1]
        code = main(["select", "train", *common, "--out", str(out), *TINY_RUN, *bad])
        assert code == 2, bad
        assert not out.exists(), bad
    assert "unknown reward 'accuracy'" in capsys.readouterr().err


JOINT_RUN = ["--procedure", "joint", "--epochs", "4", "--seeds", "2", "--batch-size", "64", "--student-options", '{"widths": [16]}',
             "--credit-every", "1"]


def test_joint_select_train_writes_rounds_policy_and_results(common, tmp_path, capsys):
    out = tmp_path / "joint"
    assert main(["select", "train", *common, "--out", str(out), *JOINT_RUN, "--compare", "uniform"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [row["strategy"] for row in results["rows"]] == ["rl", "uniform"]
    rl = results["rows"][0]
    assert rl["seeds"] == [0, 1] and set(rl["mean_selection"]) == {"mlp_a", "mlp_b", "cnn"}
    rounds = [json.loads(line) for line in (out / "selector.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rounds] == [1, 2, 3]  # every epoch but the last
    assert all(len(r["credit"]) == 2 and len(r["credit"][0]) == 3 for r in rounds)
    metrics = [json.loads(line) for line in (out / "metrics" / "rl.jsonl").read_text().splitlines()]
    assert len(metrics) == 4 and all(len(m["selection"]) == 2 and len(m["selection"][0]) == 3 for m in metrics)
    _, _, meta = agents.load_policy(out / "policy")
    assert meta.apply == "expected" and meta.teacher_names == ["mlp_a", "mlp_b", "cnn"]
    assert all(len(r["evidence"]) == 2 and len(r["evidence"][0]) == 3 for r in rounds)


def test_bad_joint_options_fail_before_anything_is_written(common, tmp_path, capsys):
    bad_options = (["--credit-horizon", "0"], ["--evidence-threshold", "-1"], ["--evidence-cap", "nan"],
                   ["--apply", "mean"], ["--init", "best"], ["--credit-every", "-2"])
    for bad in bad_options:
        out = tmp_path / bad[0].strip("-")
        assert main(["select", "train", *common, "--out", str(out), *JOINT_RUN, *bad]) == 2, bad
        assert not out.exists(), bad
    err = capsys.readouterr().err
    assert "credit_horizon must be > 0, got 0.0" in err and "evidence_threshold must be >= 0" in err


def test_a_policy_is_refused_on_a_pool_with_other_teacher_names(common, tmp_path, capsys, data_dir):
    out = tmp_path / "joint"
    assert main(["select", "train", *common, "--out", str(out), *JOINT_RUN]) == 0
    policy_json = out / "policy" / "policy.json"
    data = json.loads(policy_json.read_text())
    data["teacher_names"] = ["mlp_b", "mlp_a", "cnn"]  # same K, another order
    policy_json.write_text(json.dumps(data))
    code = main(["distill", *common, "--strategy", "rl", "--policy", str(out / "policy"), "--epochs", "1",
                 "--seeds", "1", "--out", str(tmp_path / "distill")])
    assert code == 2 and not (tmp_path / "distill").exists()
    err = capsys.readouterr().err
    assert "[mlp_b, mlp_a, cnn]" in err and "[mlp_a, mlp_b, cnn]" in err
