"""The teacher-selection environment: a pure JAX core (gymnax shape) and its Gymnasium shells.

Importing `envs` registers `mtkd/TeacherSelection-v0` with Gymnasium (once), with a
`vector_entry_point` that runs N students through the vmapped core.
"""

import gymnasium

from envs.config import EnvConfig
from envs.core import EnvState, action_weights, decide, observe, reset, step, validation_metrics
from envs.gym_env import TeacherSelectionEnv
from envs.observation import (SHARED_FEATURES, TEACHER_FEATURES, TeacherTable, observation_features,
                              observation_shape, observation_size, table_observation, teacher_table)
from envs.params import EnvParams, init_student, make_env_params, student_graphdef
from envs.rewards import REWARDS, Reward, RewardInput
from envs.rollout import STATE_AXES, Trajectory, reset_batch, rollout, rollout_batch, run_decisions, step_batch
from envs.sources import params_from_pool
from envs.vector_env import TeacherSelectionVectorEnv

ENV_ID = "mtkd/TeacherSelection-v0"

if ENV_ID not in gymnasium.registry:  # importing twice (or reloading) must not register twice
    gymnasium.register(
        id=ENV_ID,
        entry_point="envs.gym_env:TeacherSelectionEnv",
        vector_entry_point="envs.vector_env:TeacherSelectionVectorEnv",
    )

__all__ = [
    "ENV_ID", "EnvConfig", "EnvParams", "EnvState", "REWARDS", "Reward", "RewardInput", "SHARED_FEATURES",
    "STATE_AXES", "TEACHER_FEATURES", "TeacherSelectionEnv", "TeacherTable", "TeacherSelectionVectorEnv", "Trajectory",
    "action_weights", "decide", "init_student", "make_env_params", "observation_features", "observation_shape",
    "observation_size", "observe", "params_from_pool", "reset", "reset_batch", "rollout", "rollout_batch",
    "run_decisions",
    "step", "step_batch", "student_graphdef", "table_observation", "teacher_table", "validation_metrics",
]
