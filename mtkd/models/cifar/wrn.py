"""The wide residual networks of CRD / mdistiller: wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2
(WRN-depth-width of Zagoruyko & Komodakis, 2016; pre-activation blocks, no dropout).

Reference definition: megvii-research/mdistiller, mdistiller/models/cifar/wrn.py (identical in
architecture to HobbitLong/RepDistiller, models/wrn.py).
"""

from __future__ import annotations

from typing import ClassVar

import jax
from flax import nnx

from mtkd.models.architectures import MODELS
from mtkd.models.cifar.layers import batch_norm, conv, global_avg_pool, image_channels


class WideBlock(nnx.Module):
    """Pre-activation block: BN -> relu -> 3x3 conv (strided) -> BN -> relu -> 3x3 conv, added to
    the input. Where the channel count changes the shortcut is a strided 1x1 conv, and it reads the
    activated input (BN + relu) rather than the raw one, as the reference does.

    Returns (output, the first BN's output), the latter being the input's pre-relu activation.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, rngs: nnx.Rngs):
        self.bn1 = batch_norm(in_channels, rngs=rngs)
        self.conv1 = conv(in_channels, out_channels, 3, stride=stride, rngs=rngs)
        self.bn2 = batch_norm(out_channels, rngs=rngs)
        self.conv2 = conv(out_channels, out_channels, 3, rngs=rngs)
        self.same_width = in_channels == out_channels
        if not self.same_width:
            self.shortcut = conv(in_channels, out_channels, 1, stride=stride, rngs=rngs)

    def __call__(self, x):
        pre = self.bn1(x)
        activated = jax.nn.relu(pre)
        h = jax.nn.relu(self.bn2(self.conv1(activated)))
        h = self.conv2(h)
        residual = x if self.same_width else self.shortcut(activated)
        return residual + h, pre


class WideResNet(nnx.Module):
    """3x3 stem conv (16 channels, no BN), three stages of (depth - 4) / 6 wide blocks of 16k, 32k,
    64k channels at strides 1, 2, 2 (k = `widen`), BN + relu, global average pooling, linear head.
    Subclasses fix `depth` and `widen`.

    Features (32x32 input): `stage_0` (B, 32, 32, 16) the stem conv's output; `stage_1`
    (B, 32, 32, 16k), `stage_2` (B, 16, 16, 32k), `stage_3` (B, 8, 8, 64k) after each stage;
    `preact_1..3` each stage's output through the BN that follows it (the next stage's first block
    BN, the final BN for stage 3: the reference's preact_feats), before the relu;
    `embedding` (B, 64k).
    """

    depth: ClassVar[int]
    widen: ClassVar[int]

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs):
        in_channels = image_channels(type(self).__name__, input_shape)
        blocks_per_stage = (self.depth - 4) // 6
        widths = (16, 16 * self.widen, 32 * self.widen, 64 * self.widen)
        self.conv1 = conv(in_channels, widths[0], 3, rngs=rngs)
        stages = []
        for i, stride in enumerate((1, 2, 2)):
            stages.append(nnx.List([
                WideBlock(widths[i] if j == 0 else widths[i + 1], widths[i + 1], stride if j == 0 else 1, rngs=rngs)
                for j in range(blocks_per_stage)]))
        self.block1, self.block2, self.block3 = stages
        self.bn1 = batch_norm(widths[3], rngs=rngs)
        self.fc = nnx.Linear(widths[3], num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        h = self.conv1(x)
        features = {"stage_0": h}
        for i, stage in enumerate((self.block1, self.block2, self.block3)):
            for j, block in enumerate(stage):
                h, pre = block(h)
                if i > 0 and j == 0:  # this BN normalises the previous stage's output
                    features[f"preact_{i}"] = pre
            features[f"stage_{i + 1}"] = h
        pre = self.bn1(h)
        features["preact_3"] = pre
        features["embedding"] = embedding = global_avg_pool(jax.nn.relu(pre))
        return self.fc(embedding), features


@MODELS.register("wrn_16_1")
class WRN16x1(WideResNet):
    depth, widen = 16, 1


@MODELS.register("wrn_16_2")
class WRN16x2(WideResNet):
    depth, widen = 16, 2


@MODELS.register("wrn_40_1")
class WRN40x1(WideResNet):
    depth, widen = 40, 1


@MODELS.register("wrn_40_2")
class WRN40x2(WideResNet):
    depth, widen = 40, 2
