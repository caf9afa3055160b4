"""`TeacherSelectionVectorEnv`: N students side by side through the vmapped core (the
`vector_entry_point` of `mtkd/TeacherSelection-v0`, for `gymnasium.make_vec`)."""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium
import jax
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from mtkd.envs.gym_env import python_info
from mtkd.envs.params import EnvParams
from mtkd.envs.rollout import reset_batch, step_batch
from mtkd.envs.observation import feature_names
from mtkd.envs.sources import episode_info, pool_label, resolve_params
from mtkd.envs.spaces import action_space, check_action, observation_space
from mtkd.errors import ConfigError

_reset = jax.jit(reset_batch)
_step = jax.jit(step_batch)


class TeacherSelectionVectorEnv(gymnasium.vector.VectorEnv):
    """`num_envs` independent students (one reset key each) on one pool; same keyword arguments
    as `TeacherSelectionEnv`. All episodes have the same length, so they end together; the
    step after the end resets them (autoreset mode NEXT_STEP: zero reward, not terminated).
    `reset(seed=s)` gives environment i the key `jax.random.fold_in(jax.random.key(s), i)` (for
    0 <= s < 2**32)."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 2, dataset: str = "mnist1d", teachers: str | None = None,
                 data_dir: str | None = None, params: EnvParams | None = None,
                 teacher_names: Sequence[str] | None = None, initial_student=None, **config: Any):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ConfigError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.params, self.teacher_names = resolve_params(params, dataset, teachers, data_dir, initial_student,
                                                         teacher_names, config)
        self.pool = pool_label(params, dataset, teachers)
        self.feature_names = feature_names(self.teacher_names, self.params.config.per_example)
        self.num_envs = num_envs
        self.single_observation_space = observation_space(self.params)
        self.single_action_space = action_space(self.params)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.state = None
        self._autoreset = False

    def _keys(self, seed: int | None):
        if seed is None or not 0 <= seed < 2**32:  # jax.random.key folds larger seeds together
            seed = int(self.np_random.integers(0, 2**32))
        return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(seed), np.arange(self.num_envs))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, self.state = _reset(self._keys(seed), self.params)
        self._autoreset = False
        return np.asarray(obs), episode_info(self)

    def step(self, actions):
        if self.state is None:
            raise ConfigError("call reset() before step()")
        actions = check_action(actions, self.action_space.shape)  # before any change to the state
        if self._autoreset:
            obs, info = self.reset()
            zeros = np.zeros(self.num_envs, dtype=bool)
            return obs, np.zeros(self.num_envs), zeros, zeros.copy(), info
        obs, state, reward, done, info = _step(self._keys(None), self.state, actions, self.params)
        self.state = state
        done = np.asarray(done)
        self._autoreset = bool(done.all())
        info = {name: np.asarray(value) for name, value in python_info(info).items()}
        return (np.asarray(obs), np.asarray(reward, dtype=np.float64), done,
                np.zeros(self.num_envs, dtype=bool), info)
