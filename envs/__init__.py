"""The teacher-selection environment: a pure JAX core (gymnax shape) and its Gymnasium shells.

Importing `mtkd.envs` registers `mtkd/TeacherSelection-v0` with Gymnasium (once), with a
`vector_entry_point` that runs N students through the vmapped core. The names below are imported
on first use (`mtkd.lazy_exports`): the command line reads `mtkd.envs.config` without importing JAX.
"""

import gymnasium

from mtkd.lazy_exports import lazy_exports

ENV_ID = "mtkd/TeacherSelection-v0"

if ENV_ID not in gymnasium.registry:  # importing twice (or reloading) must not register twice
    gymnasium.register(
        id=ENV_ID,
        entry_point="mtkd.envs.gym_env:TeacherSelectionEnv",
        vector_entry_point="mtkd.envs.vector_env:TeacherSelectionVectorEnv",
    )

__getattr__, __dir__, _NAMES = lazy_exports(__name__, {
    "mtkd.envs.config": ("EnvConfig",),
    "mtkd.envs.core": ("EnvState", "action_weights", "decide", "observe", "reset", "step", "validation_metrics"),
    "mtkd.envs.gym_env": ("TeacherSelectionEnv",),
    "mtkd.envs.observation": ("SHARED_FEATURES", "TEACHER_FEATURES", "TeacherTable", "observation_features",
        "observation_shape", "observation_size", "table_observation", "teacher_table"),
    "mtkd.envs.params": ("EnvParams", "init_student", "make_env_params", "student_graphdef"),
    "mtkd.envs.rewards": ("REWARDS", "Reward", "RewardInput"),
    "mtkd.envs.rollout": ("STATE_AXES", "Trajectory", "reset_batch", "rollout", "rollout_batch", "run_decisions",
        "step_batch"),
    "mtkd.envs.sources": ("params_from_pool",),
    "mtkd.envs.vector_env": ("TeacherSelectionVectorEnv",),
})
__all__ = ["ENV_ID", *_NAMES]
