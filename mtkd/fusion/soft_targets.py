"""Fusing several teachers' softened outputs into one distillation target (docs/methods.md, Distillation objective)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def fuse_soft_targets(teacher_logits: jax.Array, weights: jax.Array, temperature: float):
    """Weighted average of the teachers' tempered softmax outputs.

    teacher_logits: (K, B, C). weights: (B, K) per example (or (K,) for the whole batch),
    non-negative. Returns `(target (B, C), total_weight (B,))`: `target = sum_k mu_k p_k^T /
    sum_k mu_k` where the total weight is positive, and a uniform vector (never used: the
    loss falls back to hard labels) where every teacher is skipped.
    """
    return fuse_probabilities(jax.nn.softmax(teacher_logits / temperature, axis=-1), weights)


def fuse_probabilities(probs: jax.Array, weights: jax.Array):
    """`fuse_soft_targets` of soft targets already computed, probs (K, B, C) (a caller that has
    them cached per example, such as the selection environment, skips the softmax)."""
    weights = jnp.broadcast_to(weights, (probs.shape[1], probs.shape[0]))
    total = weights.sum(axis=1)
    weighted = jnp.einsum("bk,kbc->bc", weights, probs)
    safe_total = jnp.where(total > 0, total, 1.0)
    num_classes = probs.shape[-1]
    target = jnp.where((total > 0)[:, None], weighted / safe_total[:, None], 1.0 / num_classes)
    return target, total
