"""`TeacherSelectionEnv`: the Gymnasium face of the functional core. It converts arguments and
results between numpy / Python and JAX, checks actions, and keeps the current `EnvState`; every
transition is the jitted `mtkd.envs.core.step`."""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium
import jax
import numpy as np

from mtkd.envs import core
from mtkd.envs.params import EnvParams, make_env_params
from mtkd.envs.observation import feature_names
from mtkd.envs.sources import episode_info, pool_label, resolve_params
from mtkd.envs.spaces import action_space, check_action, observation_space
from mtkd.errors import ConfigError

_reset = jax.jit(core.reset)
_step = jax.jit(core.step)


def python_info(info: dict) -> dict[str, Any]:
    """JAX scalars and vectors of an info dict as Python floats, bools and lists."""
    converted = {}
    for name, value in info.items():
        value = np.asarray(value)
        if value.dtype == np.bool_:
            converted[name] = value.tolist()
        else:
            converted[name] = value.astype(np.float64).tolist()
    return converted


class TeacherSelectionEnv(gymnasium.Env):
    """Choose, decision by decision, which frozen teachers a student distils from.

    Keyword arguments: `dataset` (default "mnist1d"), `teachers` (a pool directory; default: the
    data set's default pool, trained and cached on first use), `data_dir`; or `params`, an
    `mtkd.envs.EnvParams` built from in-memory arrays (`mtkd.envs.make_env_params`), with optional
    `teacher_names`; `initial_student` (warm-start parameters); and any `mtkd.envs.EnvConfig` field
    (epochs, batch_size, updates_per_decision, reward, eval_every, val_subset, per_example,
    alpha, temperature, optimizer, learning_rate, weight_decay, student).

    Observations are float32 numpy arrays (see `mtkd.envs.observation`), rewards Python floats,
    actions anything numpy reads as 0/1 of the action space's shape. `reset(seed=s)` starts from
    `jax.random.key(s)` (for 0 <= s < 2**32); otherwise the key is drawn from the env's numpy
    generator (seeded by `s` when given).
    """

    metadata = {"render_modes": []}

    def __init__(self, dataset: str = "mnist1d", teachers: str | None = None, data_dir: str | None = None,
                 params: EnvParams | None = None, teacher_names: Sequence[str] | None = None,
                 initial_student=None, render_mode: str | None = None, **config: Any):
        if render_mode is not None:
            raise ConfigError(f"TeacherSelectionEnv has no render modes, got render_mode={render_mode!r}")
        self.params, self.teacher_names = resolve_params(params, dataset, teachers, data_dir, initial_student,
                                                         teacher_names, config)
        self.pool = pool_label(params, dataset, teachers)
        # The name of every observation value (`mtkd.envs.observation.feature_names`).
        self.feature_names = feature_names(self.teacher_names, self.params.config.per_example)
        self.observation_space = observation_space(self.params)
        self.action_space = action_space(self.params)
        self.render_mode = None
        self.state: core.EnvState | None = None
        self._done = False

    @classmethod
    def from_arrays(cls, teacher_logits_train, teacher_logits_val, x_train, y_train, x_val, y_val,
                    teacher_names: Sequence[str] | None = None, initial_student=None, **config: Any):
        """An env over in-memory arrays (no pool on disk): teacher logits (K, N, C), data, labels."""
        from mtkd.envs.sources import env_config

        params = make_env_params(teacher_logits_train, teacher_logits_val, x_train, y_train, x_val, y_val,
                                 env_config(**config), initial_student)
        return cls(params=params, teacher_names=teacher_names)

    def _next_key(self, seed: int | None):
        if seed is not None and 0 <= seed < 2**32:  # jax.random.key folds larger seeds together
            return jax.random.key(seed)
        return jax.random.key(int(self.np_random.integers(0, 2**32)))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, self.state = _reset(self._next_key(seed), self.params)
        self._done = False
        return np.asarray(obs), episode_info(self)

    def step(self, action):
        if self.state is None:
            raise ConfigError("call reset() before step()")
        if self._done:
            raise ConfigError("the episode is over; call reset() to start a new one")
        action = check_action(action, self.action_space.shape)  # before any change to the state
        step_key = jax.random.key(int(self.np_random.integers(0, 2**32)))
        obs, state, reward, done, info = _step(step_key, self.state, action, self.params)
        self.state, self._done = state, bool(done)
        return np.asarray(obs), float(reward), self._done, False, python_info(info)
