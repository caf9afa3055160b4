"""Data augmentation inside the jitted training step: each batch is transformed from the step's
own key, so a run is deterministic under its seed and costs no host work.

An augmentation is `augment(key, x (B, ...)) -> x` of the same shape."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtkd.registry import Registry

AUGMENTATIONS: Registry = Registry("augmentation")

CROP_PADDING = 4


def crop_flip(key, x, padding: int = CROP_PADDING):
    """The CIFAR protocol's RandomCrop(size, padding=4) and RandomHorizontalFlip(), per example:
    the (B, H, W, C) images padded by `padding` zeros on each side, an H x W window at a uniform
    offset in [0, 2 * padding] on each axis, then mirrored left-right with probability 1/2.

    The zeros are zeros of the inputs as the model reads them (after mtkd's per-channel
    normalisation, the channel mean), where torchvision pads the raw image with black."""
    if x.ndim != 4:
        raise ValueError(f"crop_flip takes (batch, height, width, channels) images, got shape {x.shape}")
    batch, height, width, _ = x.shape
    offset_key, flip_key = jax.random.split(key)
    offsets = jax.random.randint(offset_key, (batch, 2), 0, 2 * padding + 1)
    flips = jax.random.bernoulli(flip_key, 0.5, (batch,))
    padded = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))

    def one(image, offset, flip):
        window = jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, image.shape[-1]))
        return jnp.where(flip, window[:, ::-1], window)

    return jax.vmap(one)(padded, offsets, flips)


AUGMENTATIONS.add("crop_flip", crop_flip)


def augmentation(name: str):
    """The registered augmentation `name`; None for "" (no augmentation)."""
    return AUGMENTATIONS.get(name) if name else None


__all__ = ["AUGMENTATIONS", "augmentation", "crop_flip"]
