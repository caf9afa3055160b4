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

_EXPORTS = {
    "EnvConfig": "envs.config",
    "EnvParams": "envs.params",
    "EnvState": "envs.core",
    "REWARDS": "envs.rewards",
    "Reward": "envs.rewards",
    "RewardInput": "envs.rewards",
    "SHARED_FEATURES": "envs.observation",
    "STATE_AXES": "envs.rollout",
    "TEACHER_FEATURES": "envs.observation",
    "TeacherSelectionEnv": "envs.gym_env",
    "TeacherSelectionVectorEnv": "envs.vector_env",
    "TeacherTable": "envs.observation",
    "Trajectory": "envs.rollout",
    "action_weights": "envs.core",
    "decide": "envs.core",
    "init_student": "envs.params",
    "make_env_params": "envs.params",
    "observation_features": "envs.observation",
    "observation_shape": "envs.observation",
    "observation_size": "envs.observation",
    "observe": "envs.core",
    "params_from_pool": "envs.sources",
    "reset": "envs.core",
    "reset_batch": "envs.rollout",
    "rollout": "envs.rollout",
    "rollout_batch": "envs.rollout",
    "run_decisions": "envs.rollout",
    "step": "envs.core",
    "step_batch": "envs.rollout",
    "student_graphdef": "envs.params",
    "table_observation": "envs.observation",
    "teacher_table": "envs.observation",
    "validation_metrics": "envs.core",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["ENV_ID", *sorted(_EXPORTS)]
