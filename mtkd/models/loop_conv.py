"""A 2-D convolution whose kernel gradient is a matrix product over image patches, for training
inside `lax.scan` on the CPU.

XLA's CPU backend runs the kernel-gradient convolution of a training step about 50x slower when
it sits in a loop body than when it does not (jax-ml/jax#12868; measured here on a 3x3, 64-channel
convolution at 32x32, batch 64: 27 s against 0.5 s for two steps). mtkd runs every epoch as one
`lax.scan`, so on the CPU this convolution computes that gradient as patches (themselves a
convolution, fast in a loop) times the output's cotangent. The forward pass and the input's
gradient are `lax.conv_general_dilated`'s own; on other backends nothing changes."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

NHWC = ("NHWC", "HWIO", "NHWC")


def loop_friendly_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                       dimension_numbers=None, feature_group_count: int = 1, precision=None, **kwargs):
    """`lax.conv_general_dilated` (the signature `nnx.Conv` calls), with the patch-product kernel
    gradient on the CPU for undilated NHWC convolutions with explicit padding."""
    plain = (jax.default_backend() != "cpu" or any(d != 1 for d in (lhs_dilation or ()))
             or any(d != 1 for d in (rhs_dilation or ())) or isinstance(padding, str) or kwargs.get("preferred_element_type")
             or lhs.ndim != 4 or lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
             != lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC))
    if plain:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                        feature_group_count=feature_group_count, precision=precision, **kwargs)
    return _conv(lhs, rhs, tuple(int(s) for s in window_strides), tuple((int(a), int(b)) for a, b in padding),
                 int(feature_group_count), precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv(x, kernel, strides, padding, groups, precision):
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=NHWC,
                                    feature_group_count=groups, precision=precision)


def _forward(x, kernel, strides, padding, groups, precision):
    return _conv(x, kernel, strides, padding, groups, precision), (x, kernel)


def _backward(strides, padding, groups, precision, residuals, cotangent):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda inputs: lax.conv_general_dilated(
        inputs, kernel, strides, padding, dimension_numbers=NHWC, feature_group_count=groups,
        precision=precision), x)
    (input_grad,) = input_vjp(cotangent)
    return input_grad, kernel_gradient(x, cotangent, kernel.shape, strides, padding, groups, precision)


def kernel_gradient(x, cotangent, kernel_shape, strides, padding, groups: int, precision=None):
    """d(sum(cotangent * conv(x, k))) / dk, (kh, kw, C / groups, O), as a product of x's patches
    (N, H', W', C * kh * kw, channel-major) and the cotangent (N, H', W', O), group by group."""
    kh, kw, per_group_in, out = kernel_shape
    patches = lax.conv_general_dilated_patches(x, (kh, kw), strides, padding, dimension_numbers=NHWC,
                                               precision=precision)
    n, h, w, _ = patches.shape
    patches = patches.reshape(n, h, w, groups, per_group_in, kh, kw)
    grouped = cotangent.reshape(n, h, w, groups, out // groups)
    grad = jnp.einsum("nhwgcij,nhwgo->ijcgo", patches, grouped, precision=precision)
    return grad.reshape(kh, kw, per_group_in, out).astype(x.dtype)


_conv.defvjp(_forward, _backward)

__all__ = ["kernel_gradient", "loop_friendly_conv"]
