"""Every config field refuses a wrong-typed value in one line naming the key, before any work.

A string where a number is expected, a float where an int is, a bool where a number is, a
string where a list is: each used to reach Python's coercions (`int("6")`, `tuple("64")`) or a
traceback deep inside a run. The tests walk every field of every config by its annotation.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing

import pytest

from mtkd.cli.main import main
from mtkd.errors import ConfigError
from mtkd.typed_fields import check_value, conforms, describe


def wrong_values(hint) -> list:
    """Values of the wrong type for an annotation: each must be refused."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in args if arg is not type(None)]
        return [v for v in wrong_values(inner[0]) if not any(conforms(v, arg) for arg in args)]
    if hint is int:
        return ["6", 6.5, True]
    if hint is float:
        return ["0.5", True, [1.0]]
    if hint is bool:
        return ["yes", 1, 0.0]
    if hint is str:
        return [3, True, ["a"]]
    if origin in (tuple, list, collections.abc.Sequence):
        return ["64", 64, [object()]]
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        return ["{}", [1]]
    return []


def _dict_configs():
    import mtkd.agents.config
    import mtkd.agents.population_config
    import mtkd.agents.selector_config
    import mtkd.checkpoint_config
    import mtkd.distill.byot
    import mtkd.distributed
    import mtkd.train_config

    return [mtkd.agents.config.AgentConfig, mtkd.agents.selector_config.SelectorConfig,
            mtkd.agents.population_config.PopulationConfig, mtkd.checkpoint_config.CheckpointConfig,
            mtkd.train_config.TrainConfig, mtkd.distill.byot.ByotConfig, mtkd.distributed.DistributedConfig]


def _cases():
    for cls in _dict_configs():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            for value in wrong_values(hints[field.name]):
                yield pytest.param(cls, field.name, value, id=f"{cls.__name__}.{field.name}={value!r}")


@pytest.mark.parametrize("cls, name, value", list(_cases()))
def test_every_config_field_refuses_a_wrong_type_naming_it(cls, name, value):
    with pytest.raises(ConfigError) as caught:
        cls(**{name: value})
    message = str(caught.value)
    assert name in message and "\n" not in message


def test_every_field_is_walked():
    """The walk above covers each field of each config (a new field of a new type would be
    skipped silently otherwise)."""
    for cls in _dict_configs():
        hints = typing.get_type_hints(cls)
        assert all(wrong_values(hints[field.name]) for field in dataclasses.fields(cls)), cls


def test_the_checker_reads_annotations_strictly():
    assert conforms(8, float) and not conforms(True, float) and not conforms("8", float)
    assert conforms([1, 2], tuple[int, ...]) and not conforms("12", tuple[int, ...])
    assert not conforms([1.0], typing.Sequence[int]) and conforms(None, int | None)
    assert conforms((1, "a"), tuple[int, str]) and not conforms((1, 2), tuple[int, str])
    assert describe(int | None) == "a whole number (or nothing)"
    with pytest.raises(ConfigError, match=r"^x = nan: expected a finite number$"):
        check_value(float("nan"), float, "x")


@pytest.mark.parametrize("options, expected", [
    ({"widths": "64"}, "widths = '64': expected a list of whole numbers"),
    ({"widths": 64}, "widths = 64: expected a list of whole numbers"),
    ({"widths": [64.0]}, "expected a list of whole numbers"),
])
def test_a_string_never_builds_a_network_character_by_character(options, expected):
    from mtkd.models import ModelSpec

    with pytest.raises(ConfigError, match=expected):
        ModelSpec("mlp", options)
    with pytest.raises(ConfigError, match="channels = '16'"):
        ModelSpec("cnn1d", {"channels": "16"})


# (a line of an ablation config's TOML, in which table, the words of the one-line error)
BAD_ABLATION_LINES = [
    ("seeds = \"two\"", None, "seeds = 'two'"),
    ("seeds = 1.0", None, "seeds = 1.0"),
    ("seeds = true", None, "seeds = True"),
    ("val_fraction = \"0.1\"", None, "val_fraction = '0.1'"),
    ("split_seed = 0.5", None, "split_seed = 0.5"),
    ("student_data_fraction = \"all\"", None, "student_data_fraction = 'all'"),
    ("devices = \"2\"", None, "devices"),
    ("dataset = 3", None, "dataset = 3"),
    ("pool = 3", None, "pool = 3"),
    ("strategies = \"none\"", None, "strategies = 'none'"),
    ("strategies = [1]", None, "strategies = [1]: expected a list of strings"),
    ("options = \"x\"", "student", "options must be a table, got 'x'"),
    ("epochs = 6.5", "train", "epochs = 6.5"),
    ("epochs = \"6\"", "train", "epochs = '6'"),
    ("temperature = \"hot\"", "train", "temperature = 'hot'"),
    ("alpha = true", "train", "alpha = True"),
    ("batch_size = [128]", "train", "batch_size = [128]"),
    ("options = { widths = \"64\" }", "student", "widths = '64'"),
    ("options = { widths = 64 }", "student", "widths = 64"),
    ("arch = 3", "student", "arch"),
    ("every_seconds = \"60\"", "checkpoint", "every_seconds = '60'"),
    ("every_epochs = 1.5", "checkpoint", "every_epochs = 1.5"),
    ("greedy = \"no\"", "rl", "greedy = 'no'"),
    ("population = \"16\"", "rl", "population = '16'"),
    ("generations = 2.5", "rl", "generations = 2.5"),
    ("exploration = \"0.25\"", "rl", "exploration = '0.25'"),
    ("update = 1", "dml", "update = 1"),
    ("temperature = \"1\"", "dml", "temperature"),
    ("channels = \"16\"", "byot", "channels = '16'"),
    ("kd_weight = \"0.3\"", "byot", "kd_weight = '0.3'"),
]


@pytest.mark.parametrize("line, table, words", BAD_ABLATION_LINES)
def test_a_wrong_type_in_an_ablation_config_is_one_line_and_exit_2(tmp_path, capsys, line, table, words):
    """Before `--out` is claimed: nothing is written, no traceback."""
    strategies = {"rl": '["rl"]', "dml": '["dml"]', "byot": '["byot"]'}.get(table, '["none"]')
    top = {"dataset": '"mnist1d"', "seeds": "1", "strategies": strategies}
    key = line.split("=")[0].strip()
    if table is None:
        top[key] = line.split("=", 1)[1].strip()
    lines = [f"{name} = {value}" for name, value in top.items()] + ([f"[{table}]", line] if table else [])
    path = tmp_path / "ablation.toml"
    path.write_text("\n".join(lines) + "\n")
    assert main(["ablate", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mtkd: error:") and words in err[0], err
    assert not (tmp_path / "out").exists()


BAD_TEACHER_LINES = [
    ('options = { channels = "16" }', "channels = '16'"),
    ('epochs = "2"', "epochs = '2'"),
    ("data_fraction = \"0.5\"", "data_fraction = '0.5'"),
    ("seed = 1.5", "seed = 1.5"),
    ("label_noise = true", "label_noise = True"),
    ('class_permutation = "0123456789"', "class_permutation = '0123456789'"),
    ("learning_rate = \"1e-3\"", "learning_rate = '1e-3'"),
    ("options = 3", "options must be a table, got 3"),
]


@pytest.mark.parametrize("line, words", BAD_TEACHER_LINES)
def test_a_wrong_type_in_a_pool_spec_is_one_line_and_exit_2(tmp_path, capsys, line, words):
    spec = tmp_path / "pool.toml"
    spec.write_text("\n".join(["[[teachers]]", 'name = "cnn"', 'arch = "cnn1d"', line]) + "\n")
    assert main(["teachers", "train", "--pool", str(spec), "--out", str(tmp_path / "pool")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "teacher 'cnn'" in err[0], err
    assert not (tmp_path / "pool").exists()


def test_a_negative_first_seed_is_refused_before_any_work(tmp_path, capsys):
    assert main(["distill", "--first-seed", "-1", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == "mtkd: error: --first-seed must be in 0..4294967293, got -1"
    assert not (tmp_path / "out").exists()


def test_a_data_directory_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["data", "info", "mnist1d", "--data-dir", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err.strip() == (f"mtkd: error: data directory {tmp_path / 'file'} is a file, not a "
                                               f"directory (--data-dir or MTKD_DATA_DIR)")
