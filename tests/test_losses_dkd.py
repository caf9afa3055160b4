"""dkd/tckd/nckd: per-example numpy loops, the KD decomposition identity, extreme logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from mtkd.errors import ConfigError
from mtkd.losses import dkd, kd_per_example, nckd, tckd


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def np_parts(s, t, y, temp):
    """Per-example (TCKD, NCKD, p_target_teacher); non-target classes by deleting a column."""
    tc, nc, pt = [], [], []
    for b in range(s.shape[0]):
        zs, zt = s[b] / temp, t[b] / temp
        ls, lt = zs - logsumexp(zs), zt - logsumexp(zt)
        bt = np.array([np.exp(lt[y[b]]), 1 - np.exp(lt[y[b]])])
        bs = np.array([np.exp(ls[y[b]]), 1 - np.exp(ls[y[b]])])
        tc.append(temp**2 * np.sum(bt * (np.log(bt) - np.log(bs))))
        os_, ot = np.delete(zs, y[b]), np.delete(zt, y[b])
        qs, qt = os_ - logsumexp(os_), ot - logsumexp(ot)
        nc.append(temp**2 * np.sum(np.exp(qt) * (qt - qs)))
        pt.append(bt[0])
    return np.array(tc), np.array(nc), np.array(pt)


def data(seed=0, b=7, c=6, scale=2.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(b, c)) * scale, rng.normal(size=(b, c)) * scale,
            rng.integers(0, c, size=b))


@pytest.mark.parametrize("temp", [1.0, 4.0])
def test_parts_and_dkd_match_numpy(temp):
    s, t, y = data()
    tc, nc, _ = np_parts(s, t, y, temp)
    np.testing.assert_allclose(tckd(s, t, y, temp), tc, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(nckd(s, t, y, temp), nc, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(dkd(s, t, y, 0.7, 3.0, temp), np.mean(0.7 * tc + 3.0 * nc),
                               rtol=1e-8)


@pytest.mark.parametrize("temp", [1.0, 2.0, 4.0])
def test_kd_decomposition_identity_per_example(temp):
    s, t, y = data(seed=3, b=9, c=10, scale=3.0)
    _, _, pt = np_parts(s, t, y, temp)
    lhs = kd_per_example(s, t, temp)
    rhs = tckd(s, t, y, temp) + (1 - pt) * nckd(s, t, y, temp)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-12)


def test_dkd_jit_static_hyperparameters():
    s, t, y = data(seed=4)
    f = jax.jit(dkd, static_argnames=("alpha", "beta", "temperature"))
    np.testing.assert_allclose(f(s, t, y, alpha=1.0, beta=8.0, temperature=4.0),
                               dkd(s, t, y, 1.0, 8.0, 4.0), rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dkd_extreme_logits_finite_value_and_grad(dtype):
    s = jnp.array([[1e4, -1e4, 0.0, 5.0], [-1e4, 1e4, -1e4, 1e4], [0.0, 0.0, 1e4, -1e4]], dtype)
    t = jnp.array([[-1e4, 1e4, 0.0, -1e4], [1e4, -1e4, 1e4, -1e4], [1e4, 0.0, -1e4, 0.0]], dtype)
    y = jnp.array([0, 1, 2])
    for fn in (lambda a, b: dkd(a, b, y, 1.0, 8.0, 4.0),
               lambda a, b: jnp.sum(tckd(a, b, y, 1.0)),
               lambda a, b: jnp.sum(nckd(a, b, y, 1.0))):
        value, grads = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))(s, t)
        assert jnp.isfinite(value)
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


def test_dkd_extreme_logits_value_matches_log_space_reference():
    s = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, 1e4, 2.0, 1e4]])
    t = np.array([[-1e4, 1e4, 0.0, -1e4], [3.0, -1e4, 1e4, -1e4]])
    y = np.array([2, 0])
    # Log-space numpy reference (the probability form overflows at these logits).
    exp_nc = []
    for b in range(2):
        zs, zt = np.delete(s[b], y[b]), np.delete(t[b], y[b])
        qs, qt = zs - logsumexp(zs), zt - logsumexp(zt)
        exp_nc.append(np.sum(np.exp(qt) * (qt - qs)))
    np.testing.assert_allclose(nckd(s, t, y, 1.0), exp_nc, rtol=1e-9)
    assert bool(jnp.all(jnp.isfinite(tckd(s, t, y, 1.0))))


def test_dkd_bad_arguments():
    s, t, y = data()
    with pytest.raises(ConfigError, match="temperature"):
        dkd(s, t, y, 1.0, 8.0, 0.0)
    with pytest.raises(ConfigError, match="alpha"):
        dkd(s, t, y, -1.0, 8.0, 4.0)
    with pytest.raises(ConfigError, match="beta"):
        dkd(s, t, y, 1.0, -0.5, 4.0)
    with pytest.raises(ConfigError, match="labels"):
        dkd(s, t, np.full(7, 6), 1.0, 8.0, 4.0)
    with pytest.raises(ConfigError, match="labels"):
        dkd(s, t, y[:3], 1.0, 8.0, 4.0)
    with pytest.raises(ConfigError, match="integers"):
        dkd(s, t, y.astype(float), 1.0, 8.0, 4.0)
    with pytest.raises(ConfigError, match="2 classes"):
        dkd(s[:, :1], t[:, :1], np.zeros(7, int), 1.0, 8.0, 4.0)
    with pytest.raises(ConfigError, match=r"\(7, 6\).*\(7, 5\)"):
        dkd(s, t[:, :5], y, 1.0, 8.0, 4.0)
