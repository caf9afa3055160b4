"""Selector policies by name: an observation row (..., D) -> one logit per teacher (..., K).

A batch-level observation (5 K + 4,) is one row; a per-example observation (B, K, 9) is B rows
of K * 9 values (`policy_rows`). `pi(select teacher k | s) = sigmoid(logit_k)`.
Parameters are plain dicts of arrays (Orbax saves them as they are).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from mtkd.envs.observation import SHARED_FEATURES, TEACHER_FEATURES
from mtkd.errors import ConfigError
from mtkd.registry import Registry


@dataclasses.dataclass(frozen=True)
class Policy:
    """`init(key, observation_size, num_teachers) -> params`; `apply(params, rows (..., D)) -> (..., K)`.
    `reads_state`: False for a policy whose logits do not depend on the rows (then the `rl`
    strategy computes no observation, and needs no student forward pass for one)."""

    name: str
    init: Callable[[jax.Array, int, int], Any]
    apply: Callable[[Any, jax.Array], jax.Array]
    reads_state: bool = True


POLICIES: Registry[Callable[..., Policy]] = Registry("policy")


def make_policy(name: str, options: Mapping[str, Any] | None = None) -> Policy:
    """The policy `name` with its options (UnknownNameError / ConfigError for bad ones)."""
    factory = POLICIES.get(name)
    try:
        return factory(**dict(options or {}))
    except TypeError as error:
        raise ConfigError(f"policy {name!r}: bad options {dict(options or {})}: {error}") from None


def policy_rows(obs: jax.Array, per_example: bool) -> jax.Array:
    """Observations as policy input rows: per example (..., B, K, F) -> (..., B, K * F)."""
    return obs.reshape(obs.shape[:-2] + (-1,)) if per_example else obs


def _logit(probability: float) -> float:
    if not 0.0 < probability < 1.0:
        raise ConfigError(f"initial_probability must be in (0, 1), got {probability}")
    return math.log(probability / (1.0 - probability))


@POLICIES.register("logistic")
def logistic_policy(initial_probability: float = 0.5) -> Policy:
    """`sigmoid(W s + b)` per teacher (Yuan et al. 2021): W (D, K) starts at 0, so every teacher
    starts selected with `initial_probability`."""
    bias = _logit(initial_probability)

    def init(key, observation_size: int, num_teachers: int):
        del key
        return {"w": jnp.zeros((observation_size, num_teachers)), "b": jnp.full((num_teachers,), bias)}

    def apply(params, rows):
        return rows @ params["w"] + params["b"]

    return Policy("logistic", init, apply)


@POLICIES.register("mlp")
def mlp_policy(hidden: tuple[int, ...] | list[int] = (32,), initial_probability: float = 0.5) -> Policy:
    """ReLU MLP D -> hidden... -> K; the output layer starts at 0 (every teacher starts selected
    with `initial_probability`, whatever the observation)."""
    hidden = tuple(int(h) for h in hidden)
    if not hidden or min(hidden) < 1:
        raise ConfigError(f"mlp policy hidden sizes must be positive and non-empty, got {hidden}")
    bias = _logit(initial_probability)

    def init(key, observation_size: int, num_teachers: int):
        sizes = (observation_size,) + hidden
        keys = jax.random.split(key, len(hidden))
        params = {}
        for i, (k, fan_in, fan_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
            params[f"hidden_{i}"] = {"w": jax.nn.initializers.lecun_normal()(k, (fan_in, fan_out)),
                                     "b": jnp.zeros((fan_out,))}
        params["out"] = {"w": jnp.zeros((hidden[-1], num_teachers)), "b": jnp.full((num_teachers,), bias)}
        return params

    def apply(params, rows):
        h = rows
        for i in range(len(hidden)):
            h = jax.nn.relu(h @ params[f"hidden_{i}"]["w"] + params[f"hidden_{i}"]["b"])
        return h @ params["out"]["w"] + params["out"]["b"]

    return Policy("mlp", init, apply)


def teacher_rows(rows: jax.Array, num_teachers: int) -> jax.Array:
    """Observation rows as one row of 9 features per teacher, (..., K, 9): a batch-level row
    (..., 5 K + 4) gives teacher k's five features followed by the four shared ones; a
    per-example row (..., 9 K) is already in that order (for K = 1 the two layouts coincide)."""
    per_teacher = len(TEACHER_FEATURES) + len(SHARED_FEATURES)
    if rows.shape[-1] == per_teacher * num_teachers:
        return rows.reshape(rows.shape[:-1] + (num_teachers, per_teacher))
    split = len(TEACHER_FEATURES) * num_teachers
    teacher = rows[..., :split].reshape(rows.shape[:-1] + (num_teachers, len(TEACHER_FEATURES)))
    shared = jnp.broadcast_to(rows[..., None, split:], teacher.shape[:-1] + (len(SHARED_FEATURES),))
    return jnp.concatenate([teacher, shared], axis=-1)


@POLICIES.register("teacher_logistic")
def teacher_logistic_policy(initial_probability: float = 0.5, clip: float = 3.0) -> Policy:
    """`sigmoid(b_k + mean_f(w_kf z_kf))` per teacher k, where z_k are teacher k's own nine features
    (its five and the four shared ones), standardised by running statistics kept in the
    parameters (`mean`, `scale`; not trained: gradients stop there) and clipped to +-clip.

    Standardising makes the bias b_k the selection at an average state and w_k its dependence on
    the state, so a w that drifts on noise does not shift the mean selection; it is the default
    policy of the joint selector (`mtkd.agents.joint`)."""
    bias = _logit(initial_probability)
    if not clip > 0:
        raise ConfigError(f"teacher_logistic clip must be > 0, got {clip}")
    features = len(TEACHER_FEATURES) + len(SHARED_FEATURES)

    def init(key, observation_size: int, num_teachers: int):
        del key, observation_size
        return {"w": jnp.zeros((num_teachers, features)), "b": jnp.full((num_teachers,), bias),
                "mean": jnp.zeros((num_teachers, features)), "scale": jnp.ones((num_teachers, features))}

    def apply(params, rows):
        x = teacher_rows(rows, params["b"].shape[0])
        z = (x - jax.lax.stop_gradient(params["mean"])) / jax.lax.stop_gradient(params["scale"])
        # The state term is a mean over the features, so that one optimizer step on w moves a
        # logit no further than one on b: the bias sets the selection, the state adjusts it.
        return jnp.mean(jnp.clip(z, -clip, clip) * params["w"], axis=-1) + params["b"]

    return Policy("teacher_logistic", init, apply)


@POLICIES.register("teacher_bias")
def teacher_bias_policy(initial_probability: float = 0.5) -> Policy:
    """`sigmoid(b_k)`: one logit per teacher, whatever the state. What the population selector
    (`mtkd.agents.population`) learns: its credit is each teacher's effect on the final student over
    whole runs, one number per teacher, so there is no per-state signal to fit a state term to."""
    bias = _logit(initial_probability)

    def init(key, observation_size: int, num_teachers: int):
        del key, observation_size
        return {"b": jnp.full((num_teachers,), bias)}

    def apply(params, rows):
        return jnp.broadcast_to(params["b"], rows.shape[:-1] + params["b"].shape)

    return Policy("teacher_bias", init, apply, reads_state=False)
