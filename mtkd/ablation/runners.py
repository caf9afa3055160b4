"""How each strategy name of an ablation is run: one registry, no branching on names.

A runner takes the shared `AblationRun` and the strategy's full name and returns its
`results.json` rows. Names without a runner of their own (uniform, single:NAME, weighted, ...)
are fusion strategies, distilled with `mtkd.distill.experiment.run_strategies`.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Callable

from mtkd.ablation.config import AblationConfig
from mtkd.ablation.sections import ByotSection, DmlSection
from mtkd.data import DatasetSplits
from mtkd.distill.experiment import build_strategies, run_strategies
from mtkd.fusion.strategies import require_stateless
from mtkd.distributed import is_writer
from mtkd.typed_fields import check_value
from mtkd.errors import ConfigError
from mtkd.registry import Registry
from mtkd.run_checkpoints import EpochCheckpoints, RunCheckpoints
from mtkd.teachers import TeacherPool


@dataclasses.dataclass
class AblationRun:
    config: AblationConfig
    splits: DatasetSplits
    pool: TeacherPool
    out: Path
    log: Callable[[str], None]
    checkpoints: RunCheckpoints | None = None  # where each loop checkpoints (resumes) under its name

    def loop(self, name: str) -> EpochCheckpoints | None:
        return self.checkpoints.loop(name) if self.checkpoints is not None else None

    def part(self, name: str) -> RunCheckpoints | None:
        return self.checkpoints.part(name) if self.checkpoints is not None else None

    @property
    def seeds(self) -> list[int]:
        return list(range(self.config.seeds))

    @property
    def metrics_dir(self) -> Path:
        return self.out / "metrics"


Runner = Callable[[AblationRun, str], list]
RUNNERS: Registry[Runner] = Registry("ablation runner")
# Checks a runner's options (config, strategy name, pool), before any strategy trains.
# A check reads one strategy's section; given no pool (None) it checks what needs none, which
# `prepare_ablation` does before it loads any data.
CHECKS: Registry[Callable[[AblationConfig, str, TeacherPool | None], None]] = Registry("ablation check")


def runner_for(name: str, config: AblationConfig | None = None) -> Runner:
    if config is not None and config.family(name) is not None:
        return run_family
    family = name.partition(":")[0]
    return RUNNERS.get(family) if family in RUNNERS else run_fusion


def expand_strategies(names, teacher_names) -> list[str]:
    """`single:*` stands for one `single:NAME` per teacher of the pool."""
    expanded = []
    for name in names:
        expanded.extend(f"single:{t}" for t in teacher_names) if name == "single:*" else expanded.append(name)
    return expanded


def run_fusion(run: AblationRun, name: str, options: dict | None = None) -> list:
    strategies = build_strategies([name], run.pool, options)
    rows, _ = run_strategies(run.splits, run.pool, strategies, run.config.student, run.config.train, run.seeds,
                             metrics_dir=run.metrics_dir, log=run.log, losses=run.config.losses,
                             checkpoints=run.checkpoints, devices=run.config.devices)
    return rows


def family_strategy(config: AblationConfig, name: str, pool: TeacherPool):
    """The fusion strategy of the `[[families]]` row `name`, named after the row (its metrics file
    and checkpoints go by that name); `rl` takes `[rl] policy` and `greedy` as in `mtkd distill`."""
    family = config.family(name)
    options = None
    if family.strategy.partition(":")[0] == "rl":
        policy, greedy, _, _ = _rl_section(config)
        options = {"policy": None if policy is None else str(policy), "greedy": greedy}
    strategy = build_strategies([family.strategy], pool, options)[0]
    require_stateless(strategy, f"family {name!r} (a composite loss)")
    return dataclasses.replace(strategy, name=name)


def run_family(run: AblationRun, name: str) -> list:
    """A `[[families]]` row: its fusion strategy, with its own composite loss."""
    family = run.config.family(name)
    rows, _ = run_strategies(run.splits, run.pool, [family_strategy(run.config, name, run.pool)], run.config.student,
                             run.config.train, run.seeds, metrics_dir=run.metrics_dir, log=run.log,
                             losses=family.loss, checkpoints=run.checkpoints, devices=run.config.devices)
    return [{**row, "fusion": family.strategy, "losses": family.loss.to_dicts()} for row in rows]


@RUNNERS.register("rl")
def run_rl(run: AblationRun, name: str) -> list:
    """The learned selector. `[rl] policy = DIR` applies a saved policy (`rl:MODE` as in `mtkd
    distill`). Otherwise, by `[rl] procedure`: `population` (the default, `mtkd.agents.population`)
    learns each teacher's effect on the final student from a vmapped population of whole runs,
    then distils the run's seeds with the policy it gives (`rl` and `rl:per_example` with the same
    options share one search); `joint` trains each seed's student beside its own selector from
    half-epoch counterfactual credit (`mtkd.agents.joint`); `episodic` trains a policy on short
    episodes first. `rl:per_example` selects per example."""
    procedure = importlib.import_module("mtkd.agents.procedure")
    policy, greedy, kind, section = _rl_section(run.config)
    if policy is None and kind == "episodic":
        policy = procedure.train_policy_for_ablation(run.splits, run.pool, run.out / "selector", section,
                                                     student=run.config.student, train=run.config.train,
                                                     log=run.log, checkpoints=run.part(f"{name}_policy"))
    elif policy is None and kind == "population":
        population = importlib.import_module("mtkd.agents.population")
        config = procedure.population_config(section, name)
        return [population.run_population_selector(
            run.splits, run.pool, run.out / "selector" / name.replace(":", "_"), name, config, run.config.student,
            run.config.train, run.seeds, run.metrics_dir, run.log, checkpoints=run.checkpoints,
            devices=run.config.devices, search_folder=run.out / "selector")]
    elif policy is None:
        config = procedure.joint_config(section, name)
        if is_writer():
            run.metrics_dir.mkdir(parents=True, exist_ok=True)
        metrics = run.metrics_dir / f"{name.replace(':', '_')}.jsonl"
        return [procedure.run_joint_selector(run.splits, run.pool, run.out / "selector" / name.replace(":", "_"),
                                             name, config, run.config.student, run.config.train, run.seeds,
                                             metrics, run.log, checkpoints=run.loop(name),
                                             devices=run.config.devices)]
    elif section:
        raise ConfigError(f"[rl] options {', '.join(sorted(section))} only apply when no policy is given")
    return run_fusion(run, name, {"policy": str(policy), "greedy": greedy})


PROCEDURES = ("population", "joint", "episodic")


def _rl_section(config: AblationConfig):
    """[rl] as (saved policy or None, greedy, procedure, the remaining options)."""
    section = config.section("rl")
    policy, greedy, procedure = section.pop("policy", None), section.pop("greedy", False), \
        section.pop("procedure", "population")
    check_value(policy, str | None, "[rl] policy")
    check_value(greedy, bool, "[rl] greedy")
    check_value(procedure, str, "[rl] procedure")
    return policy, greedy, procedure, section


@CHECKS.register("rl")
def check_rl(config: AblationConfig, name: str, pool: TeacherPool) -> None:
    policy, greedy, kind, section = _rl_section(config)
    procedure = importlib.import_module("mtkd.agents.procedure")
    if kind not in PROCEDURES:
        raise ConfigError(f"[rl] procedure must be one of {', '.join(PROCEDURES)}, got {kind!r}")
    if policy is not None:
        if section:
            raise ConfigError(f"[rl] options {', '.join(sorted(section))} only apply when no policy is given")
        if pool is not None:
            build_strategies([name], pool, {"policy": policy, "greedy": greedy})  # a policy of other teachers
    elif kind == "population":
        population = procedure.population_config(section, name)
        if pool is not None:
            population.check_pool(len(pool.names))
    elif kind == "joint":
        procedure.joint_config(section, name)
    else:
        procedure.episodic_configs(section, config.student, config.train)


def _dml_rows(run: AblationRun, name: str, with_teachers: bool) -> list:
    dml = importlib.import_module("mtkd.dml")
    section = DmlSection.from_dict(run.config.section("dml"))
    result = dml.run_dml(run.splits, section.peer_specs(run.config.student), run.config.train, run.seeds,
                         pool=run.pool, with_teachers=with_teachers, update=section.update,
                         temperature=section.temperature, metrics_path=run.metrics_dir / f"{name}.jsonl",
                         log=run.log, checkpoints=run.loop(name), devices=run.config.devices)
    return result.rows()


RUNNERS.add("dml", lambda run, name: _dml_rows(run, name, with_teachers=False))
RUNNERS.add("dml+teachers", lambda run, name: _dml_rows(run, name, with_teachers=True))


@RUNNERS.register("independent")
def run_independent(run: AblationRun, name: str) -> list:
    """The DML peers trained alone: the baseline mutual learning must beat."""
    dml = importlib.import_module("mtkd.dml")
    section = DmlSection.from_dict(run.config.section("dml"))
    return dml.run_independent_peers(run.splits, section.peer_specs(run.config.student), run.config.train,
                                     run.seeds, metrics_path=run.metrics_dir / f"{name}.jsonl", log=run.log,
                                     checkpoints=run.loop(name)).rows()


@RUNNERS.register("byot")
def run_byot(run: AblationRun, name: str) -> list:
    byot = importlib.import_module("mtkd.distill.byot")
    section = ByotSection.from_dict(run.config.section("byot"))
    return byot.run_byot(run.splits, run.config.train, run.seeds, metrics_dir=run.metrics_dir, log=run.log,
                         checkpoints=run.loop(name), devices=run.config.devices, **section.run_options())


def _check_dml(config: AblationConfig, name: str, pool: TeacherPool) -> None:
    DmlSection.from_dict(config.section("dml"))


for _family in ("dml", "dml+teachers", "independent"):
    CHECKS.add(_family, _check_dml)
CHECKS.add("byot", lambda config, name, pool: ByotSection.from_dict(config.section("byot")) and None)
