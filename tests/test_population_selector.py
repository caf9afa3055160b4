"""The population selector end to end: it drops a misleading teacher from "select all" on the
probe (several selector seeds), its null-reward control, determinism and independent selector
seeds, the saved policy reproducing the `rl` row, resuming from `generations.json`, and a
population too small for the pool refused before anything is written."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

import mtkd.agents.population as population
from mtkd.agents.population import search
from mtkd.agents.population_config import PopulationConfig
from mtkd.envs.probe import probe_arrays
from mtkd.cli.main import main
from mtkd.distill.config import TrainConfig
from mtkd.models import ModelSpec

STUDENT = ModelSpec("mlp", {"widths": [16]})
TRAIN = TrainConfig(epochs=30, batch_size=64, learning_rate=3e-3, temperature=2.0)
NAMES = ["good_a", "good_b", "rolled"]


def probe_splits(seed):
    arrays = probe_arrays(seed=seed)
    splits = SimpleNamespace(x_train=arrays.x_train, y_train=arrays.y_train, x_val=arrays.x_val, y_val=arrays.y_val,
                             input_shape=arrays.x_train.shape[1:], num_classes=4)
    return splits, {"train": arrays.teacher_logits_train, "val": arrays.teacher_logits_val}


@pytest.mark.parametrize("agent_seed", [0, 1])
def test_search_drops_the_rolled_teacher_from_select_all(agent_seed):
    splits, logits = probe_splits(0)
    config = PopulationConfig(population=8, generations=2, init="all", agent_seed=agent_seed)
    result = search(splits, logits, NAMES, [0.9, 0.9, 0.0], STUDENT, TRAIN, config, log=lambda line: None)
    assert result.logits[2] < 0 < min(result.logits[:2]), result.credit  # greedy: the good two, not the rolled one
    assert result.credit.t[2] < -3, result.credit
    assert [len(g.returns) for g in result.generations] == [8, 8] and result.credit.students == 16


def test_null_reward_control(monkeypatch):
    """Returns of pure noise: over 200 searches of 3 teachers from "select all" (logit log 9), a
    teacher is dropped only when its t falls below -(log 9 / lr + threshold) = -1.6: as often as
    Student's t with the fit's degrees of freedom says (about 6%), never more, and never for more
    than one generation's worth of luck."""
    from scipy import stats

    rng = np.random.default_rng(0)

    def noise(splits, logits, student, train, config, seeds, masks, context, checkpoints=None, devices=None,
              fusions=None):
        returns = rng.normal(scale=0.02, size=len(seeds))
        return returns, returns

    monkeypatch.setattr(population, "run_generation", noise)
    splits, logits = probe_splits(0)
    kept = []
    for agent_seed in range(200):
        config = PopulationConfig(population=16, generations=2, agent_seed=agent_seed)
        result = search(splits, logits, NAMES, [0.9] * 3, STUDENT, TRAIN, config, log=lambda line: None)
        kept.append(result.logits > 0)
        dof = result.credit.dof
    config = PopulationConfig()
    cut = -(np.log(9.0) / config.policy_learning_rate + config.evidence_threshold)
    expected_drop = stats.t.cdf(cut, dof)  # 32 students, 2 intercepts, 3 teachers: 27 dof
    dropped = 1.0 - np.mean(kept)
    assert dof == 27 and 0.04 < expected_drop < 0.08
    assert abs(dropped - expected_drop) < 3 * np.sqrt(expected_drop * (1 - expected_drop) / 600), (dropped, expected_drop)


def test_search_is_deterministic_and_selector_seeds_draw_their_own_populations():
    splits, logits = probe_splits(1)
    train = TRAIN.replace(epochs=4)

    def run(agent_seed):
        config = PopulationConfig(population=5, generations=1, agent_seed=agent_seed)
        return search(splits, logits, NAMES, [0.9] * 3, STUDENT, train, config, log=lambda line: None).generations[0]

    a, b, other = run(0), run(0), run(1)
    assert a.returns == b.returns and a.masks == b.masks
    assert set(a.seeds).isdisjoint(other.seeds) and a.returns != other.returns


def _ablation(tmp_path, data_dir, tiny_pool_dir, strategies, rl=""):
    path = tmp_path / "ablation.toml"
    path.write_text("\n".join([
        'dataset = "mnist1d"', f'data_dir = "{data_dir}"', f'pool_dir = "{tiny_pool_dir}"', "seeds = 2",
        f"strategies = {json.dumps(strategies)}", "[student]", 'arch = "mlp"', "options = { widths = [16] }",
        "[train]", "epochs = 2", "batch_size = 128", "[rl]", "population = 5", "generations = 2", rl]) + "\n")
    return path


def distilled_with_policy(policy, data_dir, pool_dir, out) -> dict:
    """`mtkd distill --strategy rl --policy POLICY` with the `_ablation` runs' student and
    training settings: its results row."""
    code = main(["distill", "--dataset", "mnist1d", "--data-dir", data_dir, "--teachers", str(pool_dir),
                 "--strategy", "rl", "--policy", str(policy), "--epochs", "2", "--seeds", "2", "--batch-size", "128",
                 "--student-options", '{"widths": [16]}', "--out", str(out)])
    assert code == 0
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    return row


def test_rows_share_one_search_and_the_saved_policy_reproduces_the_row(data_dir, tiny_pool_dir, tmp_path, capsys):
    config = _ablation(tmp_path, data_dir, tiny_pool_dir, ["rl", "rl:per_example"],
                       'final_fusion = "uniform"\nfinal_whole_pool = ""')  # one candidate: the policy itself
    out = tmp_path / "run"
    assert main(["ablate", "--config", str(config), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("generation 1/2 reused") == 1 and err.count("generation 2/2 reused") == 1  # rl:per_example
    rows = {row["strategy"]: row for row in json.loads((out / "results.json").read_text())["rows"]}
    generations = [json.loads(line) for line in (out / "selector" / "rl" / "selector.jsonl").read_text().splitlines()]
    assert [g["generation"] for g in generations] == [1, 2] and all(len(g["masks"]) == 5 for g in generations)
    assert rows["rl"]["population_students"] == 10 and rows["rl"]["seconds"] > rows["rl"]["final_seconds"]
    # greedy: each teacher's mean weight is 0 or 1, as the final policy says
    final = np.asarray(generations[-1]["next_probability"]) > 0.5
    assert [rows["rl"]["mean_selection"][n] for n in ("mlp_a", "mlp_b", "cnn")] == [[float(f)] * 2 for f in final]
    metrics = [json.loads(line) for line in (out / "metrics" / "rl.jsonl").read_text().splitlines()]
    assert np.asarray(metrics[0]["selection"]).shape == (2, 3)
    # The saved policy, applied with `mtkd distill`, gives the row's students exactly.
    again = distilled_with_policy(out / "selector" / "rl" / "policy", data_dir, tiny_pool_dir, tmp_path / "distill")
    assert again["test_accuracy"] == rows["rl"]["test_accuracy"] and again["best_epoch"] == rows["rl"]["best_epoch"]


def test_several_candidate_fusions_split_the_population_and_one_is_kept(data_dir, tiny_pool_dir, tmp_path):
    config = _ablation(tmp_path, data_dir, tiny_pool_dir, ["rl"], 'fusion = "uniform,weighted"').read_text()
    (tmp_path / "fusions.toml").write_text(config.replace("population = 5", "population = 6"))
    out = tmp_path / "run"
    assert main(["ablate", "--config", str(tmp_path / "fusions.toml"), "--out", str(out)]) == 0
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    saved = json.loads((out / "selector" / "generations.json").read_text())
    assert [g["fusions"] for g in saved["generations"]] == [[0, 1, 0, 1, 0, 1]] * 2
    assert len(saved["generations"][-1]["credit"]["extra_t"]) == 1 and row["fusion"] in ("uniform", "weighted")
    from mtkd.agents import load_policy

    _, _, meta = load_policy(out / "selector" / "rl" / "policy")
    assert meta.fusion == row["fusion"]


def test_final_fusion_weighs_the_kept_teachers_as_that_fusion_does(data_dir, tiny_pool_dir, tmp_path):
    """The credit is read under uniform fusion; the reported students fuse the kept teachers by
    AE-KD. With every teacher kept (no credit moves a teacher at this learning rate), the rl row
    is the ae_kd row, student for student; the saved policy says ae_kd."""
    from mtkd.agents import load_policy

    config = _ablation(tmp_path, data_dir, tiny_pool_dir, ["ae_kd", "rl"],
                       'final_fusion = "ae_kd"\npolicy_learning_rate = 1e-6')  # all.ae_kd: the same, not run
    out = tmp_path / "run"
    assert main(["ablate", "--config", str(config), "--out", str(out)]) == 0
    rows = {row["strategy"]: row for row in json.loads((out / "results.json").read_text())["rows"]}
    assert rows["rl"]["fusion"] == "ae_kd" and rows["rl"]["selector"]["final_fusion"] == "ae_kd"
    generations = [json.loads(line) for line in (out / "selector" / "rl" / "selector.jsonl").read_text().splitlines()]
    assert all(p > 0.5 for p in generations[-1]["next_probability"])  # every teacher kept
    # The weights in use are AE-KD's own, epoch by epoch (selection x AE-KD's weights, all selected).
    ae_kd, rl = ([json.loads(line)["selection"] for line in (out / "metrics" / f"{name}.jsonl").read_text().splitlines()]
                 for name in ("ae_kd", "rl"))
    # (to float32 rounding: the product with the selection is another compiled program)
    np.testing.assert_allclose(rl, ae_kd, rtol=1e-5, atol=1e-6)
    assert np.asarray(rl).min() < 0.99  # AE-KD's weights, not a uniform 1
    assert rows["rl"]["test_accuracy"] == rows["ae_kd"]["test_accuracy"]
    assert rows["rl"]["val_accuracy"] == rows["ae_kd"]["val_accuracy"]
    saved = json.loads((out / "selector" / "generations.json").read_text())
    assert saved["generations"][0]["fusions"] in ([0] * 5, [])  # the population itself ran uniform
    _, _, meta = load_policy(out / "selector" / "rl" / "policy")
    assert meta.fusion == "ae_kd"


def test_final_candidates_try_each_fusion_then_the_whole_pool_and_skip_what_trains_the_same():
    from mtkd.agents.population import WHOLE_POOL_LOGIT, SearchResult, final_candidates

    def result(logits):
        return SearchResult(np.asarray(logits, np.float32), [], None, 0.0, "uniform")

    dropped = final_candidates(result([2.0, -1.0, 4.0]), PopulationConfig())
    assert [c.label for c in dropped] == ["selected.uniform", "all.ae_kd"]  # the defaults
    np.testing.assert_array_equal(dropped[0].logits, [2.0, -1.0, 4.0])
    np.testing.assert_allclose(dropped[1].logits, [WHOLE_POOL_LOGIT, WHOLE_POOL_LOGIT, 4.0])
    assert 1 / (1 + np.exp(-WHOLE_POOL_LOGIT)) == pytest.approx(0.9)  # "select all"'s start
    both = PopulationConfig(final_fusion="uniform,ae_kd")
    assert [c.label for c in final_candidates(result([2.0, -1.0, 4.0]), both)] == \
        ["selected.uniform", "selected.ae_kd", "all.ae_kd"]
    # Every teacher kept under greedy weights: ae_kd over the whole pool is ae_kd over the selection.
    assert [c.label for c in final_candidates(result([2.0, 1.0, 4.0]), both)] == ["selected.uniform", "selected.ae_kd"]
    # ... not under expected weights (0.88 is not 0.9), nor when the selection uses another fusion.
    assert len(final_candidates(result([2.0, 1.0, 4.0]), both.replace(apply="expected"))) == 3
    assert [c.label for c in final_candidates(result([2.0, 1.0, 4.0]), PopulationConfig(final_fusion="weighted"))] \
        == ["selected.weighted", "all.ae_kd"]
    # None: the fusion the search chose; "" tries no whole pool.
    only = final_candidates(SearchResult(np.zeros(3, np.float32), [], None, 0.0, "weighted"),
                            PopulationConfig(final_whole_pool=""))
    assert [c.label for c in only] == ["selected.weighted"]


def test_the_reported_students_are_the_candidate_best_on_validation(data_dir, tiny_pool_dir, tmp_path):
    """Every teacher kept (no credit moves one at this rate), so the default candidates, the
    selection under uniform fusion and the whole pool under AE-KD, are uniform and AE-KD over all
    three: each trains exactly as that row of the same run, the row is the one of the two with the
    higher mean validation accuracy, and its metrics and saved policy are that candidate's."""
    from mtkd.agents import load_policy

    config = _ablation(tmp_path, data_dir, tiny_pool_dir, ["uniform", "ae_kd", "rl"], "policy_learning_rate = 1e-6")
    out = tmp_path / "run"
    assert main(["ablate", "--config", str(config), "--out", str(out)]) == 0
    rows = {row["strategy"]: row for row in json.loads((out / "results.json").read_text())["rows"]}
    candidates = {c["candidate"]: c for c in rows["rl"]["final_candidates"]}
    assert list(candidates) == ["selected.uniform", "all.ae_kd"]
    for label, twin in (("selected.uniform", "uniform"), ("all.ae_kd", "ae_kd")):
        assert candidates[label]["test_accuracy"] == rows[twin]["test_accuracy"], label
        assert candidates[label]["val_accuracy"] == rows[twin]["val_accuracy"], label
    means = {label: np.mean(c["val_accuracy"]) for label, c in candidates.items()}
    chosen = "all.ae_kd" if means["all.ae_kd"] > means["selected.uniform"] else "selected.uniform"
    assert rows["rl"]["final_choice"] == chosen and rows["rl"]["fusion"] == chosen.split(".")[1]
    assert rows["rl"]["test_accuracy"] == candidates[chosen]["test_accuracy"]
    assert rows["rl"]["final_seconds"] == pytest.approx(sum(c["seconds"] for c in candidates.values()), abs=0.02)
    assert (out / "metrics" / "rl.jsonl").read_text() == \
        (out / "selector" / "rl" / "candidates" / f"rl.{chosen}.jsonl").read_text()
    _, _, meta = load_policy(out / "selector" / "rl" / "policy")
    assert meta.fusion == chosen.split(".")[1]
    again = distilled_with_policy(out / "selector" / "rl" / "policy", data_dir, tiny_pool_dir, tmp_path / "distill")
    assert again["test_accuracy"] == rows["rl"]["test_accuracy"]


def test_a_population_too_small_for_the_pool_is_refused_before_any_work(data_dir, tiny_pool_dir, tmp_path, capsys):
    common = ["--dataset", "mnist1d", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir)]
    out = tmp_path / "select"
    assert main(["select", "train", *common, "--out", str(out), "--population", "4"]) == 2
    assert not out.exists()
    assert "population 4 is too small for 3 teachers" in capsys.readouterr().err
    config = _ablation(tmp_path, data_dir, tiny_pool_dir, ["uniform", "rl"]).read_text().replace(
        "population = 5", "population = 3")
    (tmp_path / "small.toml").write_text(config)
    assert main(["ablate", "--config", str(tmp_path / "small.toml"), "--out", str(tmp_path / "ablate")]) == 2
    assert not (tmp_path / "ablate").exists()


def test_select_train_runs_the_population_procedure_by_default(data_dir, tiny_pool_dir, tmp_path):
    from mtkd import agents

    out = tmp_path / "select"
    common = ["--dataset", "mnist1d", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir)]
    assert main(["select", "train", *common, "--out", str(out), "--population", "5", "--generations", "1",
                 "--epochs", "2", "--seeds", "2", "--batch-size", "128", "--student-options", '{"widths": [16]}',
                 "--compare", "uniform"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [row["strategy"] for row in results["rows"]] == ["rl", "uniform"]
    assert results["selector"]["procedure"] == "population" and results["rows"][0]["population_students"] == 5
    saved = json.loads((out / "generations.json").read_text())
    assert len(saved["generations"]) == 1 and len(saved["generations"][0]["returns"]) == 5
    _, params, meta = agents.load_policy(out / "policy")
    assert meta.policy == "teacher_bias" and meta.apply == "greedy" and params["b"].shape == (3,)


@pytest.mark.parametrize("flag, value, words", [
    ("--final-fusion", "uniform,,ae_kd", "final_fusion must name fusion strategies"),
    ("--final-fusion", "rl", "final_fusion must name fusion strategies"),
    ("--final-fusion", "uniform,uniform", "final_fusion names a strategy twice"),
    ("--final-whole-pool", "nope", "final_whole_pool: unknown fusion strategy 'nope'"),
    ("--final-whole-pool", "ae_kd,random", "final_whole_pool must name fusion strategies"),
])
def test_bad_final_candidates_are_refused_before_any_work(data_dir, tiny_pool_dir, tmp_path, capsys, flag, value,
                                                          words):
    out = tmp_path / "select"
    assert main(["select", "train", "--dataset", "mnist1d", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir),
                 "--out", str(out), flag, value]) == 2
    assert not out.exists()
    assert words in capsys.readouterr().err.strip().splitlines()[-1]
