"""A network with a classifier after every stage, for "Be Your Own Teacher" self-distillation.

Zhang et al., ICCV 2019 (docs/methods.md, Deep mutual learning and self-distillation): the deepest classifier teaches the shallow ones.
Training is in `mtkd.distill.byot`; as a plain model the network predicts with its deepest exit,
so it can also serve as a student or teacher anywhere else in mtkd.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.models.layout import as_sequence, conv_layout
from mtkd.models.patch_conv import PatchConv
from mtkd.models.architectures import MODELS
from mtkd.models.resnet import ResidualBlock


class ConvNorm(nnx.Module):
    """PatchConv -> LayerNorm -> ReLU (LayerNorm: no running statistics, as in `resnet`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel, stride: int, *, rngs: nnx.Rngs):
        self.conv = PatchConv(in_channels, out_channels, kernel, stride=stride, rngs=rngs)
        self.norm = nnx.LayerNorm(out_channels, rngs=rngs)

    def __call__(self, x):
        return jax.nn.relu(self.norm(self.conv(x)))


class Exit(nnx.Module):
    """A shallow classifier: a bottleneck (strided ConvNorm to the deepest stage's channel count,
    then global average pooling) and a linear layer. The pooled bottleneck output is the feature
    F_i that BYOT matches to the deepest feature F_C, so the bottleneck is its adapter."""

    def __init__(self, in_channels: int, width: int, num_classes: int, kernel, *, rngs: nnx.Rngs):
        self.bottleneck = ConvNorm(in_channels, width, kernel, 2, rngs=rngs)
        self.head = nnx.Linear(width, num_classes, rngs=rngs)

    def __call__(self, h):
        b = self.bottleneck(h)
        feature = jnp.mean(b, axis=tuple(range(1, b.ndim - 1)))
        return self.head(feature), feature


@MODELS.register("byot")
class ByotNet(nnx.Module):
    """Stages of convolutions (stage i: a ConvNorm at stride 1 for i = 0, else 2, then `blocks`
    residual blocks of channels[i]), an exit after every stage, the last exit the deepest.

    1-D convolutions (kernel `kernel_size`) for (L,) or (L, C) inputs, 3x3 for (H, W, C) images.
    Returns `(logits of the deepest exit (B, C), features)`; features: `stage_i` (B, *spatial,
    channels[i]), `exit_i_logits` (B, C) and `exit_i_feature` (B, channels[-1]) for every exit
    i = 0..S-1 (the deepest is S-1: its feature is the pooled last stage, also `embedding`).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs,
                 channels: Sequence[int] = (16, 32, 64), blocks: int = 1, kernel_size: int = 5):
        channels = tuple(int(c) for c in channels)
        if len(channels) < 2 or min(channels) <= 0 or blocks < 0 or kernel_size <= 0:
            raise ConfigError(f"byot needs at least 2 stages of positive channels, blocks >= 0 and a positive "
                              f"kernel_size, got channels {channels}, blocks {blocks}, kernel_size {kernel_size}")
        self.input_shape = tuple(input_shape)
        self.is_image, kernel, in_channels = conv_layout(self.input_shape, kernel_size)
        stages, exits = [], []
        for i, out_channels in enumerate(channels):
            layers = [ConvNorm(in_channels, out_channels, kernel, 1 if i == 0 else 2, rngs=rngs)]
            layers += [ResidualBlock(out_channels, kernel, rngs=rngs) for _ in range(blocks)]
            stages.append(nnx.List(layers))
            if i < len(channels) - 1:
                exits.append(Exit(out_channels, channels[-1], num_classes, kernel, rngs=rngs))
            in_channels = out_channels
        self.stages = nnx.List(stages)
        self.exits = nnx.List(exits)
        self.head = nnx.Linear(channels[-1], num_classes, rngs=rngs)

    @property
    def num_exits(self) -> int:
        return len(self.stages)

    def __call__(self, x: jax.Array):
        h = x if self.is_image else as_sequence(x, self.input_shape)
        features = {}
        for i, stage in enumerate(self.stages):
            for layer in stage:
                h = layer(h)
            features[f"stage_{i}"] = h
            if i < len(self.exits):
                features[f"exit_{i}_logits"], features[f"exit_{i}_feature"] = self.exits[i](h)
        deepest = len(self.stages) - 1
        embedding = jnp.mean(h, axis=tuple(range(1, h.ndim - 1)))
        logits = self.head(embedding)
        features[f"exit_{deepest}_logits"], features[f"exit_{deepest}_feature"] = logits, embedding
        features["embedding"] = embedding
        return logits, features
