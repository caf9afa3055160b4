"""Per-example, per-teacher quantities that the published weighting methods are built from.

All take teacher logits (K, B, C) and return (B, K) arrays, examples first, as strategies do.
They carry no gradient into the weights (the methods that use them detach them too).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# The temperature that EBKD, AE-KD, CA-MKD, MMKD and MTKD-RL all use for their KD terms.
PUBLISHED_TEMPERATURE = 4.0


def teacher_cross_entropy(teacher_logits: jax.Array, labels: jax.Array) -> jax.Array:
    """`CE_ik`: teacher k's cross-entropy on example i's label, at temperature 1: (B, K)."""
    log_probs = jax.nn.log_softmax(teacher_logits, axis=-1)
    return -jnp.take_along_axis(log_probs, labels[None, :, None], axis=-1)[..., 0].T


def teacher_entropy(teacher_logits: jax.Array) -> jax.Array:
    """`H_ik`: the entropy of softmax(z_ik) at temperature 1: (B, K)."""
    log_probs = jax.nn.log_softmax(teacher_logits, axis=-1)
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1).T


def teacher_student_kl(teacher_logits: jax.Array, student_logits: jax.Array,
                       temperature: float = PUBLISHED_TEMPERATURE) -> jax.Array:
    """`KL_ik = T^2 KL(p_k^T || p_s^T)` per example and teacher: (B, K)."""
    log_teacher = jax.nn.log_softmax(teacher_logits / temperature, axis=-1)
    log_student = jax.nn.log_softmax(student_logits / temperature, axis=-1)
    kl = jnp.sum(jnp.exp(log_teacher) * (log_teacher - log_student[None]), axis=-1)
    return temperature**2 * kl.T


def ca_mkd_weights(cross_entropy: jax.Array) -> jax.Array:
    """CA-MKD's confidence-aware weights from (B, K) cross-entropies:
    `(1 - softmax_k(CE_ik)) / (K - 1)`, which sum to 1 over teachers (one teacher: weight 1)."""
    num_teachers = cross_entropy.shape[-1]
    if num_teachers == 1:
        return jnp.ones_like(cross_entropy)
    return (1.0 - jax.nn.softmax(cross_entropy, axis=-1)) / (num_teachers - 1)
