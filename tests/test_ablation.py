"""The ablation runner: files, agreement of the reports, failure isolation, no test-set selection."""

import csv
import json
import re

import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.ablation import RUNNERS, ablation_config_from_dict, run_ablation
from mtkd.cli.main import main
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.errors import ConfigError
from mtkd.fusion import StrategyContext, make_strategy
from mtkd.models import ModelSpec


def tiny_config(data_dir, pool_dir, strategies):
    return ablation_config_from_dict({
        "dataset": "mnist1d", "data_dir": data_dir, "pool_dir": str(pool_dir), "seeds": 2,
        "strategies": strategies, "student": {"arch": "mlp", "options": {"widths": [16]}},
        "train": {"epochs": 3, "batch_size": 256}})


@pytest.fixture
def exploding_runner():
    def explode(run, name):
        raise RuntimeError("boom")
    RUNNERS.add("explode", explode)
    yield
    RUNNERS._entries.pop("explode")


def test_ablation_writes_every_file_and_reports_agree(data_dir, tiny_pool_dir, tmp_path, exploding_runner):
    config = tiny_config(data_dir, tiny_pool_dir, ["none", "uniform", "single:*", "random:0.5", "explode"])
    rows = run_ablation(config, tmp_path / "out", log=lambda line: None)
    out = tmp_path / "out"
    for name in ("results.json", "results.csv", "results.md", "validation_curves.png",
                 "selection_frequency.png", "final_accuracy.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    names = [row["strategy"] for row in results["rows"]]
    assert names == ["none", "uniform", "single:mlp_a", "single:mlp_b", "single:cnn", "random:0.5", "explode"]
    assert "boom" in results["rows"][-1]["error"]  # the failure is reported ...
    assert all(len(r["test_accuracy"]) == 2 for r in results["rows"][:-1])  # ... and the others kept
    # results.md states, per strategy, exactly mean ± sample std of results.json's values.
    markdown = (out / "results.md").read_text()
    for row in results["rows"][:-1]:
        line = next(l for l in markdown.splitlines() if l.startswith(f"| {row['strategy']} |"))
        val, test = re.findall(r"([\d.]+) ± ([\d.]+)", line)[:2]  # then the paired difference from uniform
        values = 100 * np.asarray(row["test_accuracy"])
        assert float(test[0]) == pytest.approx(values.mean(), abs=0.006)
        assert float(test[1]) == pytest.approx(values.std(ddof=1), abs=0.006)
        assert float(val[0]) == pytest.approx(100 * np.mean(row["val_accuracy"]), abs=0.006)
    with open(out / "results.csv") as handle:
        lines = list(csv.DictReader(handle))
    uniform = [float(l["test_accuracy"]) for l in lines if l["strategy"] == "uniform"]
    np.testing.assert_allclose(uniform, results["rows"][1]["test_accuracy"], atol=1e-6)
    assert [int(l["best_epoch"]) for l in lines if l["strategy"] == "uniform"] == results["rows"][1]["best_epoch"]
    assert {float(l["seconds"]) for l in lines if l["strategy"] == "uniform"} == {results["rows"][1]["seconds"]}
    # Every row but the reference is paired with uniform, seed by seed.
    none = results["rows"][0]
    differences = np.subtract(none["test_accuracy"], results["rows"][1]["test_accuracy"])
    assert none["paired"]["test_accuracy"]["mean"] == pytest.approx(differences.mean())


def test_bad_ablation_configs():
    with pytest.raises(ConfigError, match="unknown key.*colour"):
        ablation_config_from_dict({"colour": "red"})
    with pytest.raises(ConfigError, match=r"\[train\] has unknown key.*epoch"):
        ablation_config_from_dict({"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="listed twice"):
        ablation_config_from_dict({"strategies": ["none", "none"]})
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match="devices must be a whole number >= 1|devices = .*expected a whole number"):
            ablation_config_from_dict({"devices": bad})
    # In the run's signature only when set (earlier runs keep theirs).
    assert "devices" not in ablation_config_from_dict({}).to_dict()
    assert ablation_config_from_dict({"devices": 2}).to_dict()["devices"] == 2


def test_unknown_strategy_fails_before_training(data_dir, tiny_pool_dir, tmp_path):
    config = tiny_config(data_dir, tiny_pool_dir, ["none", "single:nobody"])
    with pytest.raises(ConfigError, match="names no teacher"):
        run_ablation(config, tmp_path / "out", log=lambda line: None)
    assert not (tmp_path / "out").exists()


def test_model_selection_never_reads_the_test_split(mnist1d):
    """The chosen epoch, its validation accuracy and its parameters do not depend on the test
    split, even when the test labels would favour another epoch."""
    train = SplitArrays(jnp.asarray(mnist1d.x_train[:1024]), jnp.asarray(mnist1d.y_train[:1024]))
    val = SplitArrays(jnp.asarray(mnist1d.x_val), jnp.asarray(mnist1d.y_val))
    strategy = make_strategy("none", StrategyContext((), ()))
    config = TrainConfig(epochs=6, batch_size=128)
    spec = ModelSpec("mlp", {"widths": [16]})
    real = fit(spec, (40,), 10, train, val, strategy, config, [0, 1],
               test=SplitArrays(jnp.asarray(mnist1d.x_test), jnp.asarray(mnist1d.y_test)))
    shuffled = fit(spec, (40,), 10, train, val, strategy, config, [0, 1],
                   test=SplitArrays(jnp.asarray(mnist1d.x_test), jnp.asarray((mnist1d.y_test + 3) % 10)))
    assert real.best_epoch == shuffled.best_epoch
    assert real.val_accuracy == shuffled.val_accuracy
    curves = np.array([r["val_accuracy"] for r in real.history])  # (epochs, seeds)
    assert real.best_epoch == list(np.argmax(curves, axis=0) + 1)
    assert real.test_accuracy != shuffled.test_accuracy


def test_pools_run_the_same_ablation_on_each_pool(data_dir, tiny_pool_dir, tmp_path, monkeypatch):
    """`pools = [...]`: every pool prepared and checked first, then each pool's results in
    OUT/<pool name>/, equal to a one-pool run of that pool; a bad name fails before training."""
    from conftest import TINY_POOL
    monkeypatch.setenv("MTKD_POOL_DIR", str(tmp_path / "pools"))
    specs = []
    for name, teachers in (("first", TINY_POOL["teachers"][:2]), ("second", TINY_POOL["teachers"][1:])):
        lines = ['[defaults]', 'epochs = 1', 'batch_size = 128', 'learning_rate = 3e-3']
        for t in teachers:
            lines += ["[[teachers]]", f'name = "{t["name"]}"', f'arch = "{t["arch"]}"',
                      f'options = {{ {", ".join(f"{k} = {v}" for k, v in t["options"].items())} }}']
        (tmp_path / f"{name}.toml").write_text("\n".join(lines) + "\n")
        specs.append(str(tmp_path / f"{name}.toml"))
    raw = {"dataset": "mnist1d", "data_dir": data_dir, "seeds": 2, "strategies": ["uniform", "ca_mkd"],
           "student": {"arch": "mlp", "options": {"widths": [16]}}, "train": {"epochs": 2, "batch_size": 256}}
    with pytest.raises(ConfigError, match="names no teacher"):
        run_ablation(ablation_config_from_dict({**raw, "pools": specs, "strategies": ["single:cnn"]}),
                     tmp_path / "bad", log=lambda line: None)  # cnn is in the second pool only
    assert not (tmp_path / "bad").exists()
    rows = run_ablation(ablation_config_from_dict({**raw, "pools": specs}), tmp_path / "both", log=lambda line: None)
    assert [(r["pool"], r["strategy"]) for r in rows] == [
        ("first", "uniform"), ("first", "ca_mkd"), ("second", "uniform"), ("second", "ca_mkd")]
    alone = run_ablation(ablation_config_from_dict({**raw, "pool": specs[1]}), tmp_path / "alone",
                         log=lambda line: None)
    second = json.loads((tmp_path / "both" / "second" / "results.json").read_text())["rows"]
    assert [r["test_accuracy"] for r in second] == [r["test_accuracy"] for r in alone]
    assert "## Pool `first`" in (tmp_path / "both" / "results.md").read_text()
    with pytest.raises(ConfigError, match="not both"):
        ablation_config_from_dict({**raw, "pools": specs, "pool": "default"})
    with pytest.raises(ConfigError, match="pools is empty"):
        ablation_config_from_dict({**raw, "pools": []})


@pytest.mark.parametrize("section,raw,message", [
    ("dml", {"peerz": 2}, r"\[dml\] has unknown key\(s\): peerz; known: peers, temperature, update"),
    ("dml", {"update": "parallel"}, "update must be one of sequential, simultaneous"),
    ("dml", {"peers": 1}, "peers must be at least 2"),
    ("dml", {"temperature": 0}, "temperature must be a finite number > 0"),
    ("byot", {"chanels": [8]}, r"\[byot\].*no option\(s\) chanels"),
    ("byot", {"kd_weight": 2.0}, "kd_weight must be in"),
    ("byot", {"alpha": 0.5}, "'alpha' is now 'kd_weight'"),
    ("rl", {"credit_evry": 3}, "credit_evry"),
    ("rl", {"procedure": "episodic", "episods": 3}, r"\[rl\] has unknown option\(s\) episods"),
    ("rl", {"procedure": "episodc"}, "procedure must be one of population, joint, episodic"),
    ("rl", {"policy": "somewhere", "credit_every": 2}, "only apply when no policy is given"),
])
def test_every_section_is_checked_before_any_training(data_dir, tiny_pool_dir, tmp_path, section, raw, message):
    """A bad option in [dml], [byot] or [rl] fails before the first strategy trains, even when the
    section's strategy comes last (or is not listed): no output directory, no metrics file."""
    config = ablation_config_from_dict({
        "dataset": "mnist1d", "data_dir": data_dir, "pool_dir": str(tiny_pool_dir), "seeds": 1,
        "strategies": ["uniform"] + (["dml"] if section == "dml" else []),
        "student": {"arch": "mlp", "options": {"widths": [16]}}, "train": {"epochs": 1}, section: raw})
    with pytest.raises(ConfigError, match=message):
        run_ablation(config, tmp_path / "out", log=lambda line: None)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("raw,message", [
    ({"strategis": ["uniform"]}, r"unknown key\(s\): strategis"),
    ({"train": {"epoch": 3}}, r"\[train\] has unknown key\(s\): epoch"),
    ({"student": {"arch": "mlp", "option": {}}}, r"\[student\] has unknown key\(s\): option"),
    ({"checkpoint": {"every_epoch": 2}}, r"\[checkpoint\] has unknown key\(s\): every_epoch"),
    ({"checkpoint": {"every_seconds": -1}}, "every_seconds must be a number >= 0"),
    ({"losses": [{"loss": "kd", "wieght": 1.0}]}, "wieght"),
])
def test_a_misspelled_option_in_any_table_is_refused_when_read(raw, message):
    with pytest.raises(ConfigError, match=message):
        ablation_config_from_dict({"dataset": "mnist1d", "strategies": ["uniform"], **raw})


def test_typed_sections_read_what_the_runners_use():
    from mtkd.ablation.sections import ByotSection, DmlSection
    student = ModelSpec("mlp", {"widths": [16]})
    assert DmlSection.from_dict({}).peer_specs(student) == [student, student]
    mixed = DmlSection.from_dict({"peers": ["mlp", {"arch": "cnn1d", "options": {"channels": [4]}}],
                                  "update": "simultaneous", "temperature": 2})
    assert [p.arch for p in mixed.peer_specs(student)] == ["mlp", "cnn1d"] and mixed.temperature == 2.0
    byot = ByotSection.from_dict({"kd_weight": 0.5, "channels": [8, 8]})
    assert byot.run_options() == {"kd_weight": 0.5, "temperature": 3.0, "feature_weight": 0.03, "channels": [8, 8]}


def test_a_policy_of_other_teachers_is_refused_before_the_first_strategy(data_dir, tiny_pool_dir, tmp_path):
    import jax.numpy as jnp

    from mtkd import envs
    from mtkd.agents import PolicyMeta, save_policy

    # The tiny pool's three teachers, in another order and under other names.
    meta = PolicyMeta("logistic", {}, 3, envs.observation_size(3, False), False, 2.0, ["cnn", "mlp_a", "other"])
    save_policy(tmp_path / "policy", {"w": jnp.zeros((19, 3)), "b": jnp.zeros(3)}, meta)
    config = ablation_config_from_dict({
        "dataset": "mnist1d", "data_dir": data_dir, "pool_dir": str(tiny_pool_dir), "seeds": 1,
        "strategies": ["uniform", "rl"], "student": {"arch": "mlp", "options": {"widths": [16]}},
        "train": {"epochs": 1}, "rl": {"policy": str(tmp_path / "policy")}})
    from mtkd.errors import MtkdError

    with pytest.raises(MtkdError, match=r"\[cnn, mlp_a, other\]; this pool has \[mlp_a, mlp_b, cnn\]"):
        run_ablation(config, tmp_path / "out", log=lambda line: None)
    assert not (tmp_path / "out").exists()


def test_more_devices_than_the_host_has_fail_before_any_work(tmp_path, capsys):
    from mtkd.cli.main import main

    config = tmp_path / "ablation.toml"
    config.write_text('strategies = ["uniform"]\n')
    assert main(["ablate", "--config", str(config), "--out", str(tmp_path / "out"), "--devices", "64"]) == 2
    assert "64 devices asked for, but this host has" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


KD_FAMILY = [{"loss": "ce", "weight": 0.3}, {"loss": "kd", "weight": 0.7, "temperature": 4, "fused": True}]


def test_a_loss_family_is_a_row_of_its_own_equal_to_the_composite_fit(data_dir, tiny_pool_dir, tmp_path):
    """`[[families]]` rows (the former loss-family recipe) run through the ablation; each equals a
    direct `fit_composite` of its loss under its strategy, computed here on its own."""
    from mtkd.data import load_dataset
    from mtkd.distill.composite_fit import fit_composite
    from mtkd.teachers import load_pool

    raw = {"dataset": "mnist1d", "data_dir": data_dir, "pool_dir": str(tiny_pool_dir), "seeds": 2,
           "strategies": ["none"], "student": {"arch": "mlp", "options": {"widths": [16]}},
           "train": {"epochs": 2, "batch_size": 256},
           "families": [{"name": "kd_family", "losses": KD_FAMILY},
                        {"name": "ce_only", "strategy": "confidence", "losses": [{"loss": "ce"}]}]}
    config = ablation_config_from_dict(raw)
    rows = run_ablation(config, tmp_path / "out", log=lambda line: None)
    assert [row["strategy"] for row in rows] == ["none", "kd_family", "ce_only"]
    kd = rows[1]
    assert kd["fusion"] == "uniform" and [term["loss"] for term in kd["losses"]] == ["ce", "kd"]
    assert rows[2]["fusion"] == "confidence"
    assert (tmp_path / "out" / "metrics" / "kd_family.jsonl").is_file()

    splits = load_dataset("mnist1d", data_dir=data_dir)
    pool = load_pool(tiny_pool_dir, splits)
    logits = pool.logits(splits)
    direct = fit_composite(config.student, splits.input_shape, splits.num_classes,
                           SplitArrays(jnp.asarray(splits.x_train), jnp.asarray(splits.y_train), logits["train"]),
                           SplitArrays(jnp.asarray(splits.x_val), jnp.asarray(splits.y_val)),
                           make_strategy("uniform", pool.strategy_context()), KD_FAMILY, config.train, [0, 1],
                           test=SplitArrays(jnp.asarray(splits.x_test), jnp.asarray(splits.y_test)),
                           teacher_names=pool.names)
    assert kd["test_accuracy"] == direct.test_accuracy and kd["best_epoch"] == direct.best_epoch
    # --strategies keeps some rows only; a name the config does not list is refused.
    assert [f.name for f in config.only(["ce_only"]).families] == ["ce_only"]
    with pytest.raises(ConfigError, match="lists no strategy or family nope"):
        config.only(["nope"])


@pytest.mark.parametrize("families,message", [
    ([{"name": "none", "losses": [{"loss": "ce"}]}], "listed twice: none"),
    ([{"name": "a", "loss": [{"loss": "ce"}]}], r"needs `name` and `losses`"),
    ([{"name": "a", "losses": [{"loss": "kdd"}]}], "family 'a'"),
    ({"name": "a"}, r"list of tables"),
])
def test_bad_families_are_refused_when_read(families, message):
    from mtkd.errors import MtkdError

    with pytest.raises(MtkdError, match=message):
        ablation_config_from_dict({"strategies": ["none"], "families": families})


def test_a_family_under_a_learning_strategy_is_refused_before_training(data_dir, tiny_pool_dir, tmp_path):
    raw = {"dataset": "mnist1d", "data_dir": data_dir, "pool_dir": str(tiny_pool_dir), "seeds": 1,
           "strategies": [], "train": {"epochs": 1},
           "families": [{"name": "learned", "strategy": "mtkd_rl", "losses": KD_FAMILY}]}
    with pytest.raises(ConfigError, match="family 'learned'"):
        run_ablation(ablation_config_from_dict(raw), tmp_path / "out", log=lambda line: None)
    assert not (tmp_path / "out").exists()


def test_a_failed_row_makes_the_command_exit_non_zero_naming_it(data_dir, tiny_pool_dir, tmp_path, capsys,
                                                               exploding_runner):
    """Every row runs and is written; the exit code is 1 and the last line names the failed row."""
    path = tmp_path / "ablation.toml"
    path.write_text("\n".join([
        'dataset = "mnist1d"', f'data_dir = "{data_dir}"', f'pool_dir = "{tiny_pool_dir}"', "seeds = 2",
        'strategies = ["explode", "uniform"]', "[student]", 'arch = "mlp"', "options = { widths = [16] }",
        "[train]", "epochs = 2", "batch_size = 256"]) + "\n")
    assert main(["ablate", "--config", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mtkd: 1 of 2 row(s) failed: explode")
    rows = json.loads((tmp_path / "run" / "results.json").read_text())["rows"]
    assert [("error" in row, row["strategy"]) for row in rows] == [(True, "explode"), (False, "uniform")]


@pytest.mark.parametrize("strategies", [["uniform", "uniform"], ["single:*", "single:cnn"]])
def test_a_strategy_listed_twice_is_refused_before_any_work(data_dir, tiny_pool_dir, tmp_path, capsys, strategies):
    path = tmp_path / "ablation.toml"
    path.write_text("\n".join([
        'dataset = "mnist1d"', f'data_dir = "{data_dir}"', f'pool_dir = "{tiny_pool_dir}"', "seeds = 2",
        f"strategies = {json.dumps(strategies)}"]) + "\n")
    assert main(["ablate", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "listed twice" in capsys.readouterr().err and not (tmp_path / "run").exists()
    assert main(["distill", "--teachers", str(tiny_pool_dir), "--data-dir", data_dir, "--strategy", "uniform",
                 "--strategy", "uniform", "--out", str(tmp_path / "distill")]) == 2
    assert "'uniform' is listed twice" in capsys.readouterr().err and not (tmp_path / "distill").exists()


def test_tables_give_the_sample_std_and_no_spread_for_one_seed():
    from mtkd.distill.results import mean_std

    values = [0.60, 0.62, 0.67]
    assert mean_std(values).strip() == f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}"
    assert mean_std([0.6]).strip() == "60.00 (n = 1)"


def test_ablate_epochs_and_seeds_override_the_recipe(data_dir, tiny_pool_dir, tmp_path):
    path = tmp_path / "ablation.toml"
    path.write_text("\n".join([
        'dataset = "mnist1d"', f'data_dir = "{data_dir}"', f'pool_dir = "{tiny_pool_dir}"', "seeds = 3",
        'strategies = ["none", "uniform"]', "[student]", 'arch = "mlp"', "options = { widths = [8] }",
        "[train]", "epochs = 40", "batch_size = 256"]) + "\n")
    assert main(["ablate", "--config", str(path), "--epochs", "2", "--seeds", "1", "--strategies", "uniform",
                 "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["train"]["epochs"] == 2 and [r["strategy"] for r in results["rows"]] == ["uniform"]
    assert len((tmp_path / "run" / "metrics" / "uniform.jsonl").read_text().splitlines()) == 2
    assert results["rows"][0]["seeds"] == [0]
