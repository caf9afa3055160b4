"""The CIFAR-100 model zoo of CRD (Tian et al., 2020) / mdistiller, in Flax NNX: ResNets (resnet8
... resnet110, resnet8x4, resnet32x4, ResNet50), wide ResNets (wrn_16_1 ... wrn_40_2), VGGs with
batch norm (vgg8 ... vgg19), MobileNetV2 (mobile_half), ShuffleNet v1 / v2 (ShuffleV1, ShuffleV2).

Every network takes (32, 32, 3) channels-last images, has BatchNorm (switch with `model.train()` /
`model.eval()`; it starts in training mode) and the reference's trainable parameter count, and
returns `(logits, features)`: `stage_i` the reference's i-th feature map (`stage_0` the stem's),
`preact_i` (where the reference has them) the same before the last relu, and `embedding` the
pooled vector the linear head reads. See docs/cifar100.md.
"""

from mtkd.models.cifar import mobilenetv2, resnet, shufflenetv1, shufflenetv2, vgg, wrn  # (importing registers them)

ARCHITECTURES = ("resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                 "resnet8x4", "resnet32x4", "ResNet50", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2",
                 "vgg8", "vgg11", "vgg13", "vgg16", "vgg19", "mobile_half", "ShuffleV1", "ShuffleV2")

__all__ = ["ARCHITECTURES", "mobilenetv2", "resnet", "shufflenetv1", "shufflenetv2", "vgg", "wrn"]
