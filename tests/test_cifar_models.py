"""The CIFAR-100 model zoo (mtkd/models/cifar): each architecture has exactly the reference PyTorch
model's trainable parameter count and the documented feature maps; BatchNorm's train/eval modes
behave; the layers that differ from flax's defaults (PyTorch's padding, average pooling that counts
the padding, channel shuffle, BatchNorm momentum) compute what PyTorch computes."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.models import MODELS, ModelSpec, build_model
from mtkd.models.cifar import ARCHITECTURES
from mtkd.models.cifar.layers import avg_pool_3x3_s2, batch_norm, channel_shuffle, conv

IMAGE = (32, 32, 3)
CLASSES = 100

# sum(p.numel() for p in model.parameters()) of the reference PyTorch models built with
# num_classes=100: megvii-research/mdistiller, mdistiller/models/cifar/{resnet,resnetv2,wrn,vgg,
# mobilenetv2,ShuffleNetv1,ShuffleNetv2}.py at commit a08d46f (vgg* = its vgg*_bn, mobile_half =
# mobilenetv2_T_w(6, 0.5)). Counted layer by layer from those definitions without torch
# (Conv2d out * in / groups * k * k, plus out with a bias; BatchNorm2d 2 * C; Linear in * out + out);
# cross-checked against the sizes the CRD paper reports (e.g. resnet32x4 7.43M, wrn_40_2 2.26M).
REFERENCE_PARAMS = {
    "resnet8": 83_892, "resnet14": 181_108, "resnet20": 278_324, "resnet32": 472_756,
    "resnet44": 667_188, "resnet56": 861_620, "resnet110": 1_736_564, "resnet8x4": 1_233_540,
    "resnet32x4": 7_433_860, "ResNet50": 23_705_252, "wrn_16_1": 180_916, "wrn_16_2": 703_284,
    "wrn_40_1": 569_780, "wrn_40_2": 2_255_156, "vgg8": 3_965_028, "vgg11": 9_277_284,
    "vgg13": 9_462_180, "vgg16": 14_774_436, "vgg19": 20_086_692, "mobile_half": 812_836,
    "ShuffleV1": 949_258, "ShuffleV2": 1_355_528,
}


def _maps(shapes, embedding, preact=True):
    """Expected features: stage_i of shape shapes[i], preact_i (i >= 1) alike, embedding."""
    features = {f"stage_{i}": tuple(s) for i, s in enumerate(shapes)}
    if preact:
        features.update({f"preact_{i}": tuple(s) for i, s in enumerate(shapes) if i > 0})
    features["embedding"] = (embedding,)
    return features


def _resnet(w):
    return _maps([(32, 32, w[0]), (32, 32, w[1]), (16, 16, w[2]), (8, 8, w[3])], w[3])


def _wrn(k):
    return _maps([(32, 32, 16), (32, 32, 16 * k), (16, 16, 32 * k), (8, 8, 64 * k)], 64 * k)


_VGG = _maps([(32, 32, 64), (16, 16, 128), (8, 8, 256), (4, 4, 512), (4, 4, 512)], 512)

# Per-example shapes at 32x32 input, following the shapes the reference forward passes produce.
FEATURES = {
    **{name: _resnet((16, 16, 32, 64)) for name in
       ("resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110")},
    "resnet8x4": _resnet((32, 64, 128, 256)),
    "resnet32x4": _resnet((32, 64, 128, 256)),
    "ResNet50": _maps([(32, 32, 64), (32, 32, 256), (16, 16, 512), (8, 8, 1024), (4, 4, 2048)], 2048),
    "wrn_16_1": _wrn(1), "wrn_16_2": _wrn(2), "wrn_40_1": _wrn(1), "wrn_40_2": _wrn(2),
    **{name: _VGG for name in ("vgg8", "vgg11", "vgg13", "vgg16", "vgg19")},
    "mobile_half": _maps([(16, 16, 16), (16, 16, 12), (8, 8, 16), (4, 4, 48), (2, 2, 160)], 1280, preact=False),
    "ShuffleV1": _maps([(32, 32, 24), (16, 16, 240), (8, 8, 480), (4, 4, 960)], 960),
    "ShuffleV2": _maps([(32, 32, 24), (16, 16, 116), (8, 8, 232), (4, 4, 464)], 1024),
}


def test_every_architecture_is_registered_and_has_a_reference():
    assert set(ARCHITECTURES) == set(REFERENCE_PARAMS) == set(FEATURES)
    assert set(ARCHITECTURES) <= set(MODELS.names())


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_parameter_count_and_feature_shapes_match_the_reference(arch):
    """Traced only (jax.eval_shape): nothing is allocated or computed."""

    def build_and_run():
        model = build_model(ModelSpec(arch), IMAGE, CLASSES, nnx.Rngs(0))
        model.eval()  # the shapes are the same in both modes; tracing the running-stat update is slower
        logits, features = model(jnp.zeros((2,) + IMAGE))
        return jax.tree.leaves(nnx.state(model, nnx.Param)), logits, features

    params, logits, features = jax.eval_shape(build_and_run)
    assert sum(math.prod(p.shape) for p in params) == REFERENCE_PARAMS[arch]
    assert logits.shape == (2, CLASSES)
    assert {name: f.shape[1:] for name, f in features.items()} == FEATURES[arch]
    assert all(f.shape[0] == 2 for f in features.values())


def _batch_stats(model):
    return [np.asarray(v) for v in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]


def _quick_model(arch):
    """The model with its initial state drawn in NumPy: He-normal kernels, BatchNorm at scale 1,
    bias 0, mean 0, variance 1 (as the initialisers give). Building it eagerly would compile one
    small program per initialiser and shape, most of this file's run time."""
    abstract = nnx.eval_shape(lambda: build_model(ModelSpec(arch), IMAGE, CLASSES, nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    rng = np.random.default_rng(0)

    def draw(path, leaf):
        name, shape = path[-1], leaf.shape
        if name == "kernel":
            value = rng.normal(0.0, math.sqrt(2.0 / math.prod(shape[:-1])), shape)
        else:
            value = np.ones(shape) if name in ("scale", "var") else np.zeros(shape)
        return jnp.asarray(value, jnp.float32)

    flat = [(path, draw(path, leaf)) for path, leaf in nnx.to_flat_state(state)]
    return nnx.merge(graphdef, nnx.from_flat_state(flat))


@pytest.mark.parametrize("arch", ["resnet8", "wrn_16_1", "vgg8", "ShuffleV2", "mobile_half"])
def test_forward_in_eval_and_train_mode(arch):
    model = _quick_model(arch)
    forward = nnx.jit(lambda m, x: m(x))
    x = jax.random.normal(jax.random.key(1), (2,) + IMAGE)
    initial = _batch_stats(model)
    assert initial, "the zoo's networks all have BatchNorm"

    model.eval()
    logits, features = forward(model, x)
    assert logits.shape == (2, CLASSES) and bool(jnp.all(jnp.isfinite(logits)))
    assert {name: f.shape[1:] for name, f in features.items()} == FEATURES[arch]
    after_eval = _batch_stats(model)
    assert all(np.array_equal(a, b) for a, b in zip(initial, after_eval)), "eval mode must not touch running stats"

    model.train()
    train_logits, train_features = forward(model, x)
    after_train = _batch_stats(model)
    assert train_logits.shape == (2, CLASSES)
    # Every BatchNorm layer's running mean and variance moved towards its batch's statistics.
    assert all(not np.array_equal(a, b) for a, b in zip(initial, after_train))
    # Batch statistics, not the (initial) running ones: the outputs differ from eval mode's.
    assert not np.allclose(np.asarray(train_logits), np.asarray(logits))
    # All five networks pool a relu's output; the stage maps of these three end in a relu too
    # (a wide ResNet's stages end in a residual sum, MobileNetV2's in a linear projection), and
    # where a pre-activation is reported it is the feature map before that relu.
    assert float(jnp.min(train_features["embedding"])) >= 0.0
    if arch in ("resnet8", "vgg8", "ShuffleV2"):
        assert all(float(jnp.min(f)) >= 0.0 for name, f in train_features.items() if name.startswith("stage_"))
    else:
        assert float(jnp.min(train_features["stage_3"])) < 0.0
    if arch in ("resnet8", "vgg8"):
        for i in (1, 2, 3):
            np.testing.assert_allclose(np.asarray(jax.nn.relu(train_features[f"preact_{i}"])),
                                       np.asarray(train_features[f"stage_{i}"]), rtol=1e-6, atol=1e-6)


def test_convolutions_pad_like_pytorch():
    """A stride-2 3x3 convolution with padding=1 on an even input: windows start at -1, so the
    top-left output sees a 2x2 corner (with "SAME" it would see a full 3x3 window)."""
    layer = conv(1, 1, 3, stride=2, rngs=nnx.Rngs(0))
    layer.kernel[...] = jnp.ones_like(layer.kernel[...])
    out = layer(jnp.ones((1, 4, 4, 1)))
    np.testing.assert_allclose(np.asarray(out[0, :, :, 0]), [[4.0, 6.0], [6.0, 9.0]])
    assert layer.bias is None


def test_shortcut_average_pool_counts_the_padding():
    """PyTorch's AvgPool2d(3, 2, padding=1) divides by 9 everywhere (count_include_pad=True)."""
    out = avg_pool_3x3_s2(jnp.ones((1, 4, 4, 1)))
    np.testing.assert_allclose(np.asarray(out[0, :, :, 0]), [[4 / 9, 6 / 9], [6 / 9, 1.0]], rtol=1e-6)


def test_channel_shuffle_matches_the_reference_permutation():
    """[N, g, C/g] -> [N, C/g, g], as the reference's view/permute does on NCHW."""
    x = jnp.arange(6.0).reshape(1, 1, 1, 6)
    np.testing.assert_array_equal(np.asarray(channel_shuffle(x, 3)).ravel(), [0, 2, 4, 1, 3, 5])
    np.testing.assert_array_equal(np.asarray(channel_shuffle(x, 2)).ravel(), [0, 3, 1, 4, 2, 5])
    np.testing.assert_array_equal(np.asarray(channel_shuffle(x, 1)).ravel(), np.arange(6))


def test_batch_norm_uses_pytorch_momentum_and_epsilon():
    bn = batch_norm(1, rngs=nnx.Rngs(0))
    assert bn.epsilon == 1e-5
    bn(jnp.array([[1.0], [3.0]]))  # training mode: the batch mean is 2
    np.testing.assert_allclose(np.asarray(bn.mean[...]), [0.2], rtol=1e-6)  # 0.9 * 0 + 0.1 * 2


def test_specs_take_no_options_and_images_only():
    model = nnx.eval_shape(lambda: build_model(ModelSpec("resnet8x4"), IMAGE, 10, nnx.Rngs(0)))
    assert model.fc.out_features == 10 and model.layer3[0].conv1.out_features == 256
    with pytest.raises(ConfigError, match="no option"):
        ModelSpec("resnet8", {"depth": 20})
    with pytest.raises(ConfigError, match="height, width, channels"):
        nnx.eval_shape(lambda: build_model(ModelSpec("vgg8"), (32, 32), 10, nnx.Rngs(0)))


# PyTorch state_dict keys and shapes read off the reference definitions (mdistiller's module
# attribute names, nn.Sequential indices counting the parameterless ReLUs).
TORCH_KEYS = {
    "resnet8x4": {"conv1.weight": (32, 3, 3, 3), "layer1.0.downsample.0.weight": (64, 32, 1, 1),
                  "layer1.0.downsample.1.running_var": (64,), "layer3.0.conv2.weight": (256, 256, 3, 3),
                  "fc.weight": (100, 256), "fc.bias": (100,)},
    "ResNet50": {"layer1.0.shortcut.0.weight": (256, 64, 1, 1), "layer4.2.conv3.weight": (2048, 512, 1, 1),
                 "layer4.2.bn3.running_mean": (2048,), "linear.weight": (100, 2048)},
    "wrn_16_2": {"block1.layer.0.bn1.weight": (16,), "block1.layer.0.convShortcut.weight": (32, 16, 1, 1),
                 "block3.layer.1.conv2.weight": (128, 128, 3, 3), "bn1.running_mean": (128,), "fc.weight": (100, 128)},
    "vgg13": {"block0.0.weight": (64, 3, 3, 3), "block0.0.bias": (64,), "block0.1.running_mean": (64,),
              "block1.3.weight": (128, 128, 3, 3), "block4.4.running_var": (512,), "classifier.weight": (100, 512)},
    "mobile_half": {"conv1.0.weight": (16, 3, 3, 3), "conv1.1.weight": (16,), "blocks.0.0.conv.0.weight": (16, 16, 1, 1),
                    "blocks.1.0.conv.3.weight": (48, 1, 3, 3), "blocks.6.0.conv.7.running_var": (160,),
                    "conv2.0.weight": (1280, 160, 1, 1), "classifier.0.weight": (100, 1280)},
    "ShuffleV1": {"layer1.0.conv1.weight": (54, 24, 1, 1), "layer1.0.conv3.weight": (216, 18, 1, 1),
                  "layer2.3.conv2.weight": (120, 1, 3, 3), "layer3.3.bn3.weight": (960,), "linear.weight": (100, 960)},
    "ShuffleV2": {"layer1.0.conv1.weight": (24, 1, 3, 3), "layer1.0.conv5.weight": (58, 58, 1, 1),
                  "layer3.3.bn3.running_var": (232,), "conv2.weight": (1024, 464, 1, 1), "bn2.bias": (1024,)},
}


@pytest.mark.parametrize("arch", sorted(TORCH_KEYS))
def test_torch_names_follow_the_reference_modules(arch):
    from mtkd.models.cifar.torch_names import torch_names, torch_shape

    model = nnx.eval_shape(lambda: build_model(ModelSpec(arch), IMAGE, CLASSES, nnx.Rngs(0)))
    names = torch_names(model)
    flat = dict(nnx.to_flat_state(nnx.state(model)))
    assert len(names) == len(flat) and set(names.values()) == set(flat), "one PyTorch key per variable"
    shapes = {key: torch_shape(flat[path].shape, path) for key, path in names.items()}
    assert {key: shapes.get(key) for key in TORCH_KEYS[arch]} == TORCH_KEYS[arch]


def test_torch_layout_round_trips_and_counts_resnet8_keys():
    from mtkd.models.cifar.torch_names import from_torch_layout, to_torch_layout, torch_names

    model = nnx.eval_shape(lambda: build_model(ModelSpec("resnet8"), IMAGE, CLASSES, nnx.Rngs(0)))
    # conv1 + bn1 (4) + layer1.0 (2 convs, 2 BNs: 10) + layer2.0 and layer3.0 (10 + a downsample
    # conv and BN: 15 each) + fc (2), the reference's state_dict without its 9 num_batches_tracked.
    assert len(torch_names(model)) == 47
    w = np.arange(2 * 3 * 5 * 7).reshape(2, 3, 5, 7)  # torch (out, in, kh, kw)
    flax_w = from_torch_layout(w, ("conv1", "kernel"))
    assert flax_w.shape == (5, 7, 3, 2) and flax_w[4, 6, 2, 1] == w[1, 2, 4, 6]
    np.testing.assert_array_equal(to_torch_layout(flax_w, ("conv1", "kernel")), w)
    np.testing.assert_array_equal(from_torch_layout(w[0, 0], ("fc", "kernel")), w[0, 0].T)
    np.testing.assert_array_equal(from_torch_layout(w[0, 0, 0], ("bn1", "mean")), w[0, 0, 0])
