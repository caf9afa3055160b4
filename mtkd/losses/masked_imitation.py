"""Detection-style masked feature imitation (docs/methods.md, Distillation losses; seed 000).

`L = sum(mask * (F_t - F_s)^2) / sum(mask)`. The mask builders live in `masks.py`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from mtkd.errors import ConfigError
from mtkd.losses._common import check_same_shape, is_traced


def _expand_mask(mask, features):
    """Mask of shape features.shape[:-1] (no channel axis), [..., 1] or features.shape."""
    shape, fshape = tuple(mask.shape), tuple(features.shape)
    if shape == fshape[:-1]:
        return mask[..., None]
    if shape[:-1] == fshape[:-1] and shape[-1:] in ((1,), fshape[-1:]):
        return mask
    raise ConfigError(
        f"masked_imitation: mask shape {shape} must be {fshape[:-1]}, "
        f"{fshape[:-1] + (1,)} or {fshape} for features {fshape}"
    )


def masked_imitation(student_features, teacher_features, mask):
    """Scalar: `sum(mask * (F_t - F_s)^2) / sum(mask)`.

    Features: (B, H, W, C) (or any (B, ..., C)), equal shapes (the adapter r(.) is applied
    by the caller). mask: (B, H, W), (B, H, W, 1) or (B, H, W, C), weights >= 0.

    The denominator is the sum of the mask *as given*: a per-position mask ((B, H, W) or
    (B, H, W, 1)) counts positions, so the loss is the channel-summed squared error per
    masked position, the usual detection convention; a full (B, H, W, C) mask counts
    elements. A concrete mask that is all zero or has negative entries raises ConfigError;
    under jit (a traced mask) these cannot be checked and an all-zero mask gives 0.
    """
    check_same_shape("masked_imitation", student_features, teacher_features)
    mask = jnp.asarray(mask)
    expanded = _expand_mask(mask, teacher_features)
    if not is_traced(mask):
        # numpy, not jnp: inside a jit trace, jnp ops on a closed-over constant are traced.
        concrete = np.asarray(mask)
        if np.any(concrete < 0):
            raise ConfigError("masked_imitation: mask weights must be >= 0")
        if not np.any(concrete > 0):
            raise ConfigError("masked_imitation: the mask is all zero; nothing to imitate")
    diff = teacher_features - student_features
    total = jnp.sum(mask)
    # Double where: no division by zero, and no NaN gradient from the untaken branch.
    safe_total = jnp.where(total > 0, total, 1.0)
    return jnp.where(total > 0, jnp.sum(expanded * diff * diff) / safe_total, 0.0)
