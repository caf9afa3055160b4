"""Statistics fit for a paper (checked against SciPy's own tests and intervals), `mtkd compare`,
the Table 1 question answered on validation only, and the validation leak check."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from mtkd.ablation.report import best_teacher_question, markdown_table
from mtkd.cli.main import main
from mtkd.distill.results import write_results
from mtkd.statistics import paired_difference, row_statistics, summary, unpaired_difference
from mtkd.teachers.leak import leak_gap, leak_message

A = [0.61, 0.64, 0.60, 0.66, 0.63]
B = [0.63, 0.65, 0.63, 0.69, 0.64]


def test_summary_is_the_sample_std_its_standard_error_and_a_t_interval():
    result = summary(A)
    assert result["n"] == 5 and result["mean"] == pytest.approx(np.mean(A))
    assert result["std"] == pytest.approx(np.std(A, ddof=1))
    assert result["se"] == pytest.approx(stats.sem(A))
    low, high = stats.t.interval(0.95, 4, loc=np.mean(A), scale=stats.sem(A))
    assert result["ci95"] == pytest.approx([low, high])
    assert (high - low) / 2 / result["se"] == pytest.approx(2.7764451, rel=1e-6)  # t(0.975, 4) from tables
    assert summary([0.5]) == {"n": 1, "mean": 0.5, "std": None, "se": None, "ci95": None}


def test_paired_and_unpaired_differences_match_scipys_tests():
    paired = paired_difference(B, [0, 1, 2, 3, 4], A, [0, 1, 2, 3, 4])
    test = stats.ttest_rel(B, A)
    assert paired["mean"] / paired["se"] == pytest.approx(test.statistic)
    assert paired["ci95"] == pytest.approx(list(test.confidence_interval(0.95)))
    assert paired["beyond_noise"] == (test.pvalue < 0.05) and paired["seeds"] == [0, 1, 2, 3, 4]
    # Only the seeds both rows have are paired, whatever their order.
    partial = paired_difference(B[:3], [2, 0, 1], A, [0, 1, 2, 3, 4])
    assert partial["n"] == 3 and partial["mean"] == pytest.approx(np.mean([B[0] - A[2], B[1] - A[0], B[2] - A[1]]))
    assert paired_difference(B, [5, 6, 7, 8, 9], A, [0, 1, 2, 3, 4]) is None
    welch = unpaired_difference(B, A)
    test = stats.ttest_ind(B, A, equal_var=False)
    assert welch["mean"] / welch["se"] == pytest.approx(test.statistic)
    assert welch["ci95"] == pytest.approx(list(test.confidence_interval(0.95)))


def rows_of(**columns):
    return [{"strategy": name, "seeds": list(range(len(values))), "val_accuracy": list(values),
             "test_accuracy": list(values)} for name, values in columns.items()]


def test_results_json_and_md_carry_statistics_and_paired_differences(tmp_path):
    rows = rows_of(none=A, uniform=B) + [{"strategy": "broken", "seeds": [0], "error": "ValueError: x"}]
    write_results(tmp_path / "results.json", "mnist1d", rows, teachers=[])
    written = json.loads((tmp_path / "results.json").read_text())
    none, uniform, broken = written["rows"]
    assert written["reference"] == "uniform" and "paired" not in uniform and "statistics" not in broken
    assert none["statistics"]["test_accuracy"] == summary(A)
    assert none["paired"]["test_accuracy"]["mean"] == pytest.approx(np.mean(np.subtract(A, B)))
    assert {"mtkd", "versions", "machine", "hostname", "finished"} <= set(written["provenance"])
    table = markdown_table(rows, [])
    line = next(entry for entry in table.splitlines() if entry.startswith("| none |"))
    differences = 100 * np.subtract(A, B)
    assert f"{differences.mean():+.2f} ± {stats.sem(differences):.2f}" in line
    assert f"{100 * stats.sem(A):.2f}" in line and "| uniform |" in table and "reference" in table
    # Without the reference row there is nothing to pair with.
    assert all("paired" not in row for row in row_statistics(rows_of(none=A, weighted=B)))


def test_mtkd_compare_pairs_matching_seeds(tmp_path, capsys):
    for run, values in (("a", A), ("b", B)):
        (tmp_path / run).mkdir()
        write_results(tmp_path / run / "results.json", "mnist1d", rows_of(uniform=values, none=values[:1]))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    entries = json.loads((tmp_path / "c.json").read_text())["parts"]["run"]
    uniform = next(e for e in entries if e["strategy"] == "uniform")
    test = stats.ttest_rel(B, A)
    assert uniform["difference"]["kind"] == "paired"
    assert uniform["difference"]["ci95"] == pytest.approx(list(test.confidence_interval(0.95)))
    assert f"{100 * np.mean(np.subtract(B, A)):+.2f} ± {100 * stats.sem(np.subtract(B, A)):.2f}" in out
    assert "no spread: one seed" in out  # `none` ran one seed in each
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "missing")]) == 2
    assert "holds no results.json" in capsys.readouterr().err


def singles(val: dict, test: dict) -> list[dict]:
    return [{"strategy": f"single:{name}", "seeds": list(range(len(val[name]))), "val_accuracy": val[name],
             "test_accuracy": test[name]} for name in val]


TEACHERS = [{"name": "big", "val_accuracy": 0.95, "test_accuracy": 0.90},
            {"name": "small", "val_accuracy": 0.80, "test_accuracy": 0.99}]


def test_table_1_chooses_on_validation_and_speaks_only_above_the_noise():
    # On validation `small` teaches better, beyond the noise; on test `big` would look better (and
    # `small` is the better teacher on test): the answer must come from validation alone.
    val = {"big": [0.60, 0.61, 0.59, 0.60], "small": [0.65, 0.67, 0.66, 0.66]}
    test = {"big": [0.70, 0.71, 0.72, 0.70], "small": [0.50, 0.51, 0.50, 0.52]}
    answer = best_teacher_question(singles(val, test), TEACHERS)
    assert "**no**, beyond the noise" in answer and "most accurate teacher on validation is `big`" in answer
    assert "best teacher to learn from is `small`" in answer
    noisy = {"big": [0.60, 0.66, 0.58, 0.64], "small": [0.62, 0.61, 0.63, 0.62]}
    answer = best_teacher_question(singles(noisy, test), TEACHERS)
    assert "Not answered, within the noise" in answer and "**" not in answer
    one_seed = {"big": [0.60], "small": [0.66]}
    assert "Not answered" in best_teacher_question(singles(one_seed, one_seed), TEACHERS)


def test_the_leak_gap_is_a_two_proportion_z_score():
    result = leak_gap(0.945, 0.549, 400, 1000)  # the scikit-learn teacher
    pooled = (0.945 * 400 + 0.549 * 1000) / 1400
    assert result["se"] == pytest.approx(math.sqrt(pooled * (1 - pooled) * (1 / 400 + 1 / 1000)))
    assert result["flagged"] and result["sigmas"] == pytest.approx(0.396 / result["se"])
    assert not leak_gap(0.95, 0.945, 400, 1000)["flagged"]  # the default pool's cnn
    assert not leak_gap(0.60, 0.70, 400, 1000)["flagged"]  # better on test is no leak
    assert leak_message([{"name": "x", "val_accuracy": 0.6, "test_accuracy": 0.6, "leak": leak_gap(.6, .6, 400, 1000)}]) is None


def test_a_teacher_fitted_on_all_of_train_is_flagged_and_an_honest_pool_is_not(data_dir, tiny_pool_dir, mnist1d,
                                                                                tmp_path, capsys):
    from mtkd.data.loading import load_full_splits

    full = load_full_splits("mnist1d", data_dir=data_dir)
    x_train, x_test = full.x_train.reshape(len(full.x_train), -1), full.x_test.reshape(len(full.x_test), -1)

    def nearest_neighbour(queries):  # 1-NN over the whole train split: it has memorised every row
        distances = (queries ** 2).sum(1)[:, None] - 2 * queries @ x_train.T + (x_train ** 2).sum(1)[None]
        return 5.0 * np.eye(10, dtype=np.float32)[full.y_train[distances.argmin(1)]]

    np.savez(tmp_path / "memoriser.npz", train=nearest_neighbour(x_train), test=nearest_neighbour(x_test))
    spec = tmp_path / "leaky.toml"
    spec.write_text('[[teachers]]\nname = "memoriser"\nexternal = "memoriser.npz"\n'
                    '[[teachers]]\nname = "mlp"\narch = "mlp"\noptions = { widths = [16] }\nepochs = 2\n')
    assert main(["teachers", "train", "--data-dir", data_dir, "--pool", str(spec), "--out", str(tmp_path / "pool")]) == 0
    capsys.readouterr()
    common = ["distill", "--data-dir", data_dir, "--seeds", "2", "--epochs", "1", "--student-options",
              '{"widths": [8]}', "--strategy", "uniform"]
    assert main(common + ["--teachers", str(tmp_path / "pool"), "--out", str(tmp_path / "leaky")]) == 0
    log = capsys.readouterr()
    assert "warning: Validation leak suspected: `memoriser`" in log.err and "`mlp`" not in log.err.split("Biased")[0]
    results = json.loads((tmp_path / "leaky" / "results.json").read_text())
    assert results["validation_leak"]["flagged"] == ["memoriser"]
    assert any("best_subset" in choice for choice in results["validation_leak"]["biased"])
    assert [t["leak"]["flagged"] for t in results["teachers"]] == [True, False]
    assert main(common + ["--teachers", str(tiny_pool_dir), "--out", str(tmp_path / "honest")]) == 0
    assert "leak" not in capsys.readouterr().err
    assert "validation_leak" not in json.loads((tmp_path / "honest" / "results.json").read_text())


def test_val_indices_give_a_validation_split_the_teachers_never_saw(data_dir, tmp_path, capsys):
    """The clean alternative to the carve: the user names the rows their teachers left out. A
    1-NN teacher fitted on every other row is then honest on validation (no leak flagged), and a
    pool trained for those rows refuses a run on another validation split."""
    from mtkd.data import load_dataset
    from mtkd.data.loading import load_full_splits

    full = load_full_splits("mnist1d", data_dir=data_dir)
    held_out = np.random.default_rng(5).choice(len(full.y_train), 400, replace=False)
    (tmp_path / "val.txt").write_text(", ".join(map(str, held_out)) + "\n")
    np.save(tmp_path / "val.npy", held_out)
    splits = load_dataset("mnist1d", data_dir=data_dir, val_indices=str(tmp_path / "val.txt"))
    np.testing.assert_array_equal(splits.val_index, np.sort(held_out))
    np.testing.assert_array_equal(splits.x_val, full.x_train[np.sort(held_out)])
    assert splits.num_train == len(full.y_train) - 400 and not set(splits.train_index) & set(held_out)
    np.testing.assert_array_equal(load_dataset("mnist1d", data_dir=data_dir, val_indices=str(tmp_path / "val.npy"))
                                  .val_index, splits.val_index)

    x_all = full.x_train.reshape(len(full.x_train), -1)
    fitted = np.setdiff1d(np.arange(len(full.y_train)), held_out)

    def nearest_neighbour(queries):  # fitted on every row but the held-out ones
        x_fit = x_all[fitted]
        distances = (queries ** 2).sum(1)[:, None] - 2 * queries @ x_fit.T + (x_fit ** 2).sum(1)[None]
        return 5.0 * np.eye(10, dtype=np.float32)[full.y_train[fitted][distances.argmin(1)]]

    np.savez(tmp_path / "knn.npz", train=nearest_neighbour(x_all),
             test=nearest_neighbour(full.x_test.reshape(len(full.x_test), -1)))
    spec = tmp_path / "pool.toml"
    spec.write_text('[[teachers]]\nname = "knn"\nexternal = "knn.npz"\n')
    val = ["--val-indices", str(tmp_path / "val.txt")]
    assert main(["teachers", "train", "--data-dir", data_dir, "--pool", str(spec), "--out", str(tmp_path / "pool"),
                 *val]) == 0
    common = ["distill", "--data-dir", data_dir, "--teachers", str(tmp_path / "pool"), "--seeds", "1", "--epochs", "1",
              "--student-options", '{"widths": [8]}', "--strategy", "uniform"]
    capsys.readouterr()
    assert main(common + val + ["--out", str(tmp_path / "run")]) == 0
    assert "leak" not in capsys.readouterr().err
    assert "validation_leak" not in json.loads((tmp_path / "run" / "results.json").read_text())
    assert main(common + ["--out", str(tmp_path / "carved")]) == 2
    assert "was trained with another validation split" in capsys.readouterr().err
    assert not (tmp_path / "carved").exists()


@pytest.mark.parametrize("content, words", [
    ("1 2 2", "lists 1 index(es) twice"),
    ("1 2 999999", "must lie in 0..3999"),
    ("1.5 2", "not a list of whole numbers"),
    ("", "non-empty"),
])
def test_bad_val_indices_are_one_line(data_dir, tmp_path, capsys, content, words):
    (tmp_path / "val.txt").write_text(content)
    assert main(["data", "info", "mnist1d", "--data-dir", data_dir, "--val-indices", str(tmp_path / "val.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err


def test_runs_record_their_provenance_and_metrics_lines_their_time(data_dir, tiny_pool_dir, tmp_path):
    import time

    from mtkd import __version__

    before = time.time()
    assert main(["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--seeds", "1", "--epochs", "2",
                 "--student-options", '{"widths": [8]}', "--out", str(tmp_path / "run")]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())["provenance"]
    results = json.loads((tmp_path / "run" / "results.json").read_text())["provenance"]
    assert run["mtkd"] == results["mtkd"] == __version__ and results["started"] == run["started"]
    assert {"jax", "jaxlib", "flax", "optax", "orbax-checkpoint"} <= set(results["versions"])
    assert results["machine"]["backend"] == "cpu" and results["hostname"] and results["finished"] >= run["started"]
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics" / "uniform.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert before <= lines[0]["wall_time"] <= lines[1]["wall_time"] <= time.time()


def test_a_student_that_cannot_be_built_is_refused_before_out_is_claimed(data_dir, tiny_pool_dir, tmp_path, capsys):
    assert main(["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--student-options",
                 '{"widths": [0]}', "--out", str(tmp_path / "run")]) == 2
    assert "widths must be positive" in capsys.readouterr().err and not (tmp_path / "run").exists()
