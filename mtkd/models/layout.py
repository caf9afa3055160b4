"""Reshaping inputs to the layout a convolutional network expects."""

from __future__ import annotations

import jax

from mtkd.errors import ConfigError


def as_sequence(x: jax.Array, input_shape: tuple[int, ...]) -> jax.Array:
    """(B, L) -> (B, L, 1); (B, L, C) unchanged; images (B, H, W, C) -> (B, H*W, C)."""
    if len(input_shape) == 1:
        return x[..., None]
    if len(input_shape) == 2:
        return x
    return x.reshape(x.shape[0], -1, input_shape[-1])


def sequence_shape(input_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(input_shape) == 1:
        return input_shape[0], 1
    if len(input_shape) == 2:
        return input_shape
    if len(input_shape) == 3:
        return input_shape[0] * input_shape[1], input_shape[2]
    raise ConfigError(f"cannot read inputs of shape {input_shape} as a sequence")


def require_image(input_shape: tuple[int, ...], arch: str) -> None:
    if len(input_shape) != 3:
        raise ConfigError(f"model {arch!r} needs image inputs (H, W, C), the data set gives {input_shape}")


def conv_layout(input_shape: tuple[int, ...], kernel_size: int) -> tuple[bool, tuple[int, ...], int]:
    """(is_image, kernel, in_channels) of a network that convolves images with 3x3 kernels and
    sequences ((L,) or (L, C) inputs) with `kernel_size` along the length."""
    if len(input_shape) == 3:
        return True, (3, 3), input_shape[-1]
    return False, (kernel_size,), sequence_shape(input_shape)[1]
