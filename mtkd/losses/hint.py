"""FitNets hint loss (Romero et al. 2015; docs/methods.md, Distillation losses).

The trainable adapter r(.) that maps student features to the teacher's shape is a model
component, not part of the loss: pass the adapted student features here.
"""

from __future__ import annotations

import jax.numpy as jnp

from mtkd.losses._common import check_choice, check_same_shape

NORMS = ("l2", "l1")


def hint(student_features, teacher_features, norm="l2"):
    """Scalar: mean over all elements of `(t - s)^2` (norm="l2") or `|t - s|` (norm="l1").

    Features: any shape, e.g. (B, H, W, C) or (B, D); the two shapes must match exactly
    (ConfigError naming both otherwise). The mean over all elements equals the batch mean of
    the per-example means.
    """
    check_choice("norm", norm, NORMS)
    check_same_shape("hint", student_features, teacher_features)
    diff = teacher_features - student_features
    return jnp.mean(diff * diff) if norm == "l2" else jnp.mean(jnp.abs(diff))
