"""Gymnasium spaces of the environment and the check every action passes before the core sees it."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from mtkd.envs.observation import observation_bounds
from mtkd.envs.params import EnvParams
from mtkd.errors import ConfigError


def observation_space(params: EnvParams) -> spaces.Box:
    """Box of float32 features, all >= 0 (see `mtkd.envs.observation`)."""
    low, high = observation_bounds(params.num_teachers, params.config.per_example,
                                   params.config.examples_per_decision)
    return spaces.Box(low, high, dtype=np.float32)


def action_space(params: EnvParams) -> spaces.MultiBinary:
    """MultiBinary(K), or MultiBinary((n * batch_size, K)) per example."""
    if params.config.per_example:
        return spaces.MultiBinary((params.config.examples_per_decision, params.num_teachers))
    return spaces.MultiBinary(params.num_teachers)


def check_action(action, shape: tuple[int, ...]) -> np.ndarray:
    """`action` (numpy, list, JAX, bool or numeric) as an int8 array of `shape` with values 0/1;
    ConfigError otherwise."""
    try:
        array = np.asarray(action)
    except Exception as error:  # noqa: BLE001  (ragged lists, objects numpy cannot read)
        raise ConfigError(f"action must be an array of 0/1 of shape {shape}: {error}") from None
    if array.shape != tuple(shape):
        raise ConfigError(f"action must have shape {tuple(shape)} (one 0/1 select/skip per teacher), "
                          f"got shape {array.shape}")
    if array.dtype != np.bool_ and not np.issubdtype(array.dtype, np.number):
        raise ConfigError(f"action values must be 0 or 1, got dtype {array.dtype}")
    if not np.all((array == 0) | (array == 1)):
        bad = array[~((array == 0) | (array == 1))].ravel()[0]
        raise ConfigError(f"action values must be 0 or 1, got {bad!r}")
    return array.astype(np.int8)
