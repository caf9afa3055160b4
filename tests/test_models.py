"""Models: the patch convolution against lax's convolution, output shapes, spec validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mtkd.errors import ConfigError, UnknownNameError
from mtkd.models import ModelSpec, build_model
from mtkd.models.patch_conv import PatchConv


@pytest.mark.parametrize("shape,kernel,stride", [((2, 11, 3), (5,), 1), ((2, 11, 3), (5,), 2),
                                                 ((2, 8, 8, 3), (3, 3), 1), ((2, 7, 6, 2), (3, 3), 2)])
def test_patch_conv_equals_lax_convolution(shape, kernel, stride):
    conv = PatchConv(shape[-1], 4, kernel, stride=stride, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), shape)
    w = conv.kernel[...].reshape(*kernel, shape[-1], 4)
    spatial = "W" if len(kernel) == 1 else "HW"
    expected = jax.lax.conv_general_dilated(x, w, (stride,) * len(kernel), "SAME",
                                            dimension_numbers=(f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"))
    np.testing.assert_allclose(np.asarray(conv(x)), np.asarray(expected + conv.bias[...]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch,input_shape", [("mlp", (40,)), ("cnn1d", (40,)), ("resnet", (40,)),
                                              ("cnn2d", (8, 8, 1)), ("resnet", (8, 8, 1)), ("mlp", (8, 8, 1))])
def test_models_return_logits_and_named_features(arch, input_shape):
    model = build_model(ModelSpec(arch), input_shape, 7, nnx.Rngs(0))
    logits, features = model(jnp.ones((3,) + input_shape))
    assert logits.shape == (3, 7)
    assert features["embedding"].shape[0] == 3 and len(features) >= 2


def test_model_spec_rejects_unknown_names_and_options():
    with pytest.raises(UnknownNameError, match="unknown model 'transformer'"):
        ModelSpec("transformer")
    with pytest.raises(ConfigError, match="no option"):
        ModelSpec("mlp", {"width": [3]})
    with pytest.raises(ConfigError, match="image inputs"):
        build_model(ModelSpec("cnn2d"), (40,), 10, nnx.Rngs(0))
