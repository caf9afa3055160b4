"""DIST: distillation from a stronger teacher by matching correlations, not values (Huang et al.,
NeurIPS 2022; docs/methods.md, Distillation losses).

With `p = softmax(z / T)` of student and teacher (B, C), the inter-class relation compares each
example's class distribution (rows) and the intra-class relation each class's scores across the
batch (columns), both by `1 - Pearson correlation`, so a student matching the teacher's ranking of
classes and of examples is not pushed to match its exact (over-confident) values.
`dist = T^2 * (beta * mean_rows + gamma * mean_columns)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtkd.errors import ConfigError
from mtkd.losses._common import check_logits, check_nonnegative, check_temperature

EPS = 1e-8  # keeps a constant row or column (zero variance) finite, its gradient too


def pearson_distance(a, b, axis: int):
    """`1 - corr(a, b)` along `axis` (the other axis kept)."""
    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    # sqrt(|a|^2 |b|^2 + eps), not |a| |b| + eps: the norm's gradient at a zero vector is NaN.
    scale = jnp.sqrt(jnp.sum(a * a, axis=axis) * jnp.sum(b * b, axis=axis) + EPS)
    correlation = jnp.sum(a * b, axis=axis) / scale
    return 1.0 - correlation


def dist(student_logits, teacher_logits, beta=1.0, gamma=1.0, temperature=1.0):
    """Scalar DIST loss; logits (B, C) with B >= 2 (the intra-class term needs a batch)."""
    check_logits(student_logits, teacher_logits)
    check_temperature(temperature)
    check_nonnegative("beta", beta)
    check_nonnegative("gamma", gamma)
    if student_logits.shape[0] < 2:
        raise ConfigError(f"dist needs a batch of at least 2 examples, got {student_logits.shape[0]}")
    p_s = jax.nn.softmax(student_logits / temperature, axis=-1)
    p_t = jax.nn.softmax(teacher_logits / temperature, axis=-1)
    inter = jnp.mean(pearson_distance(p_s, p_t, axis=1))
    intra = jnp.mean(pearson_distance(p_s, p_t, axis=0))
    return temperature**2 * (beta * inter + gamma * intra)
