"""The teacher-selection environment: a pure JAX core (gymnax shape) and its Gymnasium shells.

Importing `envs` registers `mtkd/TeacherSelection-v0` with Gymnasium (once), with a
`vector_entry_point` that runs N students through the vmapped core. The names below are imported
on first use (`mtkd.lazy_exports`): the command line reads `envs.config` without importing JAX.
"""

import gymnasium

from mtkd.lazy_exports import lazy_exports

ENV_ID = "mtkd/TeacherSelection-v0"

if ENV_ID not in gymnasium.registry:  # importing twice (or reloading) must not register twice
    gymnasium.register(
        id=ENV_ID,
        entry_point="envs.gym_env:TeacherSelectionEnv",
        vector_entry_point="envs.vector_env:TeacherSelectionVectorEnv",
    )

__getattr__, __dir__, _NAMES = lazy_exports(__name__, {
    "envs.config": ("EnvConfig",),
    "envs.core": ("EnvState", "action_weights", "decide", "observe", "reset", "step", "validation_metrics"),
    "envs.gym_env": ("TeacherSelectionEnv",),
    "envs.observation": ("SHARED_FEATURES", "TEACHER_FEATURES", "TeacherTable", "observation_features",
        "observation_shape", "observation_size", "table_observation", "teacher_table"),
    "envs.params": ("EnvParams", "init_student", "make_env_params", "student_graphdef"),
    "envs.rewards": ("REWARDS", "Reward", "RewardInput"),
    "envs.rollout": ("STATE_AXES", "Trajectory", "reset_batch", "rollout", "rollout_batch", "run_decisions",
        "step_batch"),
    "envs.sources": ("params_from_pool",),
    "envs.vector_env": ("TeacherSelectionVectorEnv",),
})
__all__ = ["ENV_ID", *_NAMES]
