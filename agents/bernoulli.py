"""K independent select/skip decisions, each Bernoulli(sigmoid(logit)).

The log probability is written out with `jax.nn.log_sigmoid` (stable for large |logit|):
`log pi(a) = sum_k a_k log sigmoid(l_k) + (1 - a_k) log sigmoid(-l_k)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtkd.registry import Registry


def bernoulli_log_prob(logits: jax.Array, actions: jax.Array) -> jax.Array:
    """Log probability of 0/1 `actions` under logits, summed over the last axis: (..., K) -> (...)."""
    actions = actions.astype(logits.dtype)
    return jnp.sum(actions * jax.nn.log_sigmoid(logits) + (1.0 - actions) * jax.nn.log_sigmoid(-logits), axis=-1)


def bernoulli_entropy(logits: jax.Array) -> jax.Array:
    """Entropy (nats) summed over the last axis: (..., K) -> (...)."""
    p = jax.nn.sigmoid(logits)
    return -jnp.sum(p * jax.nn.log_sigmoid(logits) + (1.0 - p) * jax.nn.log_sigmoid(-logits), axis=-1)


def sample_actions(key: jax.Array, logits: jax.Array) -> jax.Array:
    """0/1 float32 actions of the shape of `logits`, each 1 with probability sigmoid(logit)."""
    return jax.random.bernoulli(key, jax.nn.sigmoid(logits)).astype(jnp.float32)


def greedy_actions(logits: jax.Array) -> jax.Array:
    """1 where the selection is more likely than not (logit > 0)."""
    return (logits > 0).astype(jnp.float32)


def expected_weights(logits: jax.Array) -> jax.Array:
    """The selection probabilities themselves, used as fusion weights (deterministic)."""
    return jax.nn.sigmoid(logits)


# How a policy's logits become the weights a student trains with: `mode(key, logits) -> weights`
# of the shape of `logits`. Greedy and expected are deterministic (the key is unused).
ACTION_MODES = Registry("action mode")
ACTION_MODES.add("greedy", lambda key, logits: greedy_actions(logits))
ACTION_MODES.add("expected", lambda key, logits: expected_weights(logits))
ACTION_MODES.add("sample", sample_actions)
