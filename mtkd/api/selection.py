"""The selector's training procedures behind `select` (`mtkd select train --procedure`), one
registry entry each. A procedure gives the run's kind and its own part of the signature, checks
itself against the pool before `out` is claimed, then trains: its `rl` row first, then the rows
of the strategies it is compared with.

- `population` (default, `mtkd.agents.population`): credit from whole runs of a vmapped
  population of students, each with its own teacher mask.
- `joint` (`mtkd.agents.joint`): each student beside its own selector, half-epoch credit.
- `episodic` (`mtkd.agents.procedure`): REINFORCE on short episodes, then a final student.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping

from mtkd.errors import ConfigError
from mtkd.registry import Registry


@dataclasses.dataclass
class SelectionRun:
    """What every procedure reads: the data and pool, the students' setup, `out` and its
    checkpoints, and the strategies compared."""

    splits: Any
    pool: Any
    student: Any
    config: Any
    seeds: list[int]
    out: Path
    checkpoints: Any
    compared: list
    dataset: str
    teachers: str | None
    log: Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Procedure:
    kind: str  # the run's kind in its signature
    signature: Callable[[], dict]  # the procedure's own options, as --resume compares them
    check: Callable[[Any], None]  # against the pool, before out is claimed
    train: Callable[[SelectionRun], tuple[list[dict], dict]]  # (rows, results.json's `selector`)


PROCEDURES: Registry[Callable[..., Procedure]] = Registry("selector procedure")


def _config(cls, selector, where: str):
    if selector is None:
        return cls()
    if isinstance(selector, cls):
        return selector
    if isinstance(selector, Mapping):
        return cls.from_dict(dict(selector), where)
    raise ConfigError(f"{where}: selector is a {cls.__name__} or a mapping of its options, got "
                      f"{type(selector).__name__}")


@PROCEDURES.register("population")
def population(selector, config, student, options: Mapping[str, Any]) -> Procedure:
    from mtkd.agents.population_config import PopulationConfig

    _no_options(options, "population")
    selector = _config(PopulationConfig, selector, "mtkd select train")

    def train(run: SelectionRun):
        from mtkd.agents.population import run_population_selector

        rows = [run_population_selector(run.splits, run.pool, run.out, "rl", selector, run.student, run.config,
                                        run.seeds, run.out / "metrics", run.log, checkpoints=run.checkpoints)]
        return rows, {"policy": str(run.out / "policy"), "procedure": "population", **selector.to_dict()}

    return Procedure("select-population", lambda: {"selector": selector.to_dict()},
                     lambda pool: selector.check_pool(len(pool.names)), train)


@PROCEDURES.register("joint")
def joint(selector, config, student, options: Mapping[str, Any]) -> Procedure:
    from mtkd.agents.selector_config import SelectorConfig

    _no_options(options, "joint")
    selector = _config(SelectorConfig, selector, "mtkd select train")

    def train(run: SelectionRun):
        from mtkd.agents.procedure import run_joint_selector

        run.log(f"training {len(run.seeds)} students beside their selectors ({run.config.epochs} epochs)")
        (run.out / "metrics").mkdir(parents=True, exist_ok=True)
        rows = [run_joint_selector(run.splits, run.pool, run.out, "rl", selector, run.student, run.config, run.seeds,
                                   run.out / "metrics" / "rl.jsonl", run.log, checkpoints=run.checkpoints.loop("rl"))]
        return rows, {"policy": str(run.out / "policy"), **selector.to_dict()}

    return Procedure("select-joint", lambda: {"selector": selector.to_dict()}, lambda pool: None, train)


@dataclasses.dataclass(frozen=True)
class EpisodicOptions:
    """The episodic procedure's own settings (`--episode-epochs`, `--warmup-epochs`,
    `--agent-seed`, `--greedy`, and EnvConfig's fields as `env`)."""

    episode_epochs: int = 2
    warmup_epochs: int = 0
    agent_seed: int | None = None
    greedy: bool = False
    env: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@PROCEDURES.register("episodic")
def episodic(selector, config, student, options: Mapping[str, Any]) -> Procedure:
    from mtkd.agents.config import AgentConfig
    from mtkd.config_flags import config_from_values
    from mtkd.envs.config import EnvConfig

    unknown = sorted(set(options) - {field.name for field in dataclasses.fields(EpisodicOptions)})
    if unknown:
        raise ConfigError(f"the episodic procedure has no option(s) {', '.join(unknown)}")
    own = EpisodicOptions(**options)
    if own.warmup_epochs < 0:
        raise ConfigError(f"--warmup-epochs must be >= 0, got {own.warmup_epochs}")
    env_config = config_from_values(EnvConfig, {"student": student, "train": config.replace(epochs=own.episode_epochs),
                                                **own.env}, "mtkd select train")
    agent_config = _config(AgentConfig, selector, "mtkd select train")
    agent_seed = 0 if own.agent_seed is None else own.agent_seed

    def train(run: SelectionRun):
        from mtkd.agents.procedure import train_and_save_policy
        from mtkd.distill.experiment import build_strategies, run_strategies

        policy_dir, records = train_and_save_policy(
            run.splits, run.pool, run.out, env_config, agent_config, agent_seed=agent_seed,
            warmup_epochs=own.warmup_epochs, warmup_config=run.config,
            extra={"dataset": run.dataset, "teachers": run.teachers}, log=run.log, checkpoints=run.checkpoints)
        strategies = build_strategies(["rl"], run.pool, {"policy": str(policy_dir), "greedy": own.greedy})
        run.log(f"distilling the final student ({len(run.seeds)} seeds, {run.config.epochs} epochs)")
        rows, _ = run_strategies(run.splits, run.pool, strategies, run.student, run.config, run.seeds,
                                 metrics_dir=run.out / "metrics", log=run.log, checkpoints=run.checkpoints)
        return rows, {"policy": str(policy_dir), "greedy": own.greedy, "final_selection": records[-1]["selection"]}

    signature = {"env": env_config.to_dict(), "agent": agent_config.to_dict(), "agent_seed": agent_seed,
                 "warmup_epochs": own.warmup_epochs, "greedy": own.greedy}
    return Procedure("select", lambda: signature, lambda pool: None, train)


def _no_options(options: Mapping[str, Any], procedure: str) -> None:
    if options:
        raise ConfigError(f"the {procedure} procedure has no option(s) {', '.join(sorted(options))} "
                          f"(they are the episodic procedure's)")


__all__ = ["EpisodicOptions", "PROCEDURES", "Procedure", "SelectionRun"]
