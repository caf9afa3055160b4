"""ShuffleNetV2 as CRD / mdistiller build it for CIFAR-100, registered as `ShuffleV2` (net size 1:
stages of 116, 232, 464 channels with 3, 7, 3 basic units after each down-sampling unit, a 1x1
conv to 1024 channels).

Reference definition: megvii-research/mdistiller, mdistiller/models/cifar/ShuffleNetv2.py
(identical in architecture to HobbitLong/RepDistiller, models/ShuffleNetv2.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from mtkd.models.architectures import MODELS
from mtkd.models.cifar.layers import batch_norm, channel_shuffle, conv, global_avg_pool, image_channels


class BasicUnit(nnx.Module):
    """Splits the channels in halves; the second half goes through 1x1 conv -> BN -> relu -> 3x3
    depthwise conv -> BN -> 1x1 conv -> BN -> relu; the halves are concatenated again and shuffled
    (2 groups). Returns (output, pre-activation), the latter being the concatenation with the
    branch before its last relu and before the shuffle, as the reference returns it."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.split = channels // 2
        half = channels - self.split
        self.conv1 = conv(half, half, 1, rngs=rngs)
        self.bn1 = batch_norm(half, rngs=rngs)
        self.conv2 = conv(half, half, 3, groups=half, rngs=rngs)
        self.bn2 = batch_norm(half, rngs=rngs)
        self.conv3 = conv(half, half, 1, rngs=rngs)
        self.bn3 = batch_norm(half, rngs=rngs)

    def __call__(self, x):
        kept, branch = x[..., :self.split], x[..., self.split:]
        h = jax.nn.relu(self.bn1(self.conv1(branch)))
        h = self.bn2(self.conv2(h))
        h = self.bn3(self.conv3(h))
        preact = jnp.concatenate([kept, h], axis=-1)
        out = jnp.concatenate([kept, jax.nn.relu(h)], axis=-1)
        return channel_shuffle(out, 2), preact


class DownUnit(nnx.Module):
    """Two branches at stride 2, each giving out/2 channels, concatenated and shuffled (2 groups):
    left, 3x3 depthwise conv -> BN -> 1x1 conv -> BN -> relu; right, 1x1 conv -> BN -> relu -> 3x3
    depthwise conv -> BN -> 1x1 conv -> BN -> relu."""

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        mid = out_channels // 2
        self.conv1 = conv(in_channels, in_channels, 3, stride=2, groups=in_channels, rngs=rngs)
        self.bn1 = batch_norm(in_channels, rngs=rngs)
        self.conv2 = conv(in_channels, mid, 1, rngs=rngs)
        self.bn2 = batch_norm(mid, rngs=rngs)
        self.conv3 = conv(in_channels, mid, 1, rngs=rngs)
        self.bn3 = batch_norm(mid, rngs=rngs)
        self.conv4 = conv(mid, mid, 3, stride=2, groups=mid, rngs=rngs)
        self.bn4 = batch_norm(mid, rngs=rngs)
        self.conv5 = conv(mid, mid, 1, rngs=rngs)
        self.bn5 = batch_norm(mid, rngs=rngs)

    def __call__(self, x):
        left = self.bn1(self.conv1(x))
        left = jax.nn.relu(self.bn2(self.conv2(left)))
        right = jax.nn.relu(self.bn3(self.conv3(x)))
        right = self.bn4(self.conv4(right))
        right = jax.nn.relu(self.bn5(self.conv5(right)))
        return channel_shuffle(jnp.concatenate([left, right], axis=-1), 2)


@MODELS.register("ShuffleV2")
class ShuffleV2(nnx.Module):
    """1x1 stem conv to 24 channels + BN + relu (no down-sampling), three stages (a down-sampling
    unit, then basic units), 1x1 conv to 1024 channels + BN + relu, global average pooling, linear
    head.

    Features (32x32 input): `stage_0` (B, 32, 32, 24) after the stem; `stage_1` (B, 16, 16, 116),
    `stage_2` (B, 8, 8, 232), `stage_3` (B, 4, 4, 464) after each stage; `preact_1..3` the last
    unit's pre-activation (see `BasicUnit`); `embedding` (B, 1024).
    """

    stage_channels = (116, 232, 464)
    stage_blocks = (3, 7, 3)
    last_channels = 1024

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs):
        in_channels = image_channels("ShuffleV2", input_shape)
        self.conv1 = conv(in_channels, 24, 1, rngs=rngs)
        self.bn1 = batch_norm(24, rngs=rngs)
        channels = 24
        stages = []
        for out_channels, count in zip(self.stage_channels, self.stage_blocks):
            units = [DownUnit(channels, out_channels, rngs=rngs)]
            units += [BasicUnit(out_channels, rngs=rngs) for _ in range(count)]
            stages.append(nnx.List(units))
            channels = out_channels
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = conv(channels, self.last_channels, 1, rngs=rngs)
        self.bn2 = batch_norm(self.last_channels, rngs=rngs)
        self.linear = nnx.Linear(self.last_channels, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        features = {"stage_0": h}
        for i, stage in enumerate((self.layer1, self.layer2, self.layer3), start=1):
            for k, unit in enumerate(stage):
                if k == 0:
                    h = unit(h)  # the down-sampling unit
                else:
                    h, preact = unit(h)
            features[f"stage_{i}"], features[f"preact_{i}"] = h, preact
        h = jax.nn.relu(self.bn2(self.conv2(h)))
        features["embedding"] = embedding = global_avg_pool(h)
        return self.linear(embedding), features
