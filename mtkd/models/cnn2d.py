"""2-D convolutional network for image data sets."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.models.patch_conv import PatchConv
from mtkd.models.layout import require_image
from mtkd.models.architectures import MODELS


@MODELS.register("cnn2d")
class CNN2D(nnx.Module):
    """3x3 convolutions, each block followed by 2x2 average pooling (while the map is larger
    than 2x2), then global average pooling, a hidden layer and a linear head.

    Features: `conv_i` (B, H_i, W_i, channels[i]) and `embedding` (B, hidden).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs,
                 channels: Sequence[int] = (32, 64), hidden: int = 128):
        require_image(tuple(input_shape), "cnn2d")
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) <= 0 or hidden <= 0:
            raise ConfigError(f"cnn2d needs positive channels and hidden, got {channels}, {hidden}")
        in_channels = input_shape[-1]
        convs = []
        for out_channels in channels:
            convs.append(PatchConv(in_channels, out_channels, (3, 3), rngs=rngs))
            in_channels = out_channels
        self.convs = nnx.List(convs)
        self.hidden = nnx.Linear(in_channels, hidden, rngs=rngs)
        self.head = nnx.Linear(hidden, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        h = x
        features = {}
        for i, conv in enumerate(self.convs):
            h = jax.nn.relu(conv(h))
            features[f"conv_{i}"] = h
            if h.shape[1] > 2 and h.shape[2] > 2:
                h = nnx.avg_pool(h, window_shape=(2, 2), strides=(2, 2))
        embedding = jax.nn.relu(self.hidden(jnp.mean(h, axis=(1, 2))))
        features["embedding"] = embedding
        return self.head(embedding), features
