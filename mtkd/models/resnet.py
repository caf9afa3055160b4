"""A small residual network, 1-D or 2-D by the rank of the input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.models.patch_conv import PatchConv
from mtkd.models.layout import as_sequence, conv_layout
from mtkd.models.architectures import MODELS


class ResidualBlock(nnx.Module):
    """conv -> LayerNorm -> relu -> conv -> LayerNorm, plus the identity, then relu.

    LayerNorm rather than BatchNorm keeps the model free of running statistics, so the student's
    state is parameters alone and vmapped seeds need no mutable collections.
    """

    def __init__(self, channels: int, kernel: tuple[int, ...], *, rngs: nnx.Rngs):
        self.conv1 = PatchConv(channels, channels, kernel, rngs=rngs)
        self.norm1 = nnx.LayerNorm(channels, rngs=rngs)
        self.conv2 = PatchConv(channels, channels, kernel, rngs=rngs)
        self.norm2 = nnx.LayerNorm(channels, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.norm1(self.conv1(x)))
        return jax.nn.relu(x + self.norm2(self.conv2(h)))


@MODELS.register("resnet")
class ResNet(nnx.Module):
    """Stem convolution, `blocks` residual blocks of `channels` channels, global average pooling,
    linear head. 1-D convolutions (kernel `kernel_size`) for (L,) or (L, C) inputs, 3x3 for images.

    Features: `block_i` (B, *spatial, channels) and `embedding` (B, channels).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs,
                 channels: int = 32, blocks: int = 2, kernel_size: int = 5):
        if channels <= 0 or blocks < 0 or kernel_size <= 0:
            raise ConfigError(f"resnet needs positive channels and kernel_size and blocks >= 0, "
                              f"got {channels}, {blocks}, {kernel_size}")
        self.input_shape = tuple(input_shape)
        self.is_image, kernel, in_channels = conv_layout(self.input_shape, kernel_size)
        self.stem = PatchConv(in_channels, channels, kernel, rngs=rngs)
        self.blocks = nnx.List([ResidualBlock(channels, kernel, rngs=rngs) for _ in range(blocks)])
        self.head = nnx.Linear(channels, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        h = x if self.is_image else as_sequence(x, self.input_shape)
        h = jax.nn.relu(self.stem(h))
        features = {}
        for i, block in enumerate(self.blocks):
            h = block(h)
            features[f"block_{i}"] = h
        spatial_axes = tuple(range(1, h.ndim - 1))
        embedding = jnp.mean(h, axis=spatial_axes)
        features["embedding"] = embedding
        return self.head(embedding), features
