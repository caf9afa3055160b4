"""The `rl` fusion strategy: a trained selector policy picks the teachers of every batch.

`mtkd.selector_strategy` (the application layer) registers it in `mtkd.fusion.STRATEGIES`, once.
It is built with
`options={"policy": DIR}` (and optionally `"greedy": True`; the spec `rl:greedy` does the same)
and computes, for each batch, the environment's own observation features
(`mtkd.envs.observation_features`), so the policy sees in use what it saw in training.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mtkd.agents.bernoulli import ACTION_MODES
from mtkd.agents.checkpoint import PolicyMeta, load_policy
from mtkd.agents.policies import Policy, policy_rows
from mtkd.envs.observation import observation_features, observation_shape, observation_size
from mtkd.errors import CheckpointError, ConfigError
from mtkd.fusion.strategies import FusionStrategy, StrategyContext, StrategyInput, make_strategy


def make_rl_strategy(policy: Policy, params: Any, meta: PolicyMeta, greedy: bool = False,
                     mode: str | None = None, context: StrategyContext | None = None) -> FusionStrategy:
    """A strategy from a policy in memory: weights (B, K) by `mode` (`mtkd.agents.ACTION_MODES`:
    greedy, expected, sample; default: greedy if `greedy`, else the policy's own `meta.apply`).
    A policy whose `meta.fusion` is not `uniform` multiplies that fusion's own weights (built from
    `context`, the pool's) by its selection, as the population it was trained on did."""
    params = jax.tree.map(jnp.asarray, params)
    act = ACTION_MODES.get(mode or ("greedy" if greedy else meta.apply))

    def weights(batch: StrategyInput) -> jax.Array:
        if policy.reads_state:
            obs = observation_features(batch.teacher_logits, batch.labels, batch.student_logits, batch.progress,
                                       meta.temperature, meta.per_example)
        else:  # the logits ignore the rows: only their shape is needed, and no student forward pass
            shape = observation_shape(meta.num_teachers, meta.per_example, batch.labels.shape[0])
            obs = jnp.zeros(shape, jnp.float32)
        logits = policy.apply(params, policy_rows(obs, meta.per_example))  # (K,) or (B, K)
        return jnp.broadcast_to(act(batch.key, logits), (batch.labels.shape[0], meta.num_teachers))

    # Named `rl` either way, so results rows are found by one name; results.json records the mode.
    selector = FusionStrategy("rl", weights, uses_teachers=True, needs_student=policy.reads_state)
    return selector if meta.fusion == "uniform" else over_fusion(selector, meta.fusion, context)


def over_fusion(selector: FusionStrategy, fusion: str, context: StrategyContext | None) -> FusionStrategy:
    """The selector's weights times those of the fusion strategy `fusion` (uniform's are all 1)."""
    if context is None:
        raise ConfigError(f"a policy over the {fusion!r} fusion needs the pool's context")
    base = make_strategy(fusion, context)

    def combined(batch: StrategyInput) -> jax.Array:
        return selector.weights(batch) * base.weights(batch)

    def combined_stateful(state, batch: StrategyInput):
        weights, state = base.stateful_weights(state, batch)
        return selector.weights(batch) * weights, state

    needs_student = selector.needs_student or base.needs_student
    if base.stateful:
        return dataclasses.replace(base, name="rl", weights=None, stateful_weights=combined_stateful,
                                   needs_student=needs_student)
    return FusionStrategy("rl", combined, uses_teachers=True, needs_student=needs_student)


def check_policy_fits(meta: PolicyMeta, num_teachers: int, where: str, teacher_names=None) -> None:
    """CheckpointError unless the policy was trained for `num_teachers` teachers and this layout,
    and (when `teacher_names` is given) for these teachers in this order."""
    if meta.num_teachers != num_teachers:
        raise CheckpointError(f"policy {where} was trained for {meta.num_teachers} teachers "
                              f"({', '.join(meta.teacher_names)}); this pool has {num_teachers}")
    expected = observation_size(num_teachers, meta.per_example)
    if meta.observation_size != expected:
        raise CheckpointError(f"policy {where} reads observations of size {meta.observation_size}; "
                              f"this pool gives {expected}")
    if teacher_names is not None and list(meta.teacher_names) != list(teacher_names):
        raise CheckpointError(f"policy {where} was trained for the teachers [{', '.join(meta.teacher_names)}]; "
                              f"this pool has [{', '.join(teacher_names)}] (names and order must match)")


def rl_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """`rl` / `rl:MODE` (greedy, expected, sample): the selector policy saved in
    `context.options["policy"]`, applied as it was trained unless a mode is named."""
    if argument is not None and argument not in ACTION_MODES:
        raise ConfigError(f"strategy 'rl' takes one of {', '.join(ACTION_MODES)} after the colon, got rl:{argument}")
    directory = context.options.get("policy")
    if not directory:
        raise ConfigError("strategy 'rl' needs --policy DIR (a policy from `mtkd select train`)")
    policy, params, meta = load_policy(directory)
    check_policy_fits(meta, context.num_teachers, str(directory), context.teacher_names)
    greedy = bool(context.options.get("greedy", False))
    return make_rl_strategy(policy, params, meta, greedy, mode=argument, context=context)
