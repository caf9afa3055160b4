"""ShuffleNet (v1) as CRD / mdistiller build it for CIFAR-100, registered as `ShuffleV1`: 3 groups,
stages of 240, 480, 960 channels with 4, 8, 4 blocks.

Reference definition: megvii-research/mdistiller, mdistiller/models/cifar/ShuffleNetv1.py
(identical in architecture to HobbitLong/RepDistiller, models/ShuffleNetv1.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from mtkd.models.architectures import MODELS
from mtkd.models.cifar.layers import (avg_pool_3x3_s2, batch_norm, channel_shuffle, conv, global_avg_pool,
                                      image_channels)


class ShuffleUnit(nnx.Module):
    """Grouped 1x1 conv to out/4 channels -> BN -> relu -> channel shuffle -> 3x3 depthwise conv
    (strided) -> BN -> grouped 1x1 conv to `out_channels` -> BN; then with stride 2 concatenated
    with a 3x3 average pool of the input, else added to the input; relu. The first 1x1 conv is
    ungrouped when it reads the 24-channel stem (as in the reference).

    Returns (output, pre-relu concatenation or sum).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int, *, rngs: nnx.Rngs):
        mid = out_channels // 4
        self.first_groups = 1 if in_channels == 24 else groups
        self.stride = stride
        self.conv1 = conv(in_channels, mid, 1, groups=self.first_groups, rngs=rngs)
        self.bn1 = batch_norm(mid, rngs=rngs)
        self.conv2 = conv(mid, mid, 3, stride=stride, groups=mid, rngs=rngs)
        self.bn2 = batch_norm(mid, rngs=rngs)
        self.conv3 = conv(mid, out_channels, 1, groups=groups, rngs=rngs)
        self.bn3 = batch_norm(out_channels, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        h = channel_shuffle(h, self.first_groups)
        h = jax.nn.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        if self.stride == 2:
            preact = jnp.concatenate([h, avg_pool_3x3_s2(x)], axis=-1)
        else:
            preact = h + x
        return jax.nn.relu(preact), preact


@MODELS.register("ShuffleV1")
class ShuffleV1(nnx.Module):
    """1x1 stem conv to 24 channels + BN + relu (no down-sampling), three stages whose first unit
    halves the resolution and concatenates (so its own branch gives out - in channels), global
    average pooling, linear head.

    Features (32x32 input): `stage_0` (B, 32, 32, 24) after the stem; `stage_1` (B, 16, 16, 240),
    `stage_2` (B, 8, 8, 480), `stage_3` (B, 4, 4, 960) after each stage; `preact_1..3` the same
    maps before the last unit's relu; `embedding` (B, 960).
    """

    stage_channels = (240, 480, 960)
    stage_blocks = (4, 8, 4)
    groups = 3

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs):
        in_channels = image_channels("ShuffleV1", input_shape)
        self.conv1 = conv(in_channels, 24, 1, rngs=rngs)
        self.bn1 = batch_norm(24, rngs=rngs)
        channels = 24
        stages = []
        for out_channels, count in zip(self.stage_channels, self.stage_blocks):
            units = [ShuffleUnit(channels, out_channels - channels, 2, self.groups, rngs=rngs)]
            units += [ShuffleUnit(out_channels, out_channels, 1, self.groups, rngs=rngs) for _ in range(count - 1)]
            stages.append(nnx.List(units))
            channels = out_channels
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nnx.Linear(channels, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        features = {"stage_0": h}
        for i, stage in enumerate((self.layer1, self.layer2, self.layer3), start=1):
            for unit in stage:
                h, preact = unit(h)
            features[f"stage_{i}"], features[f"preact_{i}"] = h, preact
        features["embedding"] = embedding = global_avg_pool(h)
        return self.linear(embedding), features
