"""Attention transfer (Zagoruyko & Komodakis 2017; docs/methods.md, Distillation losses).

Feature layout is channels-last with at least one spatial axis: (B, H, W, C) images or
(B, L, C) 1-D feature maps (any (B, *spatial, C) works). Plain (B, D) vectors have no
spatial axis to attend over and are refused with a ConfigError.
"""

from __future__ import annotations

import jax.numpy as jnp

from mtkd.errors import ConfigError
from mtkd.losses._common import check_positive, safe_pow_of_sq

# Norms below this are treated as this (all-zero maps give Q = 0 instead of NaN).
_EPS = 1e-12


def _check_spatial(features, what: str) -> None:
    if features.ndim < 3:
        raise ConfigError(
            f"{what}: features must be (B, H, W, C) or (B, L, C) with a spatial axis, "
            f"got {tuple(features.shape)}"
        )


def attention_map(features, p=2):
    """(B, *spatial, C) -> (B, prod(spatial)): `Q = vec(sum_c |F_c|^p) / ||vec(...)||_2`.

    Per example, the normalisation divides by `max(||A||_2, 1e-12)`, so Q is unchanged by
    any positive rescaling of the features and an all-zero map gives Q = 0. p > 0.
    """
    _check_spatial(features, "attention_map")
    check_positive("p", p)
    a = jnp.sum(jnp.abs(features) ** p, axis=-1).reshape(features.shape[0], -1)
    norm = safe_pow_of_sq(jnp.sum(a * a, axis=-1, keepdims=True), 0.5)
    return a / jnp.maximum(norm, _EPS)


def attention_transfer(student_features, teacher_features, p=2):
    """Scalar: `mean_b ||Q_s(b) - Q_t(b)||_2^2` (squared, no beta/2 factor).

    Batch and spatial sizes must match (ConfigError naming both shapes); channel counts may
    differ, since the channel axis is summed out.
    """
    _check_spatial(student_features, "attention_transfer")
    _check_spatial(teacher_features, "attention_transfer")
    if student_features.shape[:-1] != teacher_features.shape[:-1]:
        raise ConfigError(
            "attention_transfer: batch and spatial sizes must match: student "
            f"{tuple(student_features.shape)}, teacher {tuple(teacher_features.shape)}"
        )
    diff = attention_map(student_features, p) - attention_map(teacher_features, p)
    return jnp.mean(jnp.sum(diff * diff, axis=-1))
