"""Running a trained selector policy through the environment, without learning."""

from __future__ import annotations

from typing import Any

import jax

from mtkd.agents.bernoulli import greedy_actions, sample_actions
from mtkd.agents.policies import Policy, policy_rows
from mtkd.envs.params import EnvParams
from mtkd.envs.rollout import rollout_batch


def evaluate_policy(policy: Policy, policy_params: Any, env_params: EnvParams, key, num_envs: int,
                    greedy: bool = False) -> dict[str, jax.Array]:
    """N fresh episodes under the policy (sampled, or greedy): `selection` (K,) fraction of
    decisions (and examples) selecting each teacher, `return` (N,) undiscounted episode returns.
    Jit-able; `policy`, `num_envs` and `greedy` are static."""
    per_example = env_params.config.per_example

    def select(k, obs):
        logits = policy.apply(policy_params, policy_rows(obs, per_example))
        return greedy_actions(logits) if greedy else sample_actions(k, logits)

    reset_key, rollout_key = jax.random.split(key)
    _, trajectory = rollout_batch(jax.random.split(reset_key, num_envs), rollout_key, env_params, select)
    axes = tuple(range(trajectory.action.ndim - 1))
    return {"selection": trajectory.action.mean(axis=axes), "return": trajectory.reward.sum(axis=0)}
