"""The RL-KD procedure's steps outside the pure core: warm up a student, train the selector
with progress lines, and record what it chose (`selection.jsonl`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.agents.config import AgentConfig
from mtkd.agents.reinforce import make_trainer
from mtkd.envs.params import EnvParams
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit, unstack
from mtkd.distributed import is_writer
from mtkd.errors import TrainingDivergedError
from mtkd.fusion.strategies import StrategyContext, make_strategy
from mtkd.models import ModelSpec
from mtkd.progress import epoch_reporter, stderr_line


def warm_up_student(splits, student: ModelSpec, config: TrainConfig, seed: int, checkpoints=None):
    """A student trained alone (hard labels) for `config.epochs`, its best validation epoch:
    the start of every selector episode (the paper pre-trains the student first)."""
    result = fit(student, splits.input_shape, splits.num_classes, SplitArrays(splits.x_train, splits.y_train),
                 SplitArrays(splits.x_val, splits.y_val), make_strategy("none", StrategyContext((), ())),
                 config, [seed], checkpoints=checkpoints)
    return unstack(result.params, 0), result.val_accuracy[0]


def episode_records(metrics: dict, teacher_names: Sequence[str], first: int = 0) -> list[dict[str, Any]]:
    """One JSON-able record per episode (the first being episode `first + 1`): mean return,
    per-teacher selection frequency, students' validation accuracy at the episode's end."""
    metrics = jax.tree.map(np.asarray, metrics)
    records = []
    for e in range(metrics["loss"].shape[0]):
        records.append({
            "episode": first + e + 1,
            "return": float(metrics["return"][e].mean()),
            "returns": metrics["return"][e].astype(float).round(6).tolist(),
            "selection": {name: round(float(f), 6) for name, f in zip(teacher_names, metrics["selection"][e])},
            "val_accuracy": float(metrics["val_accuracy"][e].mean()),
            "policy_entropy": float(metrics["entropy"][e]),
        })
    return records


def train_selector(env_params: EnvParams, config: AgentConfig, seed: int, teacher_names: Sequence[str],
                   log: Callable[[str], None] = stderr_line, log_every: int | None = None, checkpoints=None):
    """(policy params, per-episode records). The episodes run as jitted chunks of `log_every`
    episodes (default: about ten chunks per run), a progress line after each; with `checkpoints`
    (an `EpochCheckpoints`), the policy, its optimizer and baseline state, the episode index and
    the records so far are saved between chunks when due, and a rerun resumes from there."""
    every = log_every or max(1, config.episodes // 10)
    trainer = make_trainer(config, env_params)
    run_chunk = jax.jit(trainer.episodes)
    started = time.perf_counter()
    carry, keys = jax.jit(trainer.start)(jax.random.key(seed))
    done, records = 0, []
    restored = checkpoints.restore({"carry": carry}) if checkpoints is not None else None
    if restored is not None:
        done, arrays, saved = restored
        carry, records = arrays["carry"], list(saved["records"])
        log(f"  resuming the selector after episode {done}/{config.episodes}")
    for first in range(done, config.episodes, every):
        last = min(first + every, config.episodes)
        carry, metrics = run_chunk(carry, keys[first:last], jnp.arange(first, last))
        chunk = episode_records(metrics, teacher_names, first)
        if not all(np.isfinite(r["return"]) for r in chunk):
            raise TrainingDivergedError("a selector episode's return became NaN or infinite; lower the student's or "
                                        "the policy's learning rate")
        records += chunk
        selection = ", ".join(f"{n} {f:.2f}" for n, f in chunk[-1]["selection"].items())
        log(f"  episode {last}/{config.episodes}: return {chunk[-1]['return']:+.4f}, "
            f"val accuracy {chunk[-1]['val_accuracy']:.3f}, selection {selection}")
        decision = checkpoints.decide(last) if checkpoints is not None and last < config.episodes else 0
        if decision:  # a checkpoint due, or a stop signal: save, then stop
            checkpoints.save(last, {"carry": carry}, {"records": records})
            checkpoints.stop(decision, last, config.episodes, unit="episode")
    log(f"  selector trained: {config.episodes} episodes x {config.num_envs} students in "
        f"{time.perf_counter() - started:.1f}s")
    return jax.tree.map(jnp.asarray, carry[0]), records


def write_records(path: str | Path, records: list[dict]) -> None:
    Path(path).write_text("".join(json.dumps(record) + "\n" for record in records))


def train_and_save_policy(splits, pool, out: Path, env_config, agent_config: AgentConfig, agent_seed: int = 0,
                          warmup_epochs: int = 0, warmup_config: TrainConfig | None = None,
                          extra: dict[str, Any] | None = None, log: Callable[[str], None] = stderr_line,
                          checkpoints=None):
    """The RL-KD procedure up to the policy: optional student warm-up, selector training, then
    `out/policy/` (Orbax + policy.json, written to a staging folder and renamed into place) and
    `out/selection.jsonl`. Returns `(policy_dir, per-episode records)`."""
    from mtkd.agents.checkpoint import PolicyMeta
    from mtkd.envs.observation import observation_size
    from mtkd.envs.params import make_env_params

    initial_student = None
    if warmup_epochs:
        log(f"warming up the student alone for {warmup_epochs} epochs")
        initial_student, warm_accuracy = warm_up_student(
            splits, env_config.student_spec, (warmup_config or TrainConfig()).replace(epochs=warmup_epochs), agent_seed,
            checkpoints.loop("warmup") if checkpoints is not None else None)
        log(f"  warm student: val accuracy {warm_accuracy:.3f}")
    logits = pool.logits(splits)
    env_params = make_env_params(logits["train"], logits["val"], splits.x_train, splits.y_train, splits.x_val,
                                 splits.y_val, env_config, initial_student)
    log(f"training the selector: {agent_config.episodes} episodes of {env_params.num_decisions} decisions, "
        f"{agent_config.num_envs} students each, reward {env_config.reward}, teachers {', '.join(pool.names)}")
    policy_params, records = train_selector(env_params, agent_config, agent_seed, pool.names, log,
                                            checkpoints=checkpoints.loop("selector") if checkpoints is not None else None)

    meta = PolicyMeta(agent_config.policy_arch, agent_config.policy_options, len(pool.names),
                      observation_size(len(pool.names), env_config.per_example), env_config.per_example,
                      env_config.temperature, list(pool.names))
    out = Path(out)
    policy_dir = save_policy_in_place(out, policy_params, meta, {
        "env": env_config.to_dict(), "agent": agent_config.to_dict(), "agent_seed": agent_seed,
        "warmup_epochs": warmup_epochs, **(extra or {})})
    write_records(out / "selection.jsonl", records)
    log(f"saved the policy in {policy_dir} and per-episode selections in {out / 'selection.jsonl'}")
    return policy_dir, records


# The episodic procedure's [rl] keys beside the fields of `AgentConfig` and `EnvConfig` (the same
# names as `mtkd select train`'s flags).
EPISODIC_RUN_KEYS = ("episode_epochs", "warmup_epochs", "agent_seed")


def episodic_configs(section: dict[str, Any], student: ModelSpec, train: TrainConfig):
    """(EnvConfig, AgentConfig) of an ablation's [rl] options for the episodic procedure (the same
    defaults as `mtkd select train`); every option is checked here, before any training."""
    import dataclasses

    from mtkd.envs.config import ENV_FIELDS, EnvConfig
    from mtkd.config_flags import config_from_values
    from mtkd.errors import ConfigError

    agent_keys = tuple(field.name for field in dataclasses.fields(AgentConfig))
    env_keys = ENV_FIELDS[1:]  # the student is the ablation's
    known = agent_keys + env_keys + EPISODIC_RUN_KEYS
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ConfigError(f"[rl] has unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}, policy, "
                          f"greedy")
    for key in EPISODIC_RUN_KEYS:
        if key in section and (isinstance(section[key], bool) or not isinstance(section[key], int) or section[key] < 0):
            raise ConfigError(f"[rl] {key} must be a whole number >= 0, got {section[key]!r}")
    env_options = {k: section[k] for k in env_keys if k in section}
    env_config = config_from_values(EnvConfig, {"student": student, **env_options,
                                                "train": train.replace(epochs=section.get("episode_epochs", 2))},
                                    "[rl]")
    agent_config = AgentConfig.from_dict({k: section[k] for k in agent_keys if k in section}, "[rl]")
    return env_config, agent_config


def train_policy_for_ablation(splits, pool, out: Path, section: dict[str, Any], student: ModelSpec,
                              train: TrainConfig, log: Callable[[str], None] = stderr_line,
                              checkpoints=None) -> Path:
    """Trains a selector for `mtkd ablate`'s `rl` strategy from the config's [rl] options and
    returns the saved policy's directory."""
    env_config, agent_config = episodic_configs(section, student, train)
    policy_dir, _ = train_and_save_policy(splits, pool, out, env_config, agent_config,
                                          agent_seed=int(section.get("agent_seed", 0)),
                                          warmup_epochs=int(section.get("warmup_epochs", 0)), warmup_config=train,
                                          log=log, checkpoints=checkpoints)
    return policy_dir


def save_policy_in_place(out: Path, params, meta, extra: dict[str, Any]) -> Path:
    """`out/policy/` (Orbax + policy.json), written to a staging folder and renamed into place, so
    a kill mid-write never leaves a half policy under the real name."""
    import shutil

    from mtkd.agents.checkpoint import save_policy

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    policy_dir, staging = out / "policy", out / "policy.partial"
    shutil.rmtree(staging, ignore_errors=True)
    save_policy(staging, params, meta, extra=extra)
    shutil.rmtree(policy_dir, ignore_errors=True)  # only a rerun of this same run gets here
    staging.rename(policy_dir)
    return policy_dir


def save_joint_policy(out: Path, policy_params, config, pool, temperature: float, extra: dict[str, Any]) -> Path:
    """The first seed's final policy as `out/policy/`; `mtkd distill --strategy rl --policy
    out/policy` applies it."""
    from mtkd.agents.checkpoint import PolicyMeta
    from mtkd.envs.observation import observation_size

    meta = PolicyMeta(config.policy_arch, config.policy_options, len(pool.names),
                      observation_size(len(pool.names), config.per_example), config.per_example, temperature,
                      list(pool.names), config.apply)
    first_seed = jax.tree.map(lambda leaf: np.asarray(leaf)[0], policy_params)
    return save_policy_in_place(out, first_seed, meta, {"selector": config.to_dict(), **extra})


def epoch_progress(name: str, epochs: int, log: Callable[[str], None]) -> Callable[[dict], None]:
    """A progress line about every fifth of the run: the mean validation accuracy and selection."""
    def describe(record):
        selection = np.mean(np.asarray(record["selection"]), axis=0)
        return (f"mean val accuracy {np.mean(record['val_accuracy']):.3f}, "
                f"selection {' '.join(f'{s:.2f}' for s in selection)}")
    return epoch_reporter(name, epochs, log, describe)


def run_joint_selector(splits, pool, out: Path, name: str, config, student: ModelSpec, train: TrainConfig,
                       seeds: Sequence[int], metrics_path: Path | None, log: Callable[[str], None] = stderr_line,
                       checkpoints=None, devices: int | None = None):
    """The joint selector (`mtkd.agents.joint`) over `seeds`: its `results.json` row, with the policy
    of the first seed in `out/policy/` and every credit round in `out/selector.jsonl`."""
    from mtkd.agents.joint import train_jointly, write_rounds
    from mtkd.distill.results import result_row

    log(f"  {name}: {len(seeds)} students, each trained beside its own selector ({config.apply} selection, "
        f"credit every {config.rounds_every(len(pool.names))} epochs, reward {config.reward}, teachers {', '.join(pool.names)})")
    result = train_jointly(pool.logits(splits), splits, pool.val_accuracy, student, train, config, seeds,
                           metrics_path=metrics_path, on_epoch=epoch_progress(name, train.epochs, log),
                           checkpoints=checkpoints, devices=devices)
    policy_dir = Path(out) / "policy"
    if is_writer():  # the policy and the rounds are every process's alike
        policy_dir = save_joint_policy(out, result.policy_params, config, pool, train.temperature,
                                       {"student": student.to_dict(), "seed": int(seeds[0])})
        write_rounds(Path(out) / "selector.jsonl", result.rounds, pool.names)
    selection = np.mean([np.asarray(r["selection"]) for r in result.history], axis=0)  # (S, K)
    return result_row(name, result.seeds, result.val_accuracy, result.test_accuracy, best_epoch=result.best_epoch,
                      seconds=result.seconds, policy=str(policy_dir), selector=config.to_dict(),
                      mean_selection={n: [round(float(v), 4) for v in selection[:, k]]
                                      for k, n in enumerate(pool.names)})


JOINT_ARGUMENTS = {None: {}, "per_example": {"per_example": True}}


def joint_config(section: dict[str, Any], name: str = "rl"):
    """The joint selector's `SelectorConfig` from an ablation's `[rl]` options; `rl:per_example`
    turns on per-example selection. ConfigError names an unknown option or argument."""
    from mtkd.agents.selector_config import SelectorConfig
    from mtkd.errors import ConfigError

    argument = name.partition(":")[2] or None
    if argument not in JOINT_ARGUMENTS:
        raise ConfigError(f"strategy {name!r}: the trained selector takes 'rl' or 'rl:per_example'")
    return SelectorConfig.from_dict({**section, **JOINT_ARGUMENTS[argument]}, "[rl]")


def population_config(section: dict[str, Any], name: str = "rl"):
    """The population selector's `PopulationConfig` from an ablation's `[rl]` options;
    `rl:per_example` selects per example. ConfigError names an unknown option or argument."""
    from mtkd.agents.population_config import PopulationConfig
    from mtkd.errors import ConfigError

    argument = name.partition(":")[2] or None
    if argument not in JOINT_ARGUMENTS:
        raise ConfigError(f"strategy {name!r}: the trained selector takes 'rl' or 'rl:per_example'")
    return PopulationConfig.from_dict({**section, **JOINT_ARGUMENTS[argument]}, "[rl]")
