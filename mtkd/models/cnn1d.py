"""1-D convolutional network, the architecture that separates MNIST-1D well."""

from __future__ import annotations

from typing import Sequence

import jax
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.models.patch_conv import PatchConv
from mtkd.models.layout import as_sequence, sequence_shape
from mtkd.models.architectures import MODELS


@MODELS.register("cnn1d")
class CNN1D(nnx.Module):
    """Convolutions over the length axis (the first one at stride 1, the rest at `stride`),
    then flatten and a linear head.

    Inputs (B, L) are read as one channel; images (B, H, W, C) as sequences of length H*W.
    Features: `conv_i` (B, L_i, channels[i]) and `embedding` (B, L_last * channels[-1]).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs,
                 channels: Sequence[int] = (32, 32, 32), kernel_size: int = 5, stride: int = 2):
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) <= 0 or kernel_size <= 0 or stride <= 0:
            raise ConfigError(f"cnn1d needs positive channels, kernel_size and stride, got "
                              f"{channels}, {kernel_size}, {stride}")
        self.input_shape = tuple(input_shape)
        length, in_channels = sequence_shape(self.input_shape)
        convs = []
        for i, out_channels in enumerate(channels):
            step = 1 if i == 0 else stride
            convs.append(PatchConv(in_channels, out_channels, (kernel_size,), stride=step, rngs=rngs))
            length = -(-length // step)
            in_channels = out_channels
        self.convs = nnx.List(convs)
        self.head = nnx.Linear(length * in_channels, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        h = as_sequence(x, self.input_shape)
        features = {}
        for i, conv in enumerate(self.convs):
            h = jax.nn.relu(conv(h))
            features[f"conv_{i}"] = h
        embedding = h.reshape(h.shape[0], -1)
        features["embedding"] = embedding
        return self.head(embedding), features
