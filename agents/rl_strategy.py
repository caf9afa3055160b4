"""The `rl` fusion strategy: a trained selector policy picks the teachers of every batch.

Importing `agents` registers it in `mtkd.fusion.STRATEGIES`. It is built with
`options={"policy": DIR}` (and optionally `"greedy": True`; the spec `rl:greedy` does the same)
and computes, for each batch, the environment's own observation features
(`envs.observation_features`), so the policy sees in use what it saw in training.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from agents.bernoulli import greedy_actions, sample_actions
from agents.checkpoint import PolicyMeta, load_policy
from agents.policies import Policy, policy_rows
from envs.observation import observation_features, observation_size
from mtkd.errors import CheckpointError, ConfigError
from mtkd.fusion.strategies import STRATEGIES, FusionStrategy, StrategyContext, StrategyInput

_MODES = {None: False, "sample": False, "greedy": True}


def make_rl_strategy(policy: Policy, params: Any, meta: PolicyMeta, greedy: bool = False) -> FusionStrategy:
    """A strategy from a policy in memory: weights (B, K) of 0/1, sampled or greedy."""
    params = jax.tree.map(jnp.asarray, params)

    def weights(batch: StrategyInput) -> jax.Array:
        obs = observation_features(batch.teacher_logits, batch.labels, batch.student_logits, batch.progress,
                                   meta.temperature, meta.per_example)
        logits = policy.apply(params, policy_rows(obs, meta.per_example))  # (K,) or (B, K)
        actions = greedy_actions(logits) if greedy else sample_actions(batch.key, logits)
        return jnp.broadcast_to(actions, (batch.labels.shape[0], meta.num_teachers))

    # Named `rl` either way, so results rows are found by one name; results.json records the mode.
    return FusionStrategy("rl", weights, uses_teachers=True, needs_student=True)


def check_policy_fits(meta: PolicyMeta, num_teachers: int, where: str) -> None:
    """CheckpointError unless the policy was trained for `num_teachers` teachers and this layout."""
    if meta.num_teachers != num_teachers:
        raise CheckpointError(f"policy {where} was trained for {meta.num_teachers} teachers "
                              f"({', '.join(meta.teacher_names)}); this pool has {num_teachers}")
    expected = observation_size(num_teachers, meta.per_example)
    if meta.observation_size != expected:
        raise CheckpointError(f"policy {where} reads observations of size {meta.observation_size}; "
                              f"this pool gives {expected}")


@STRATEGIES.register("rl")
def rl_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """`rl` / `rl:greedy`: the selector policy saved in `context.options["policy"]`."""
    if argument not in _MODES:
        raise ConfigError(f"strategy 'rl' takes 'greedy' or 'sample' after the colon, got rl:{argument}")
    directory = context.options.get("policy")
    if not directory:
        raise ConfigError("strategy 'rl' needs --policy DIR (a policy from `mtkd select train`)")
    policy, params, meta = load_policy(directory)
    check_policy_fits(meta, context.num_teachers, str(directory))
    greedy = _MODES[argument] or bool(context.options.get("greedy", False))
    return make_rl_strategy(policy, params, meta, greedy)
