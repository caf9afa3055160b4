"""attention_map / attention_transfer against numpy loops; invariance; checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.errors import ConfigError
from mtkd.losses import attention_map, attention_transfer


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def np_attention_map(f, p):
    b, c = f.shape[0], f.shape[-1]
    flat = f.reshape(b, -1, c)
    out = np.zeros((b, flat.shape[1]))
    for i in range(b):
        for pos in range(flat.shape[1]):
            out[i, pos] = sum(abs(flat[i, pos, ch]) ** p for ch in range(c))
        out[i] /= np.sqrt(np.sum(out[i] ** 2))
    return out


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 6, 4)])
@pytest.mark.parametrize("p", [1, 2, 3.5])
def test_attention_map_matches_numpy(shape, p):
    f = np.random.default_rng(0).normal(size=shape)
    q = attention_map(f, p)
    assert q.shape == (shape[0], int(np.prod(shape[1:-1])))
    np.testing.assert_allclose(q, np_attention_map(f, p), rtol=1e-10)


def test_attention_map_invariant_to_positive_rescaling():
    f = np.random.default_rng(1).normal(size=(2, 4, 4, 3))
    for scale in (1e-3, 0.5, 7.0, 1e3):
        np.testing.assert_allclose(attention_map(scale * f), attention_map(f), rtol=1e-10)


def test_attention_transfer_matches_numpy_with_different_channels():
    rng = np.random.default_rng(2)
    s, t = rng.normal(size=(3, 4, 5, 2)), rng.normal(size=(3, 4, 5, 6))
    qs, qt = np_attention_map(s, 2), np_attention_map(t, 2)
    expected = np.mean([np.sum((qs[b] - qt[b]) ** 2) for b in range(3)])
    np.testing.assert_allclose(attention_transfer(s, t), expected, rtol=1e-10)
    f = jax.jit(attention_transfer, static_argnames="p")
    np.testing.assert_allclose(f(s, t, p=2), expected, rtol=1e-10)


def test_attention_zero_features_finite():
    z = jnp.zeros((2, 3, 3, 4))
    value, grad = jax.value_and_grad(attention_transfer)(z, jnp.ones((2, 3, 3, 2)))
    assert jnp.isfinite(value) and bool(jnp.all(jnp.isfinite(grad)))
    assert bool(jnp.all(attention_map(z) == 0))


def test_attention_bad_inputs():
    with pytest.raises(ConfigError, match=r"\(2, 4, 4, 3\).*\(2, 5, 4, 3\)"):
        attention_transfer(np.zeros((2, 4, 4, 3)), np.zeros((2, 5, 4, 3)))
    with pytest.raises(ConfigError, match="spatial"):
        attention_map(np.zeros((2, 8)))
    with pytest.raises(ConfigError, match="p must"):
        attention_map(np.zeros((2, 3, 3, 1)), p=0)
