"""Flags generated from config dataclasses: a flag, a config key and a field share one name."""

import argparse
import dataclasses
from typing import Any, Mapping

import pytest

from mtkd.agents.config import AgentConfig
from mtkd.agents.population_config import PopulationConfig
from mtkd.agents.procedure import episodic_configs
from mtkd.agents.selector_config import SelectorConfig
from mtkd.envs.config import EnvConfig
from mtkd.cli.main import build_parser, main
from mtkd.config_flags import add_config_flags, flag_fields, given_values, setting
from mtkd.errors import ConfigError
from mtkd.models import ModelSpec
from mtkd.train_config import TrainConfig


@dataclasses.dataclass(frozen=True)
class Example:
    count: int = setting(3, help="a count")
    limit: int | None = setting(None, help="a limit")
    flag: bool = setting(False, help="a switch")
    options: Mapping[str, Any] = setting(help="options", default_factory=dict)
    hidden: str = "no flag: no help text"


def parse(argv, configs=(("", Example),)):
    parser = argparse.ArgumentParser()
    add_config_flags(parser, list(configs))
    return parser.parse_args(argv)


def test_one_flag_per_field_with_help_and_typed_values():
    args = parse(["--count", "5", "--limit", "7", "--flag", "--options", '{"a": [1]}'])
    assert given_values(args, Example) == {"count": 5, "limit": 7, "flag": True, "options": {"a": [1]}}
    assert given_values(parse([]), Example) == {}  # nothing given: the config's own defaults apply
    assert given_values(parse(["--no-flag"]), Example) == {"flag": False}
    assert not hasattr(parse([]), "hidden")
    with pytest.raises(ConfigError, match="--options must be a JSON object"):
        given_values(parse(["--options", "[1]"]), Example)


def test_a_shared_field_is_one_flag_and_its_help_names_each_default():
    @dataclasses.dataclass(frozen=True)
    class Other:
        count: int = setting(4, help="a count")

    parser = argparse.ArgumentParser()
    add_config_flags(parser, [("first", Example), ("second", Other)])
    (action,) = [a for a in parser._actions if a.dest == "count"]
    assert action.option_strings == ["--count"] and "3 first, 4 second" in action.help


@pytest.mark.parametrize("command,configs", [
    (["select", "train"], [PopulationConfig, SelectorConfig, AgentConfig, EnvConfig, TrainConfig]),
    (["distill"], [TrainConfig]),
])
def test_cli_flags_are_the_config_fields(command, configs):
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command[0]]
    if len(command) > 1:
        sub = sub._subparsers._group_actions[0].choices[command[1]]
    flags = {action.dest: action.option_strings for action in sub._actions}
    for cls in configs:
        for field in flag_fields(cls):
            assert flags[field.name][0] == "--" + field.name.replace("_", "-"), (cls.__name__, field.name)


def test_every_selector_field_round_trips_through_its_flag():
    parser = build_parser()
    values = {"policy_arch": "logistic", "reward": "val_acc_gain", "apply": "greedy", "init": "all",
              "credit_every": 3, "credit_horizon": 0.25, "evidence_threshold": 1.0, "evidence_cap": 4.0,
              "policy_learning_rate": 0.2, "policy_optimizer": "adam", "per_example": True, "norm_decay": 0.5,
              "agent_seed": 7, "policy_options": {}}
    argv = ["select", "train", "--out", "x"]
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, "{}" if isinstance(value, dict) else str(value)]
    args = parser.parse_args(argv)
    assert SelectorConfig.from_dict(given_values(args, SelectorConfig)) == SelectorConfig(**values)


def test_a_flag_of_the_other_procedure_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["select", "train", "--out", str(out), "--procedure", "episodic", "--credit-every", "2"]) == 2
    assert "--credit-every applies to --procedure joint only" in capsys.readouterr().err
    assert main(["select", "train", "--out", str(out), "--episodes", "2"]) == 2
    assert "--episodes applies to --procedure episodic only" in capsys.readouterr().err
    assert not out.exists()


def test_episodic_rl_keys_are_the_config_fields():
    env, agent = episodic_configs({"policy_arch": "mlp", "policy_optimizer": "sgd", "policy_learning_rate": 0.2,
                                   "episodes": 4, "same_start": False, "reward": "val_acc_gain",
                                   "episode_epochs": 3, "agent_seed": 1}, ModelSpec("mlp"), TrainConfig())
    assert (agent.policy_arch, agent.policy_optimizer, agent.policy_learning_rate, agent.episodes,
            agent.same_start) == ("mlp", "sgd", 0.2, 4, False)
    assert env.reward == "val_acc_gain" and env.epochs == 3
    with pytest.raises(ConfigError, match="unknown option.*num_episodes"):
        episodic_configs({"num_episodes": 4}, ModelSpec("mlp"), TrainConfig())


def test_help_names_every_environment_setting_the_code_reads():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    read = set()
    for path in [*root.glob("mtkd/**/*.py"), *root.glob("envs/**/*.py"), *root.glob("agents/**/*.py")]:
        if path.name != "main.py":
            read |= set(re.findall(r'"(MTKD_[A-Z_]+)"', path.read_text()))
    assert {"MTKD_DATA_DIR", "MTKD_POOL_DIR", "MTKD_COMPILATION_CACHE", "MTKD_TEACHER_CACHE"} <= read
    text = build_parser().format_help()
    assert [name for name in sorted(read) if name not in text] == []
