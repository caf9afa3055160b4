"""Convolution written as patch extraction plus one matrix product ("im2col").

Why not `nnx.Conv`: on XLA:CPU a convolution inside a `lax.scan` (our training epoch) ran
about 15x slower than the same convolution outside it, while matrix products keep their speed
(measured on 2 cores: 0.63 s vs 0.04 s for 28 steps of a 32-channel 1-D conv). Patches plus a
matmul compute the same 'SAME'-padded convolution and are fast on CPU and accelerators alike.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


def extract_patches(x: jax.Array, kernel: tuple[int, ...], stride: int = 1) -> jax.Array:
    """'SAME'-padded patches of a channels-last map.

    x: (B, *spatial, C) with one or two spatial axes. Returns (B, *out_spatial, prod(kernel) * C),
    out_spatial = ceil(spatial / stride), patch entries ordered (kernel offsets..., channel).
    """
    spatial = x.shape[1:-1]
    pads = []
    for size, k in zip(spatial, kernel):
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    slices = []
    if len(spatial) == 1:
        out = -(-spatial[0] // stride)
        for i in range(kernel[0]):
            slices.append(xp[:, i: i + (out - 1) * stride + 1: stride, :])
    else:
        out_h, out_w = (-(-s // stride) for s in spatial)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                slices.append(xp[:, i: i + (out_h - 1) * stride + 1: stride, j: j + (out_w - 1) * stride + 1: stride, :])
    return jnp.concatenate(slices, axis=-1)


class PatchConv(nnx.Module):
    """A 'SAME' convolution with kernel (k,) or (kh, kw), stride, and bias, over channels-last maps.

    Numerically equal to `jax.lax.conv_general_dilated` with the kernel reshaped to
    (prod(kernel) * in_channels, out_channels) (tested).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, ...], *,
                 stride: int = 1, rngs: nnx.Rngs):
        self.kernel_size = tuple(int(k) for k in kernel)
        self.stride = int(stride)
        fan_in = math.prod(self.kernel_size) * in_channels
        self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (fan_in, out_channels)))
        self.bias = nnx.Param(jnp.zeros((out_channels,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return extract_patches(x, self.kernel_size, self.stride) @ self.kernel[...] + self.bias[...]
