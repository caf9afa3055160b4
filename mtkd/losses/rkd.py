"""Relational knowledge distillation (Park et al. 2019; docs/methods.md, Distillation losses).

Embeddings are (B, D) (any (B, ...) input is flattened per example); student and teacher
may have different D. Both losses use the Huber loss with delta 1 (= smooth L1).
Coincident points (and the diagonal) go through safe norms: value 0, gradient finite.
The teacher is not wrapped in stop_gradient: a frozen teacher gets no update anyway, and
mutual-learning callers may want gradients on both sides.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from mtkd.losses._common import as_embeddings, pairwise_sq_distances, safe_pow_of_sq

# Lower bound on the mean distance, so an all-coincident batch gives psi = 0, not NaN.
_EPS = 1e-12


def distance_potential(emb):
    """(B, D) -> (B, B): `||e_i - e_j|| / mu`, mu = mean distance over pairs i != j.

    Diagonal entries are 0 (and are excluded from mu and from the loss).
    """
    b = emb.shape[0]
    d = safe_pow_of_sq(pairwise_sq_distances(emb), 0.5)
    mu = jnp.sum(d) / (b * (b - 1))  # the diagonal is exactly 0
    return d / jnp.maximum(mu, _EPS)


def rkd_distance(student_emb, teacher_emb):
    """Scalar: Huber(psi_D(s), psi_D(t)) averaged over the B(B-1) ordered pairs i != j.

    Needs B >= 2 (ConfigError otherwise). Invariant to rotations and scalings of each side.
    """
    s, t = as_embeddings(student_emb, teacher_emb, 2, "rkd_distance")
    b = s.shape[0]
    off_diag = ~jnp.eye(b, dtype=bool)
    h = optax.huber_loss(distance_potential(s), distance_potential(t), delta=1.0)
    return jnp.sum(jnp.where(off_diag, h, 0.0)) / (b * (b - 1))


def angle_potential(emb):
    """(B, D) -> (B, B, B): entry [j, i, k] = cos of the angle at e_j formed by e_i, e_j, e_k.

    Unit vectors use a safe norm: a zero difference (i == j or coincident points) gives a
    zero vector and cos 0, with finite gradients. Only i, j, k all distinct enter the loss.
    """
    diff = emb[None, :, :] - emb[:, None, :]  # [j, i] = e_i - e_j
    norm = safe_pow_of_sq(jnp.sum(diff * diff, axis=-1, keepdims=True), 0.5)
    unit = diff / jnp.where(norm > 0, norm, 1.0)
    return jnp.einsum("jid,jkd->jik", unit, unit)


def _distinct_triplets(b: int):
    i = jnp.arange(b)
    ne = i[:, None] != i[None, :]
    return ne[:, :, None] & ne[:, None, :] & ne[None, :, :]


def rkd_angle(student_emb, teacher_emb):
    """Scalar: Huber(psi_A(s), psi_A(t)) averaged over the B(B-1)(B-2) ordered triplets
    with i, j, k all distinct. Needs B >= 3 (ConfigError otherwise). Memory is O(B^3 + B^2 D).
    """
    s, t = as_embeddings(student_emb, teacher_emb, 3, "rkd_angle")
    b = s.shape[0]
    h = optax.huber_loss(angle_potential(s), angle_potential(t), delta=1.0)
    return jnp.sum(jnp.where(_distinct_triplets(b), h, 0.0)) / (b * (b - 1) * (b - 2))
