"""Mask builders for `masked_imitation` (docs/methods.md, Distillation losses).

All return constants (wrapped in stop_gradient): the mask says where to imitate, it is not
itself trained. Feature layout is channels-last: (B, H, W, C) (or (B, L, C)).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mtkd.errors import ConfigError
from mtkd.losses._common import check_same_shape, check_temperature, concrete_float


def box_mask(boxes, height, width, background_weight=0.0, normalized=False):
    """(B, N, 4) boxes -> (B, height, width) mask: 1 on foreground, background_weight elsewhere.

    Boxes are (x1, y1, x2, y2) in feature-map cells (x along width), or fractions of the
    width/height when normalized=True. Cell (h, w) is foreground when its centre
    (w + 0.5, h + 0.5) lies in some box (borders included). Boxes with x2 <= x1 or
    y2 <= y1 are ignored, so a batch can be padded to a common N with e.g. zeros.
    background_weight in [0, 1] (ConfigError otherwise); 0 keeps only the foreground.
    """
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"box_mask: {name} must be a positive int, got {value!r}")
    bg = concrete_float(background_weight)
    if bg is not None and not 0.0 <= bg <= 1.0:
        raise ConfigError(
            f"box_mask: background_weight must be in [0, 1], got {background_weight!r}"
        )
    boxes = jnp.asarray(boxes)
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ConfigError(f"box_mask: boxes must have shape (B, N, 4), got {tuple(boxes.shape)}")
    boxes = boxes.astype(jnp.result_type(float))
    if normalized:
        boxes = boxes * jnp.array([width, height, width, height], dtype=boxes.dtype)
    x1, y1, x2, y2 = (boxes[..., k][:, :, None, None] for k in range(4))  # (B, N, 1, 1)
    cy = (jnp.arange(height) + 0.5)[None, None, :, None]
    cx = (jnp.arange(width) + 0.5)[None, None, None, :]
    valid = (x2 > x1) & (y2 > y1)
    inside = valid & (cx >= x1) & (cx <= x2) & (cy >= y1) & (cy <= y2)  # (B, N, H, W)
    fg = jnp.any(inside, axis=1)
    return jax.lax.stop_gradient(jnp.where(fg, 1.0, background_weight).astype(boxes.dtype))


def difference_mask(student_features, teacher_features, top_fraction):
    """(B, H, W, C) pair -> (B, H, W) mask: 1 at the positions where teacher and student
    disagree most, 0 elsewhere.

    Disagreement per position is `sum_c (F_t - F_s)^2`. Per example, exactly
    k = max(1, ceil(top_fraction * H * W)) positions are marked (ties broken by position
    order, as lax.top_k does). top_fraction in (0, 1] (ConfigError otherwise).
    """
    check_same_shape("difference_mask", student_features, teacher_features)
    if student_features.ndim < 3:
        raise ConfigError(
            f"difference_mask: features must be (B, H, W, C), got {tuple(student_features.shape)}"
        )
    frac = concrete_float(top_fraction)
    if frac is None:
        raise ConfigError("difference_mask: top_fraction must be a python float (it fixes k)")
    if not 0.0 < frac <= 1.0:
        raise ConfigError(f"difference_mask: top_fraction must be in (0, 1], got {top_fraction!r}")
    spatial = student_features.shape[1:-1]
    b, positions = student_features.shape[0], math.prod(spatial)
    # The small slack keeps e.g. 0.3 * 10 = 3.0000000000000004 from becoming 4.
    k = max(1, min(positions, math.ceil(frac * positions - 1e-9)))
    diff = teacher_features - student_features
    score = jnp.sum(diff * diff, axis=-1).reshape(b, positions)
    _, top = jax.lax.top_k(score, k)
    mask = jnp.zeros((b, positions), score.dtype).at[jnp.arange(b)[:, None], top].set(1.0)
    return jax.lax.stop_gradient(mask.reshape((b,) + spatial))


def attention_mask(teacher_features, temperature=0.5):
    """(B, H, W, C) teacher features -> (B, H, W, C) spatial x channel attention mask.

    spatial[b, h, w] = H*W * softmax over positions of mean_c |F| / T;
    channel[b, c]    = C   * softmax over channels  of mean_hw |F| / T;
    mask = spatial[..., None] * channel[:, None, None, :].
    The scale factors make each factor average 1, so the mask sums to B*H*W*C and
    masked_imitation with it is a re-weighted mean squared error. This is the formulation of
    Focal and Global Distillation (Yang et al. 2022, T = 0.5 there), chosen because the
    seed does not give one. temperature > 0 (ConfigError otherwise).
    """
    check_temperature(temperature)
    if teacher_features.ndim < 3:
        raise ConfigError(
            f"attention_mask: features must be (B, H, W, C), got {tuple(teacher_features.shape)}"
        )
    b, c = teacher_features.shape[0], teacher_features.shape[-1]
    spatial = teacher_features.shape[1:-1]
    positions = math.prod(spatial)
    mag = jnp.abs(teacher_features).reshape(b, positions, c)
    s_att = positions * jax.nn.softmax(jnp.mean(mag, axis=-1) / temperature, axis=-1)
    c_att = c * jax.nn.softmax(jnp.mean(mag, axis=1) / temperature, axis=-1)
    mask = s_att[:, :, None] * c_att[:, None, :]
    return jax.lax.stop_gradient(mask.reshape(teacher_features.shape))
