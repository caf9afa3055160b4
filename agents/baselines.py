"""REINFORCE baselines by name: `apply(state, returns (N, T)) -> (baseline (N, T), new state)`.

A baseline must not depend on the environment's own action at the same step, so that the
policy gradient stays unbiased: the moving average uses only earlier episodes, leave-one-out
only the other N - 1 environments.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from mtkd.errors import ConfigError
from mtkd.registry import Registry


@dataclasses.dataclass(frozen=True)
class Baseline:
    """`init(num_steps) -> state`; `apply(state, returns (N, T)) -> (baseline (N, T), state)`;
    `min_envs`: parallel environments it needs."""

    name: str
    init: Callable[[int], Any]
    apply: Callable[[Any, jax.Array], tuple[jax.Array, Any]]
    min_envs: int = 1


BASELINES: Registry[Callable[..., Baseline]] = Registry("baseline")


def make_baseline(name: str, options: dict | None = None) -> Baseline:
    try:
        return BASELINES.get(name)(**dict(options or {}))
    except TypeError as error:
        raise ConfigError(f"baseline {name!r}: bad options {dict(options or {})}: {error}") from None


@BASELINES.register("none")
def no_baseline() -> Baseline:
    """Plain REINFORCE: the returns themselves are the advantages."""
    return Baseline("none", lambda num_steps: (), lambda state, returns: (jnp.zeros_like(returns), state))


@BASELINES.register("moving_average")
def moving_average_baseline(decay: float = 0.9) -> Baseline:
    """Per decision index t, an exponential moving average of past episodes' mean return-to-go
    (bias-corrected). The first episode, with no past, uses its own mean over environments."""
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"moving_average decay must be in [0, 1), got {decay}")

    def init(num_steps: int):
        return {"average": jnp.zeros((num_steps,)), "episodes": jnp.int32(0)}

    def apply(state, returns):
        corrected = state["average"] / (1.0 - decay ** jnp.maximum(state["episodes"], 1))
        baseline = jnp.where(state["episodes"] > 0, corrected, returns.mean(axis=0))
        average = decay * state["average"] + (1.0 - decay) * returns.mean(axis=0)
        return jnp.broadcast_to(baseline, returns.shape), {"average": average, "episodes": state["episodes"] + 1}

    return Baseline("moving_average", init, apply)


@BASELINES.register("leave_one_out")
def leave_one_out_baseline() -> Baseline:
    """For environment i, the mean return-to-go of the other N - 1 at the same decision."""

    def apply(state, returns):
        n = returns.shape[0]
        return (returns.sum(axis=0, keepdims=True) - returns) / (n - 1), state

    return Baseline("leave_one_out", lambda num_steps: (), apply, min_envs=2)
