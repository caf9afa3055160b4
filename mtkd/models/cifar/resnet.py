"""The CIFAR ResNets of CRD / mdistiller (resnet8 ... resnet110, resnet8x4, resnet32x4) and the
ImageNet-style ResNet50 they train as a CIFAR-100 teacher.

Reference definitions: megvii-research/mdistiller, mdistiller/models/cifar/resnet.py and
resnetv2.py (identical in architecture to HobbitLong/RepDistiller, models/resnet.py, resnetv2.py).
"""

from __future__ import annotations

from typing import ClassVar

import jax
from flax import nnx

from mtkd.models.architectures import MODELS
from mtkd.models.cifar.layers import batch_norm, conv, global_avg_pool, image_channels


class BasicBlock(nnx.Module):
    """3x3 conv -> BN -> relu -> 3x3 conv -> BN, plus the shortcut (a strided 1x1 conv + BN where
    the shape changes), then relu. Returns (output, pre-relu sum)."""

    def __init__(self, in_channels: int, channels: int, stride: int, *, rngs: nnx.Rngs):
        self.conv1 = conv(in_channels, channels, 3, stride=stride, rngs=rngs)
        self.bn1 = batch_norm(channels, rngs=rngs)
        self.conv2 = conv(channels, channels, 3, rngs=rngs)
        self.bn2 = batch_norm(channels, rngs=rngs)
        self.has_projection = stride != 1 or in_channels != channels
        if self.has_projection:
            self.shortcut_conv = conv(in_channels, channels, 1, stride=stride, rngs=rngs)
            self.shortcut_bn = batch_norm(channels, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        shortcut = self.shortcut_bn(self.shortcut_conv(x)) if self.has_projection else x
        preact = h + shortcut
        return jax.nn.relu(preact), preact


class Bottleneck(nnx.Module):
    """1x1 conv (channels) -> 3x3 conv (channels, strided) -> 1x1 conv (4 x channels), each with BN,
    relu between; plus the shortcut, then relu. Returns (output, pre-relu sum)."""

    expansion: ClassVar[int] = 4

    def __init__(self, in_channels: int, channels: int, stride: int, *, rngs: nnx.Rngs):
        out_channels = self.expansion * channels
        self.conv1 = conv(in_channels, channels, 1, rngs=rngs)
        self.bn1 = batch_norm(channels, rngs=rngs)
        self.conv2 = conv(channels, channels, 3, stride=stride, rngs=rngs)
        self.bn2 = batch_norm(channels, rngs=rngs)
        self.conv3 = conv(channels, out_channels, 1, rngs=rngs)
        self.bn3 = batch_norm(out_channels, rngs=rngs)
        self.has_projection = stride != 1 or in_channels != out_channels
        if self.has_projection:
            self.shortcut_conv = conv(in_channels, out_channels, 1, stride=stride, rngs=rngs)
            self.shortcut_bn = batch_norm(out_channels, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        h = jax.nn.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        shortcut = self.shortcut_bn(self.shortcut_conv(x)) if self.has_projection else x
        preact = h + shortcut
        return jax.nn.relu(preact), preact


def _stage(block, in_channels: int, channels: int, count: int, stride: int, rngs: nnx.Rngs):
    """`count` blocks, the first strided; returns the list and its output channel count."""
    blocks = []
    for i in range(count):
        blocks.append(block(in_channels, channels, stride if i == 0 else 1, rngs=rngs))
        in_channels = channels * getattr(block, "expansion", 1)
    return nnx.List(blocks), in_channels


def _run_stages(stages, h, features):
    """Runs the stages after the stem (`stage_0`), recording `stage_i` and `preact_i` (the last
    block's sum before its relu), i = 1.. ."""
    for i, stage in enumerate(stages, start=1):
        for block in stage:
            h, preact = block(h)
        features[f"stage_{i}"], features[f"preact_{i}"] = h, preact
    return h


class CifarResNet(nnx.Module):
    """The CIFAR ResNet of He et al. (2016): a 3x3 stem conv + BN + relu of widths[0] channels,
    then three stages of (depth - 2) / 6 basic blocks of widths[1..3] channels at strides 1, 2, 2,
    global average pooling and a linear head. Subclasses fix `depth` and `widths`.

    Features (32x32 input, w = widths): `stage_0` (B, 32, 32, w0) after the stem; `stage_1`
    (B, 32, 32, w1), `stage_2` (B, 16, 16, w2), `stage_3` (B, 8, 8, w3) after each stage;
    `preact_1..3` the same maps before the last relu; `embedding` (B, w3).
    """

    depth: ClassVar[int]
    widths: ClassVar[tuple[int, int, int, int]]

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs):
        in_channels = image_channels(type(self).__name__, input_shape)
        blocks_per_stage = (self.depth - 2) // 6
        w = self.widths
        self.conv1 = conv(in_channels, w[0], 3, rngs=rngs)
        self.bn1 = batch_norm(w[0], rngs=rngs)
        self.layer1, c = _stage(BasicBlock, w[0], w[1], blocks_per_stage, 1, rngs)
        self.layer2, c = _stage(BasicBlock, c, w[2], blocks_per_stage, 2, rngs)
        self.layer3, c = _stage(BasicBlock, c, w[3], blocks_per_stage, 2, rngs)
        self.fc = nnx.Linear(c, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        features = {"stage_0": h}
        h = _run_stages((self.layer1, self.layer2, self.layer3), h, features)
        features["embedding"] = embedding = global_avg_pool(h)
        return self.fc(embedding), features


_SMALL = (16, 16, 32, 64)
_WIDE = (32, 64, 128, 256)


@MODELS.register("resnet8")
class ResNet8(CifarResNet):
    depth, widths = 8, _SMALL


@MODELS.register("resnet14")
class ResNet14(CifarResNet):
    depth, widths = 14, _SMALL


@MODELS.register("resnet20")
class ResNet20(CifarResNet):
    depth, widths = 20, _SMALL


@MODELS.register("resnet32")
class ResNet32(CifarResNet):
    depth, widths = 32, _SMALL


@MODELS.register("resnet44")
class ResNet44(CifarResNet):
    depth, widths = 44, _SMALL


@MODELS.register("resnet56")
class ResNet56(CifarResNet):
    depth, widths = 56, _SMALL


@MODELS.register("resnet110")
class ResNet110(CifarResNet):
    depth, widths = 110, _SMALL


@MODELS.register("resnet8x4")
class ResNet8x4(CifarResNet):
    depth, widths = 8, _WIDE


@MODELS.register("resnet32x4")
class ResNet32x4(CifarResNet):
    depth, widths = 32, _WIDE


@MODELS.register("ResNet50")
class ResNet50(nnx.Module):
    """The ImageNet ResNet-50 adapted to 32x32 inputs (3x3 stem at stride 1, no max pool):
    bottleneck stages of 3, 4, 6, 3 blocks, 64..512 inner channels, strides 1, 2, 2, 2.

    Features: `stage_0` (B, 32, 32, 64) after the stem; `stage_1` (B, 32, 32, 256), `stage_2`
    (B, 16, 16, 512), `stage_3` (B, 8, 8, 1024), `stage_4` (B, 4, 4, 2048); `preact_1..4` the same
    maps before the last relu; `embedding` (B, 2048).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs):
        in_channels = image_channels("ResNet50", input_shape)
        self.conv1 = conv(in_channels, 64, 3, rngs=rngs)
        self.bn1 = batch_norm(64, rngs=rngs)
        self.layer1, c = _stage(Bottleneck, 64, 64, 3, 1, rngs)
        self.layer2, c = _stage(Bottleneck, c, 128, 4, 2, rngs)
        self.layer3, c = _stage(Bottleneck, c, 256, 6, 2, rngs)
        self.layer4, c = _stage(Bottleneck, c, 512, 3, 2, rngs)
        self.linear = nnx.Linear(c, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        features = {"stage_0": h}
        h = _run_stages((self.layer1, self.layer2, self.layer3, self.layer4), h, features)
        features["embedding"] = embedding = global_avg_pool(h)
        return self.linear(embedding), features
