"""The PyTorch `state_dict` key of every parameter and BatchNorm statistic of a zoo network, as the
reference definitions (megvii-research/mdistiller, mdistiller/models/cifar/) name them, and the
layout changes between the two: the groundwork for reading CRD / mdistiller checkpoints.

Leaves: a conv or linear `kernel` is torch's `weight` (conv (kh, kw, in/groups, out) against
torch's (out, in/groups, kh, kw); linear (in, out) against (out, in)); BatchNorm `scale`, `bias`,
`mean`, `var` are `weight`, `bias`, `running_mean`, `running_var`. Torch's `num_batches_tracked`
buffers have no counterpart (flax's BatchNorm uses a fixed momentum) and are to be skipped. Torch
keeps an unbiased running variance and flax a biased one; a checkpoint's values load as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flax import nnx

from mtkd.models.cifar.mobilenetv2 import MobileNetV2
from mtkd.models.cifar.resnet import CifarResNet, ResNet50
from mtkd.models.cifar.shufflenetv1 import ShuffleV1
from mtkd.models.cifar.shufflenetv2 import ShuffleV2
from mtkd.models.cifar.vgg import VGG
from mtkd.models.cifar.wrn import WideResNet

TORCH_ONLY = "num_batches_tracked"
_LEAVES = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
_MOBILE_BLOCK = {"expand_conv": "0", "expand_bn": "1", "depthwise_conv": "3", "depthwise_bn": "4",
                 "project_conv": "6", "project_bn": "7"}
_MOBILE_TOP = {"conv1": "conv1.0", "bn1": "conv1.1", "conv2": "conv2.0", "bn2": "conv2.1", "classifier": "classifier.0"}


def _module_path(model: nnx.Module, parts: list[str]) -> list[str]:
    """Rewrites the NNX module path (without the leaf) into the reference's module names."""
    if isinstance(model, CifarResNet):
        rename = {"shortcut_conv": "downsample.0", "shortcut_bn": "downsample.1"}
        return [rename.get(p, p) for p in parts]
    if isinstance(model, ResNet50):
        rename = {"shortcut_conv": "shortcut.0", "shortcut_bn": "shortcut.1"}
        return [rename.get(p, p) for p in parts]
    if isinstance(model, WideResNet):
        if parts[0] in ("block1", "block2", "block3"):
            parts = [parts[0], "layer", *parts[1:]]
        return ["convShortcut" if p == "shortcut" else p for p in parts]
    if isinstance(model, VGG):
        if parts[0].startswith("block"):  # [blockN, k, conv|bn]: torch's Sequential is conv, bn, relu, ...
            return [parts[0], str(3 * int(parts[1]) + (0 if parts[2] == "conv" else 1))]
        return parts
    if isinstance(model, MobileNetV2):
        if parts[0] == "blocks":  # [blocks, group, block, layer]
            return [*parts[:3], "conv", _MOBILE_BLOCK[parts[3]]]
        return [_MOBILE_TOP[parts[0]], *parts[1:]]
    if isinstance(model, (ShuffleV1, ShuffleV2)):
        return parts
    raise TypeError(f"no PyTorch names for {type(model).__name__}")


def torch_names(model: nnx.Module) -> dict[str, tuple[Any, ...]]:
    """Maps each PyTorch state_dict key (but the `num_batches_tracked` ones) to the path of the
    NNX variable that holds it. `model` may be abstract (`nnx.eval_shape`)."""
    state = nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))
    names = {}
    for path, _ in nnx.to_flat_state(state):
        parts = [str(p) for p in path]
        key = ".".join(_module_path(model, parts[:-1]) + [_LEAVES[parts[-1]]])
        if key in names:
            raise AssertionError(f"two variables map to the PyTorch key {key!r}")
        names[key] = tuple(path)
    return names


# Axis order of a torch parameter in terms of the NNX kernel's axes: conv kernels (kh, kw, in, out)
# are (out, in, kh, kw) in torch, linear kernels (in, out) are (out, in); everything else as is.
_TORCH_AXES = {4: (3, 2, 0, 1), 2: (1, 0)}


def _torch_axes(path: tuple[Any, ...], ndim: int) -> tuple[int, ...]:
    return _TORCH_AXES.get(ndim, tuple(range(ndim))) if path[-1] == "kernel" else tuple(range(ndim))


def from_torch_layout(value: np.ndarray, path: tuple[Any, ...]) -> np.ndarray:
    """A torch tensor's values (as a NumPy array) in the layout of the NNX variable at `path`."""
    value = np.asarray(value)
    return value.transpose(np.argsort(_torch_axes(path, value.ndim)))


def to_torch_layout(value: np.ndarray, path: tuple[Any, ...]) -> np.ndarray:
    """The inverse of `from_torch_layout`."""
    value = np.asarray(value)
    return value.transpose(_torch_axes(path, value.ndim))


def torch_shape(shape: tuple[int, ...], path: tuple[Any, ...]) -> tuple[int, ...]:
    """The shape torch gives the variable of NNX shape `shape` at `path`."""
    return tuple(shape[axis] for axis in _torch_axes(path, len(shape)))
