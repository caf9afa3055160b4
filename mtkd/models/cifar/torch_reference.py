"""PyTorch versions of the CIFAR-100 zoo, computing what the reference definitions
(megvii-research/mdistiller, mdistiller/models/cifar/; the same as HobbitLong/RepDistiller) compute
and holding the same `state_dict` keys, so that a published checkpoint loads into them and
`state_from_torch` can be checked against them. Used by `mtkd bench` (a PyTorch peer of a zoo
network) and by the tests.

`forward(x)` takes NCHW float images and returns only the logits (the references return
`(logits, features)`); in eval mode the logits equal the reference's. Convolutions start
He-normal on the fan-out, as most references initialise them; nothing here depends on the
initialisation.

PyTorch is optional: the module imports without it and builds its classes on first use.
"""

from __future__ import annotations

import functools
import importlib
import math
from types import SimpleNamespace

from mtkd.errors import ConfigError
from mtkd.models.cifar import ARCHITECTURES

INSTALL_HINT = "pip install 'mtkd[torch]'"


@functools.cache
def _classes() -> SimpleNamespace:
    """The nn.Module classes, defined once torch is importable; a one-line ConfigError with the
    install hint when it is not."""
    try:
        torch = importlib.import_module("torch")
    except ModuleNotFoundError:
        raise ConfigError(f"the PyTorch zoo networks need PyTorch, which is not installed: {INSTALL_HINT}") from None
    nn, F = torch.nn, torch.nn.functional

    def conv(cin, cout, kernel, stride=1, groups=1, bias=False):
        return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=bias)

    def shuffle(x, groups):
        n, c, h, w = x.shape
        return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)

    class Basic(nn.Module):
        """resnet.py's basic block; `downsample` is the projection shortcut, absent (None, no state)
        where the shape does not change."""

        def __init__(self, cin, c, stride):
            super().__init__()
            self.conv1, self.bn1 = conv(cin, c, 3, stride), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = conv(c, c, 3), nn.BatchNorm2d(c)
            self.downsample = (nn.Sequential(conv(cin, c, 1, stride), nn.BatchNorm2d(c))
                               if stride != 1 or cin != c else None)

        def forward(self, x):
            h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(h + (x if self.downsample is None else self.downsample(x)))

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin, c, stride):
            super().__init__()
            cout = 4 * c
            self.conv1, self.bn1 = conv(cin, c, 1), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = conv(c, c, 3, stride), nn.BatchNorm2d(c)
            self.conv3, self.bn3 = conv(c, cout, 1), nn.BatchNorm2d(cout)
            # An empty Sequential is the identity and holds no state, as in resnetv2.py.
            self.shortcut = (nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))
                             if stride != 1 or cin != cout else nn.Sequential())

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            h = F.relu(self.bn2(self.conv2(h)))
            return F.relu(self.bn3(self.conv3(h)) + self.shortcut(x))

    class CifarResNet(nn.Module):
        """resnet.py's ResNet with basic blocks: (depth - 2) / 6 blocks per stage."""

        def __init__(self, depth, widths, num_classes):
            super().__init__()
            n = (depth - 2) // 6
            self.conv1, self.bn1 = conv(3, widths[0], 3), nn.BatchNorm2d(widths[0])
            c = widths[0]
            for i, (width, stride) in enumerate(zip(widths[1:], (1, 2, 2)), start=1):
                blocks = [Basic(c if k == 0 else width, width, stride if k == 0 else 1) for k in range(n)]
                setattr(self, f"layer{i}", nn.Sequential(*blocks))
                c = width
            self.fc = nn.Linear(c, num_classes)

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            h = self.layer3(self.layer2(self.layer1(h)))
            return self.fc(F.avg_pool2d(h, 8).flatten(1))

    class ResNet50(nn.Module):
        """resnetv2.py's ResNet(Bottleneck, [3, 4, 6, 3])."""

        def __init__(self, num_classes):
            super().__init__()
            self.conv1, self.bn1 = conv(3, 64, 3), nn.BatchNorm2d(64)
            c = 64
            for i, (planes, count, stride) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), (1, 2, 2, 2)), start=1):
                blocks = []
                for k in range(count):
                    blocks.append(Bottleneck(c, planes, stride if k == 0 else 1))
                    c = 4 * planes
                setattr(self, f"layer{i}", nn.Sequential(*blocks))
            self.linear = nn.Linear(c, num_classes)

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
            return self.linear(F.adaptive_avg_pool2d(h, 1).flatten(1))

    class WideBasic(nn.Module):
        """Pre-activation block; where the width changes, the 1x1 shortcut reads the activated input."""

        def __init__(self, cin, cout, stride):
            super().__init__()
            self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv(cin, cout, 3, stride)
            self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv(cout, cout, 3)
            self.convShortcut = None if cin == cout else conv(cin, cout, 1, stride)

        def forward(self, x):
            activated = F.relu(self.bn1(x))
            h = self.conv2(F.relu(self.bn2(self.conv1(activated))))
            return h + (x if self.convShortcut is None else self.convShortcut(activated))

    class WideStage(nn.Module):
        def __init__(self, count, cin, cout, stride):
            super().__init__()
            self.layer = nn.Sequential(*[WideBasic(cin if k == 0 else cout, cout, stride if k == 0 else 1)
                                         for k in range(count)])

        def forward(self, x):
            return self.layer(x)

    class WideResNet(nn.Module):
        def __init__(self, depth, widen, num_classes):
            super().__init__()
            n = (depth - 4) // 6
            w = (16, 16 * widen, 32 * widen, 64 * widen)
            self.conv1 = conv(3, w[0], 3)
            self.block1, self.block2, self.block3 = (WideStage(n, w[i], w[i + 1], s) for i, s in enumerate((1, 2, 2)))
            self.bn1 = nn.BatchNorm2d(w[3])
            self.fc = nn.Linear(w[3], num_classes)

        def forward(self, x):
            h = self.block3(self.block2(self.block1(self.conv1(x))))
            return self.fc(F.avg_pool2d(F.relu(self.bn1(h)), 8).flatten(1))

    class VGG(nn.Module):
        """vgg.py's VGG with batch_norm=True: each block a Sequential of conv, BN, relu, ... without
        the last relu (so BN k sits at index 3k + 1); 2x2 max pools after blocks 0-2 (and 3 for
        64x64 input), adaptive average pooling at the end."""

        def __init__(self, config, num_classes):
            super().__init__()
            cin = 3
            for i, widths in enumerate(config):
                layers = []
                for width in widths:
                    layers += [conv(cin, width, 3, bias=True), nn.BatchNorm2d(width), nn.ReLU()]
                    cin = width
                setattr(self, f"block{i}", nn.Sequential(*layers[:-1]))
            self.classifier = nn.Linear(512, num_classes)

        def forward(self, x):
            pool_before_block4 = x.shape[2] == 64
            h = x
            for i in range(5):
                if 0 < i < 4 or (i == 4 and pool_before_block4):
                    h = F.max_pool2d(h, 2, 2)
                h = F.relu(getattr(self, f"block{i}")(h))
            return self.classifier(F.adaptive_avg_pool2d(h, 1).flatten(1))

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hidden = cin * expand
            self.residual = stride == 1 and cin == cout
            self.conv = nn.Sequential(
                conv(cin, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU(),
                conv(hidden, hidden, 3, stride, groups=hidden), nn.BatchNorm2d(hidden), nn.ReLU(),
                conv(hidden, cout, 1), nn.BatchNorm2d(cout))

        def forward(self, x):
            return x + self.conv(x) if self.residual else self.conv(x)

    class MobileNetV2(nn.Module):
        """mobilenetv2.py's MobileNetV2(T, width_mult) for 32x32 inputs: a stride-2 stem, so the
        last map is 2x2, which its AvgPool2d(2, ceil_mode=True) covers."""

        def __init__(self, expansion, width, num_classes):
            super().__init__()
            setting = ((1, 16, 1, 1), (expansion, 24, 2, 1), (expansion, 32, 3, 2), (expansion, 64, 4, 2),
                       (expansion, 96, 3, 1), (expansion, 160, 3, 2), (expansion, 320, 1, 1))
            c = int(32 * width)
            self.conv1 = nn.Sequential(conv(3, c, 3, 2), nn.BatchNorm2d(c), nn.ReLU())
            self.blocks = nn.ModuleList()
            for t, channels, count, stride in setting:
                cout = int(channels * width)
                group = []
                for k in range(count):
                    group.append(InvertedResidual(c, cout, stride if k == 0 else 1, t))
                    c = cout
                self.blocks.append(nn.Sequential(*group))
            last = int(1280 * width) if width > 1.0 else 1280
            self.conv2 = nn.Sequential(conv(c, last, 1), nn.BatchNorm2d(last), nn.ReLU())
            self.avgpool = nn.AvgPool2d(2, ceil_mode=True)
            self.classifier = nn.Sequential(nn.Linear(last, num_classes))

        def forward(self, x):
            h = self.conv1(x)
            for group in self.blocks:
                h = group(h)
            return self.classifier(self.avgpool(self.conv2(h)).flatten(1))

    class ShuffleV1Unit(nn.Module):
        """Grouped 1x1 convs (ungrouped first conv on the 24-channel stem) around a depthwise 3x3;
        stride 2 concatenates a 3x3 average pool of the input (zero padding counted)."""

        def __init__(self, cin, cout, stride, groups):
            super().__init__()
            mid = cout // 4
            self.first_groups = 1 if cin == 24 else groups
            self.stride = stride
            self.conv1, self.bn1 = conv(cin, mid, 1, groups=self.first_groups), nn.BatchNorm2d(mid)
            self.conv2, self.bn2 = conv(mid, mid, 3, stride, groups=mid), nn.BatchNorm2d(mid)
            self.conv3, self.bn3 = conv(mid, cout, 1, groups=groups), nn.BatchNorm2d(cout)

        def forward(self, x):
            h = shuffle(F.relu(self.bn1(self.conv1(x))), self.first_groups)
            h = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(h)))))
            if self.stride == 2:
                return F.relu(torch.cat([h, F.avg_pool2d(x, 3, 2, 1)], 1))
            return F.relu(h + x)

    class ShuffleV1(nn.Module):
        def __init__(self, num_classes, stages=(240, 480, 960), counts=(4, 8, 4), groups=3):
            super().__init__()
            self.conv1, self.bn1 = conv(3, 24, 1), nn.BatchNorm2d(24)
            c = 24
            for i, (cout, count) in enumerate(zip(stages, counts), start=1):
                units = [ShuffleV1Unit(c, cout - c, 2, groups)]
                units += [ShuffleV1Unit(cout, cout, 1, groups) for _ in range(count - 1)]
                setattr(self, f"layer{i}", nn.Sequential(*units))
                c = cout
            self.linear = nn.Linear(c, num_classes)

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            h = self.layer3(self.layer2(self.layer1(h)))
            return self.linear(F.avg_pool2d(h, 4).flatten(1))

    class ShuffleV2Basic(nn.Module):
        """Keeps the first half of the channels, transforms the second, concatenates, shuffles."""

        def __init__(self, channels):
            super().__init__()
            half = channels // 2
            self.conv1, self.bn1 = conv(half, half, 1), nn.BatchNorm2d(half)
            self.conv2, self.bn2 = conv(half, half, 3, groups=half), nn.BatchNorm2d(half)
            self.conv3, self.bn3 = conv(half, half, 1), nn.BatchNorm2d(half)

        def forward(self, x):
            split = x.shape[1] // 2
            kept, branch = x[:, :split], x[:, split:]
            h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(branch)))))
            h = F.relu(self.bn3(self.conv3(h)))
            return shuffle(torch.cat([kept, h], 1), 2)

    class ShuffleV2Down(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            mid = cout // 2
            self.conv1, self.bn1 = conv(cin, cin, 3, 2, groups=cin), nn.BatchNorm2d(cin)
            self.conv2, self.bn2 = conv(cin, mid, 1), nn.BatchNorm2d(mid)
            self.conv3, self.bn3 = conv(cin, mid, 1), nn.BatchNorm2d(mid)
            self.conv4, self.bn4 = conv(mid, mid, 3, 2, groups=mid), nn.BatchNorm2d(mid)
            self.conv5, self.bn5 = conv(mid, mid, 1), nn.BatchNorm2d(mid)

        def forward(self, x):
            left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
            right = self.bn4(self.conv4(F.relu(self.bn3(self.conv3(x)))))
            right = F.relu(self.bn5(self.conv5(right)))
            return shuffle(torch.cat([left, right], 1), 2)

    class ShuffleV2(nn.Module):
        """ShuffleNetV2(net_size=1)."""

        def __init__(self, num_classes, stages=(116, 232, 464), counts=(3, 7, 3), last=1024):
            super().__init__()
            self.conv1, self.bn1 = conv(3, 24, 1), nn.BatchNorm2d(24)
            c = 24
            for i, (cout, count) in enumerate(zip(stages, counts), start=1):
                units = [ShuffleV2Down(c, cout)] + [ShuffleV2Basic(cout) for _ in range(count)]
                setattr(self, f"layer{i}", nn.Sequential(*units))
                c = cout
            self.conv2, self.bn2 = conv(c, last, 1), nn.BatchNorm2d(last)
            self.linear = nn.Linear(last, num_classes)

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            h = self.layer3(self.layer2(self.layer1(h)))
            h = F.relu(self.bn2(self.conv2(h)))
            return self.linear(F.avg_pool2d(h, 4).flatten(1))

    return SimpleNamespace(torch=torch, CifarResNet=CifarResNet, ResNet50=ResNet50, WideResNet=WideResNet,
                           VGG=VGG, MobileNetV2=MobileNetV2, ShuffleV1=ShuffleV1, ShuffleV2=ShuffleV2)


_SMALL, _WIDE = (16, 16, 32, 64), (32, 64, 128, 256)
_VGG = {"vgg8": ((64,), (128,), (256,), (512,), (512,)),
        "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
        "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
        "vgg16": ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3),
        "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)}
# arch -> (class name in `_classes()`, constructor arguments before num_classes)
_BUILDERS = {
    **{f"resnet{d}": ("CifarResNet", (d, _SMALL)) for d in (8, 14, 20, 32, 44, 56, 110)},
    "resnet8x4": ("CifarResNet", (8, _WIDE)), "resnet32x4": ("CifarResNet", (32, _WIDE)),
    "ResNet50": ("ResNet50", ()),
    **{f"wrn_{d}_{k}": ("WideResNet", (d, k)) for d in (16, 40) for k in (1, 2)},
    **{name: ("VGG", (config,)) for name, config in _VGG.items()},
    "mobile_half": ("MobileNetV2", (6, 0.5)),
    "ShuffleV1": ("ShuffleV1", ()), "ShuffleV2": ("ShuffleV2", ()),
}


def build_torch_model(arch: str, num_classes: int = 100):
    """The PyTorch module of zoo network `arch` (in training mode, as torch builds modules), with
    the reference's state_dict keys and shapes; seed with `torch.manual_seed` first for repeatable
    weights. Its forward returns the logits only."""
    if arch not in _BUILDERS:
        raise ConfigError(f"no PyTorch reference for {arch!r}; known: {', '.join(ARCHITECTURES)}")
    ns = _classes()
    class_name, args = _BUILDERS[arch]
    model = getattr(ns, class_name)(*args, int(num_classes))
    for module in model.modules():
        if isinstance(module, ns.torch.nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            ns.torch.nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
    return model


__all__ = ["build_torch_model"]
