"""MobileNetV2 as CRD / mdistiller build it for CIFAR-100 (from "Knowledge Distillation via Route
Constrained Optimization"), registered as `mobile_half`: expansion 6, width multiplier 0.5.

Reference definition: megvii-research/mdistiller, mdistiller/models/cifar/mobilenetv2.py
(`mobile_half`, i.e. `mobilenetv2_T_w(6, 0.5)`; identical in architecture to
HobbitLong/RepDistiller, models/mobilenetv2.py).
"""

from __future__ import annotations

from typing import ClassVar

import jax
from flax import nnx

from mtkd.models.architectures import MODELS
from mtkd.models.cifar.layers import batch_norm, conv, global_avg_pool, image_channels


class InvertedResidual(nnx.Module):
    """1x1 expansion conv (x `expand`) -> BN -> relu -> 3x3 depthwise conv (strided) -> BN -> relu
    -> 1x1 linear projection -> BN; added to the input when the stride is 1 and the widths match.
    The expansion conv is present even for `expand` = 1, as in the reference."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand: int, *, rngs: nnx.Rngs):
        hidden = in_channels * expand
        self.expand_conv = conv(in_channels, hidden, 1, rngs=rngs)
        self.expand_bn = batch_norm(hidden, rngs=rngs)
        self.depthwise_conv = conv(hidden, hidden, 3, stride=stride, groups=hidden, rngs=rngs)
        self.depthwise_bn = batch_norm(hidden, rngs=rngs)
        self.project_conv = conv(hidden, out_channels, 1, rngs=rngs)
        self.project_bn = batch_norm(out_channels, rngs=rngs)
        self.residual = stride == 1 and in_channels == out_channels

    def __call__(self, x):
        h = jax.nn.relu(self.expand_bn(self.expand_conv(x)))
        h = jax.nn.relu(self.depthwise_bn(self.depthwise_conv(h)))
        h = self.project_bn(self.project_conv(h))
        return x + h if self.residual else h


class MobileNetV2(nnx.Module):
    """3x3 stem conv at stride 2 + BN + relu, seven groups of inverted residual blocks
    (expansion t, channels c, count n, first stride s: (1, 16, 1, 1), (T, 24, 2, 1), (T, 32, 3, 2),
    (T, 64, 4, 2), (T, 96, 3, 1), (T, 160, 3, 2), (T, 320, 1, 1), channels and the stem scaled by
    `width`, rounded down), a 1x1 conv to 1280 channels + BN + relu, global average pooling and a
    linear head. Subclasses fix `expansion` (T) and `width`.
    """

    expansion: ClassVar[int]
    width: ClassVar[float]

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs):
        in_channels = image_channels(type(self).__name__, input_shape)
        t = self.expansion
        setting = ((1, 16, 1, 1), (t, 24, 2, 1), (t, 32, 3, 2), (t, 64, 4, 2), (t, 96, 3, 1),
                   (t, 160, 3, 2), (t, 320, 1, 1))
        channels = int(32 * self.width)
        self.conv1 = conv(in_channels, channels, 3, stride=2, rngs=rngs)
        self.bn1 = batch_norm(channels, rngs=rngs)
        groups = []
        for expand, c, count, stride in setting:
            out_channels = int(c * self.width)
            blocks = []
            for k in range(count):
                blocks.append(InvertedResidual(channels, out_channels, stride if k == 0 else 1, expand, rngs=rngs))
                channels = out_channels
            groups.append(nnx.List(blocks))
        self.blocks = nnx.List(groups)
        last_channels = int(1280 * self.width) if self.width > 1.0 else 1280
        self.conv2 = conv(channels, last_channels, 1, rngs=rngs)
        self.bn2 = batch_norm(last_channels, rngs=rngs)
        self.classifier = nnx.Linear(last_channels, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        features = {"stage_0": h}
        # The reference's feature maps follow block groups 1, 2, 4 and 6 (counting from 0).
        taps = {1: "stage_1", 2: "stage_2", 4: "stage_3", 6: "stage_4"}
        for g, group in enumerate(self.blocks):
            for block in group:
                h = block(h)
            if g in taps:
                features[taps[g]] = h
        h = jax.nn.relu(self.bn2(self.conv2(h)))
        features["embedding"] = embedding = global_avg_pool(h)
        return self.classifier(embedding), features


@MODELS.register("mobile_half")
class MobileHalf(MobileNetV2):
    """MobileNetV2 with expansion 6 and width 0.5. Features (32x32 input): `stage_0`
    (B, 16, 16, 16), `stage_1` (B, 16, 16, 12), `stage_2` (B, 8, 8, 16), `stage_3` (B, 4, 4, 48),
    `stage_4` (B, 2, 2, 160); `embedding` (B, 1280). No pre-activation maps: the tapped blocks end
    in a linear projection, as the reference (which returns none for this network) has it."""

    expansion, width = 6, 0.5
