"""kd: against a per-example numpy loop, gradients at extreme logits, argument checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.errors import ConfigError
from mtkd.losses import kd, kd_per_example


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def np_softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def np_kd(s, t, temp):
    total = 0.0
    for b in range(s.shape[0]):
        p, q = np_softmax(t[b] / temp), np_softmax(s[b] / temp)
        total += sum(p[c] * (np.log(p[c]) - np.log(q[c])) for c in range(s.shape[1]))
    return temp**2 * total / s.shape[0]


@pytest.mark.parametrize("temp", [1.0, 4.0, 0.5])
def test_kd_matches_numpy(temp):
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(6, 5)) * 3, rng.normal(size=(6, 5)) * 3
    np.testing.assert_allclose(kd(s, t, temp), np_kd(s, t, temp), rtol=1e-10)
    per = kd_per_example(s, t, temp)
    assert per.shape == (6,)
    np.testing.assert_allclose(jnp.mean(per), np_kd(s, t, temp), rtol=1e-10)


def test_kd_zero_for_equal_logits_and_jit_with_static_temperature():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(3, 4))
    assert abs(float(kd(s, s, 2.0))) < 1e-12
    t = rng.normal(size=(3, 4))
    jitted = jax.jit(kd, static_argnames="temperature")
    np.testing.assert_allclose(jitted(s, t, temperature=3.0), kd(s, t, 3.0), rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_kd_extreme_logits_finite_value_and_grad(dtype):
    s = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], dtype)
    t = jnp.array([[-1e4, 1e4, 0.0], [-1e4, 1e4, -1e4]], dtype)
    value, grad = jax.jit(jax.value_and_grad(kd), static_argnums=2)(s, t, 1.0)
    assert jnp.isfinite(value)
    assert bool(jnp.all(jnp.isfinite(grad)))


@pytest.mark.parametrize("temp", [0.0, -1.0, float("inf"), float("nan")])
def test_kd_bad_temperature(temp):
    with pytest.raises(ConfigError, match="temperature"):
        kd(np.zeros((2, 3)), np.zeros((2, 3)), temp)


def test_kd_shape_mismatch_names_shapes():
    with pytest.raises(ConfigError, match=r"\(2, 3\).*\(2, 4\)"):
        kd(np.zeros((2, 3)), np.zeros((2, 4)), 1.0)
    with pytest.raises(ConfigError, match="shape"):
        kd(np.zeros(3), np.zeros(3), 1.0)
