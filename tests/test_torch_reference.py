"""The PyTorch versions of the CIFAR-100 zoo (mtkd/models/cifar/torch_reference.py) against the NNX
networks: a random-weight torch model's state_dict has exactly the keys and shapes `torch_names`
expects, and `state_from_torch` turns it into an NNX state whose eval-mode logits are torch's.
A state_dict of another network, or with a key missing, added or of the wrong shape, is refused
naming the key."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.models import ModelSpec, build_model
from mtkd.models.apply import apply_model
from mtkd.models.cifar import ARCHITECTURES
from mtkd.models.cifar.torch_import import state_from_torch
from mtkd.models.cifar.torch_names import TORCH_ONLY, torch_names, torch_shape
from mtkd.models.cifar.torch_reference import build_torch_model

torch = pytest.importorskip("torch")

IMAGE = (32, 32, 3)
CLASSES = 100


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These forward passes are tiny: torch's thread pool only loses time on 2 cores shared with
    another test worker (a resnet110 pass took seconds instead of 30 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _abstract(arch):
    """The NNX network without its weights (shapes only): all `state_from_torch` needs."""
    return nnx.eval_shape(lambda: build_model(ModelSpec(arch), IMAGE, CLASSES, nnx.Rngs(0)))


def _torch_model(arch, seed=0):
    """A random-weight torch model in eval mode whose BatchNorms are far from the identity: random
    scales and shifts, running statistics those of one batch of noise images (so activations keep
    a trained network's magnitude instead of growing with depth, as unit statistics let them), then
    shifted (means by 0.1 standard deviation) and scaled (variances by 0.75..1.25) at random."""
    torch.manual_seed(seed)
    model = build_torch_model(arch, CLASSES)
    norms = [module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0.0, 0.1)
            norm.momentum = 1.0  # the running statistics become this batch's
        model.train()(torch.randn(8, 3, 32, 32))
        for norm in norms:
            norm.momentum = 0.1
            norm.running_mean.add_(0.1 * norm.running_var.sqrt() * torch.randn_like(norm.running_mean))
            norm.running_var.mul_(torch.empty_like(norm.running_var).uniform_(0.75, 1.25))
    return model.eval()


def _arrays(model):
    """The state_dict as NumPy arrays, `num_batches_tracked` counters included (to be skipped)."""
    return {key: value.detach().numpy().copy() for key, value in model.state_dict().items()}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_state_dict_loads_and_logits_match(arch):
    model = _torch_model(arch)
    arrays = _arrays(model)
    abstract = _abstract(arch)

    names = torch_names(abstract)
    given = {key: value for key, value in arrays.items() if not key.endswith(TORCH_ONLY)}
    assert set(given) == set(names)
    flat = dict(nnx.to_flat_state(nnx.state(abstract)))
    for key, path in names.items():
        assert given[key].shape == torch_shape(tuple(flat[path].shape), path), key

    graphdef, _ = nnx.split(abstract)
    state = state_from_torch(abstract, arrays, arch)
    images = np.random.default_rng(1).normal(size=(2,) + IMAGE).astype(np.float32)
    logits, _ = jax.jit(apply_model, static_argnums=0)(graphdef, state, images)
    with torch.no_grad():
        expected = model(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    assert expected.shape == (2, CLASSES)
    # float32 through up to 110 layers: 1e-4 absolute, scaled by the logits' magnitude where it
    # exceeds 1 (up to about 13 here; measured differences are at most about 5e-5).
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=0, atol=1e-4 * max(1.0, scale))


def _quoted_key(error):
    """The first key the ConfigError's message quotes."""
    return re.search(r"'([^']+)'", str(error.value)).group(1)


@pytest.fixture(scope="module")
def resnet8_arrays():
    return _arrays(_torch_model("resnet8"))


@pytest.mark.parametrize("other", ["resnet14", "wrn_16_1"])
def test_another_architectures_state_dict_is_refused(resnet8_arrays, other):
    abstract = _abstract(other)
    with pytest.raises(ConfigError, match=f"not a {other}") as error:
        state_from_torch(abstract, resnet8_arrays, other)
    assert _quoted_key(error) in set(torch_names(abstract)) - set(resnet8_arrays)


def test_missing_extra_and_misshapen_keys_are_named(resnet8_arrays):
    abstract = _abstract("resnet8")
    missing = dict(resnet8_arrays)
    del missing["layer2.0.downsample.1.running_var"]
    with pytest.raises(ConfigError, match="lacks 'layer2.0.downsample.1.running_var'"):
        state_from_torch(abstract, missing, "resnet8")

    extra = dict(resnet8_arrays, **{"layer4.0.conv1.weight": np.zeros((64, 64, 3, 3), np.float32)})
    with pytest.raises(ConfigError, match="has 'layer4.0.conv1.weight'"):
        state_from_torch(abstract, extra, "resnet8")

    misshapen = dict(resnet8_arrays, **{"fc.weight": np.zeros((10, 64), np.float32)})
    with pytest.raises(ConfigError, match=r"'fc.weight' has shape \(10, 64\)"):
        state_from_torch(abstract, misshapen, "resnet8")


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(ValueError, match="known: resnet8, "):
        build_torch_model("resnet9")


def test_missing_torch_is_one_clear_error(monkeypatch):
    from mtkd.models.cifar import torch_reference

    real = torch_reference.importlib.import_module

    def without_torch(name, *args):
        if name == "torch":
            raise ModuleNotFoundError("No module named 'torch'")
        return real(name, *args)

    monkeypatch.setattr(torch_reference.importlib, "import_module", without_torch)
    torch_reference._classes.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"pip install 'mtkd\[torch\]'"):
            build_torch_model("resnet8")
    finally:
        torch_reference._classes.cache_clear()
