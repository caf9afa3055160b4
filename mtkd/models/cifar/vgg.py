"""The CIFAR VGGs with batch norm that CRD / mdistiller train (their vgg8_bn ... vgg19_bn, named
vgg8 ... vgg19 in their model tables): five blocks of 3x3 convs, max pooling between the first
four, no hidden fully connected layers.

Reference definition: megvii-research/mdistiller, mdistiller/models/cifar/vgg.py (identical in
architecture to HobbitLong/RepDistiller, models/vgg.py).
"""

from __future__ import annotations

from typing import ClassVar

import jax
from flax import nnx

from mtkd.models.architectures import MODELS
from mtkd.models.cifar.layers import batch_norm, conv, global_avg_pool, image_channels, max_pool_2x2


class ConvBN(nnx.Module):
    """3x3 conv (with bias, as torch's default) -> BN."""

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        self.conv = conv(in_channels, out_channels, 3, bias=True, rngs=rngs)
        self.bn = batch_norm(out_channels, rngs=rngs)

    def __call__(self, x):
        return self.bn(self.conv(x))


class VGG(nnx.Module):
    """Blocks 0..4 of 3x3 conv + BN layers (relu between them and after each block), a 2x2 max pool
    after blocks 0, 1, 2 (and after block 3 only for 64x64 inputs, as in the reference), global
    average pooling, a linear head on 512 features. Subclasses fix `config`, the channel counts of
    each block's convolutions.

    Features (32x32 input): `stage_0` (B, 32, 32, 64),
    `stage_1` (B, 16, 16, 128), `stage_2` (B, 8, 8, 256), `stage_3` (B, 4, 4, 512), `stage_4`
    (B, 4, 4, 512), each block's output after its relu; `preact_1..4` the same before the relu;
    `embedding` (B, 512).
    """

    config: ClassVar[tuple[tuple[int, ...], ...]]

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs):
        in_channels = image_channels(type(self).__name__, input_shape)
        blocks = []
        for widths in self.config:
            layers = []
            for width in widths:
                layers.append(ConvBN(in_channels, width, rngs=rngs))
                in_channels = width
            blocks.append(nnx.List(layers))
        self.block0, self.block1, self.block2, self.block3, self.block4 = blocks
        self.pool_before_block4 = input_shape[0] == 64
        self.classifier = nnx.Linear(in_channels, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        features = {}
        h = x
        for i, block in enumerate((self.block0, self.block1, self.block2, self.block3, self.block4)):
            if 0 < i < 4 or (i == 4 and self.pool_before_block4):
                h = max_pool_2x2(h)
            for k, layer in enumerate(block):
                h = layer(jax.nn.relu(h) if k > 0 else h)
            if i > 0:
                features[f"preact_{i}"] = h
            h = jax.nn.relu(h)
            features[f"stage_{i}"] = h
        features["embedding"] = embedding = global_avg_pool(h)
        return self.classifier(embedding), features


@MODELS.register("vgg8")
class VGG8(VGG):
    config = ((64,), (128,), (256,), (512,), (512,))


@MODELS.register("vgg11")
class VGG11(VGG):
    config = ((64,), (128,), (256, 256), (512, 512), (512, 512))


@MODELS.register("vgg13")
class VGG13(VGG):
    config = ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512))


@MODELS.register("vgg16")
class VGG16(VGG):
    config = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


@MODELS.register("vgg19")
class VGG19(VGG):
    config = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)
