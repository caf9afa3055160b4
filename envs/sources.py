"""Building `EnvParams` for the Gymnasium shells: from a data set and a teacher pool on disk,
or from arrays already in memory."""

from __future__ import annotations

from typing import Any, Sequence

from mtkd.envs.config import EnvConfig
from mtkd.envs.params import EnvParams, make_env_params
from mtkd.errors import ConfigError

def env_config(config: EnvConfig | None = None, **changes: Any) -> EnvConfig:
    """`config` (default `EnvConfig()`) with `changes`; ConfigError names an unknown keyword."""
    return (config or EnvConfig()).replace(**changes)


def default_pool_file(dataset: str = "mnist1d"):
    """Where the default pool of `dataset` keeps its manifest (it may not be trained yet)."""
    from mtkd.teachers import default_pool_dir
    from mtkd.teachers.pool import POOL_FILE

    return default_pool_dir(dataset) / POOL_FILE


def load_pool_for(dataset: str, teachers: str | None, data_dir: str | None, val_fraction: float = 0.1,
                  split_seed: int = 0, val_indices: str | None = None, val_split: str | None = None):
    """(splits, pool): the data set and the pool in `teachers`, or the default pool of the data set
    (trained and cached on first use). DatasetError where their classes disagree."""
    from mtkd.data import load_dataset
    from mtkd.distill.pool_training import pool_for

    splits = load_dataset(dataset, data_dir=data_dir, val_fraction=val_fraction, split_seed=split_seed,
                          val_indices=val_indices, val_split=val_split)
    if teachers is None:  # the default pool's cache (its own folder for another validation split)
        return splits, pool_for(splits, "default", None, data_dir, val_fraction, split_seed, val_indices, val_split)
    return splits, pool_for(splits, None, teachers, data_dir, val_fraction, split_seed, val_indices, val_split)


def params_from_pool(dataset: str = "mnist1d", teachers: str | None = None, data_dir: str | None = None,
                     config: EnvConfig | None = None, initial_student=None, val_fraction: float = 0.1,
                     split_seed: int = 0) -> tuple[EnvParams, Sequence[str]]:
    """(EnvParams, teacher names) for `dataset` with the pool in `teachers` (default pool if None)."""
    splits, pool = load_pool_for(dataset, teachers, data_dir, val_fraction, split_seed)
    logits = pool.logits(splits)  # never the test split beyond this point
    params = make_env_params(logits["train"], logits["val"], splits.x_train, splits.y_train,
                             splits.x_val, splits.y_val, config, initial_student)
    return params, list(pool.names)


def pool_label(params, dataset: str, teachers: str | None) -> str:
    """Where an environment's teachers come from, for `reset`'s info."""
    if params is not None:
        return "in-memory arrays"
    return str(teachers) if teachers else f"the default pool of {dataset}"


def episode_info(env) -> dict:
    """`reset`'s info: the pool, the teacher names (the action's order), the episode's length in
    decisions and the observation's feature names."""
    return {"pool": env.pool, "teacher_names": list(env.teacher_names),
            "episode_length": int(env.params.num_decisions), "feature_names": list(env.feature_names)}


def resolve_params(params: EnvParams | None, dataset: str, teachers: str | None, data_dir: str | None,
                   initial_student, teacher_names, config_changes: dict) -> tuple[EnvParams, list[str]]:
    """What both Gymnasium shells do with their keyword arguments: in-memory `params` (with
    optional config changes) or a data set and pool on disk."""
    if params is not None:
        if not isinstance(params, EnvParams):
            raise ConfigError(f"params must be an mtkd.envs.EnvParams (see mtkd.envs.make_env_params), got {type(params).__name__}")
        if config_changes or initial_student is not None:  # rebuilt, so the changes are validated
            params = make_env_params(params.teacher_logits_train, params.teacher_logits_val, params.x_train,
                                     params.y_train, params.x_val, params.y_val,
                                     env_config(params.config, **config_changes),
                                     initial_student if initial_student is not None else params.initial_student)
        names = list(teacher_names) if teacher_names is not None else [f"teacher_{k}" for k in range(params.num_teachers)]
    else:
        params, names = params_from_pool(dataset, teachers, data_dir, env_config(**config_changes), initial_student)
    if len(names) != params.num_teachers:
        raise ConfigError(f"{len(names)} teacher names for {params.num_teachers} teachers")
    return params, names
