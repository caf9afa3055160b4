"""The RL-KD procedure's steps outside the pure core: warm up a student, train the selector
with progress lines, and record what it chose (`selection.jsonl`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from agents.config import AgentConfig
from agents.reinforce import make_train
from envs.params import EnvParams
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit, unstack
from mtkd.errors import TrainingDivergedError
from mtkd.fusion.strategies import StrategyContext, make_strategy
from mtkd.models import ModelSpec


def stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def warm_up_student(splits, student: ModelSpec, config: TrainConfig, seed: int):
    """A student trained alone (hard labels) for `config.epochs`, its best validation epoch:
    the start of every selector episode (the paper pre-trains the student first)."""
    result = fit(student, splits.input_shape, splits.num_classes, SplitArrays(splits.x_train, splits.y_train),
                 SplitArrays(splits.x_val, splits.y_val), make_strategy("none", StrategyContext((), ())),
                 config, [seed])
    return unstack(result.params, 0), result.val_accuracy[0]


def episode_records(metrics: dict, teacher_names: Sequence[str]) -> list[dict[str, Any]]:
    """One JSON-able record per episode: mean return, per-teacher selection frequency, students'
    validation accuracy at the episode's end."""
    metrics = jax.tree.map(np.asarray, metrics)
    records = []
    for e in range(metrics["loss"].shape[0]):
        records.append({
            "episode": e + 1,
            "return": float(metrics["return"][e].mean()),
            "returns": metrics["return"][e].astype(float).round(6).tolist(),
            "selection": {name: round(float(f), 6) for name, f in zip(teacher_names, metrics["selection"][e])},
            "val_accuracy": float(metrics["val_accuracy"][e].mean()),
            "policy_entropy": float(metrics["entropy"][e]),
        })
    return records


def train_selector(env_params: EnvParams, config: AgentConfig, seed: int, teacher_names: Sequence[str],
                   log: Callable[[str], None] = stderr_line, log_every: int | None = None):
    """(policy params, per-episode records): one jitted `train(key)`, with progress lines printed
    from inside it every `log_every` episodes (default: about ten lines per run)."""
    every = log_every or max(1, config.num_episodes // 10)

    def progress(episode, metrics):
        episode = int(episode) + 1
        if episode % every and episode != config.num_episodes:
            return
        selection = ", ".join(f"{n} {float(f):.2f}" for n, f in zip(teacher_names, np.asarray(metrics["selection"])))
        log(f"  episode {episode}/{config.num_episodes}: return {float(np.mean(metrics['return'])):+.4f}, "
            f"val accuracy {float(np.mean(metrics['val_accuracy'])):.3f}, selection {selection}")

    started = time.perf_counter()
    output = jax.jit(make_train(config, env_params, on_episode=progress))(jax.random.key(seed))
    records = episode_records(output.metrics, teacher_names)
    if not all(np.isfinite(r["return"]) for r in records):
        raise TrainingDivergedError("a selector episode's return became NaN or infinite; lower the student's or the "
                                    "policy's learning rate")
    log(f"  selector trained: {config.num_episodes} episodes x {config.num_envs} students in "
        f"{time.perf_counter() - started:.1f}s")
    return jax.tree.map(jnp.asarray, output.policy_params), records


def write_records(path: str | Path, records: list[dict]) -> None:
    Path(path).write_text("".join(json.dumps(record) + "\n" for record in records))
