"""Flow of solution procedure (FSP) matrices (Yim et al. 2017; docs/methods.md, Distillation losses)."""

from __future__ import annotations

import math

import jax.numpy as jnp

from mtkd.errors import ConfigError


def fsp_matrix(f1, f2):
    """(B, H, W, M), (B, H, W, N) -> (B, M, N) FSP matrices.

    `G[b, i, j] = sum_{h,w} f1[b, h, w, i] * f2[b, h, w, j] / (H * W)`.

    Any (B, *spatial, C) layout works, e.g. (B, L, C). Batch and spatial sizes of f1 and f2
    must match (ConfigError naming both shapes).
    """
    if f1.ndim < 3 or f1.shape[:-1] != f2.shape[:-1]:
        raise ConfigError(
            "fsp_matrix: f1 and f2 must be (B, H, W, C) maps with the same batch and spatial "
            f"sizes, got {tuple(f1.shape)} and {tuple(f2.shape)}"
        )
    b = f1.shape[0]
    positions = math.prod(f1.shape[1:-1])
    g = jnp.einsum("bpi,bpj->bij", f1.reshape(b, positions, -1), f2.reshape(b, positions, -1))
    return g / positions


def _pair(pair, who: str):
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ConfigError(f"fsp: {who}_pair must be a tuple (f1, f2) of two feature maps")
    return pair


def fsp(student_pair, teacher_pair):
    """Scalar: mean over (b, i, j) of `(G_s - G_t)^2`, G = fsp_matrix(*pair).

    Each pair is (f1, f2) of two layers with equal spatial size; the student's and the
    teacher's FSP matrices must have the same (B, M, N) shape (ConfigError otherwise).
    """
    g_s = fsp_matrix(*_pair(student_pair, "student"))
    g_t = fsp_matrix(*_pair(teacher_pair, "teacher"))
    if g_s.shape != g_t.shape:
        raise ConfigError(
            f"fsp: student FSP matrix {tuple(g_s.shape)} does not match teacher "
            f"{tuple(g_t.shape)} (channel counts must agree)"
        )
    diff = g_t - g_s
    return jnp.mean(diff * diff)
