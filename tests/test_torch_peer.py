"""The PyTorch peer of `mtkd bench --peer torch` does the same work as the JAX trainer: the same
loss and the same Adam update from the same parameters (so its step rate is a fair comparison)."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.distill.fit import init_students, unstack
from mtkd.distill.steps import StudentState, make_train_step
from mtkd.errors import ConfigError
from mtkd.models import ModelSpec
from mtkd.optimizers import make_optimizer
from mtkd import torch_peer


def test_missing_torch_is_one_clear_error(monkeypatch):
    real = importlib.import_module

    def without_torch(name, *args):
        if name == "torch":
            raise ModuleNotFoundError("No module named 'torch'")
        return real(name, *args)

    monkeypatch.setattr(torch_peer.importlib, "import_module", without_torch)
    with pytest.raises(ConfigError, match=r"pip install 'mtkd\[bench\]'"):
        torch_peer.import_torch()


def test_torch_step_matches_the_jax_step():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 40)).astype(np.float32)
    y = rng.integers(0, 10, size=16)
    teachers = (3 * rng.normal(size=(4, 16, 10))).astype(np.float32)
    alpha, temperature, lr = 0.3, 8.0, 1e-2
    graphdef, params = init_students(ModelSpec("mlp", {"widths": [24, 12]}), (40,), 10, [3])
    params = unstack(params, 0)
    optimizer = make_optimizer("adam", lr)
    step = make_train_step(graphdef, optimizer, alpha, temperature)
    state = StudentState(params, optimizer.init(params))
    for _ in range(2):  # two updates, so Adam's moments are exercised too
        state, jax_loss = step(state, jnp.asarray(x), jnp.asarray(y), jnp.asarray(teachers), jnp.ones((4,)))

    peer = torch_peer.TorchEpoch(x, y, teachers, 10, widths=(24, 12), batch_size=16, learning_rate=lr, alpha=alpha,
                                 temperature=temperature, threads=1)
    torch_peer.copy_mlp_params(peer.model, params)
    for _ in range(2):
        torch_loss = peer.step(torch.arange(16))
    np.testing.assert_allclose(float(torch_loss), float(jax_loss), rtol=1e-5)

    linears = [layer for layer in peer.model if isinstance(layer, torch.nn.Linear)]
    np.testing.assert_allclose(linears[0].weight.detach().numpy().T, np.asarray(state.params["hidden"][0]["kernel"][...]),
                               atol=1e-5)
    np.testing.assert_allclose(linears[-1].bias.detach().numpy(), np.asarray(state.params["head"]["bias"][...]),
                               atol=1e-5)
