"""RKD distance/angle against pair and triplet loops; invariances; coincident points."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.errors import ConfigError
from mtkd.losses import rkd_angle, rkd_distance


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def huber(x):
    return 0.5 * x * x if abs(x) <= 1 else abs(x) - 0.5


def np_rkd_distance(s, t):
    b = s.shape[0]
    pairs = [(i, j) for i in range(b) for j in range(b) if i != j]

    def psi(e):
        d = {(i, j): np.linalg.norm(e[i] - e[j]) for i, j in pairs}
        mu = sum(d.values()) / len(pairs)
        return {k: v / mu for k, v in d.items()}

    ps, pt = psi(s), psi(t)
    return sum(huber(ps[k] - pt[k]) for k in pairs) / len(pairs)


def np_rkd_angle(s, t):
    def cos(e, i, j, k):
        u, v = e[i] - e[j], e[k] - e[j]
        return u @ v / (np.linalg.norm(u) * np.linalg.norm(v))

    triplets = list(itertools.permutations(range(s.shape[0]), 3))
    return sum(huber(cos(s, *tr) - cos(t, *tr)) for tr in triplets) / len(triplets)


def embeddings(seed, b=6, ds=3, dt=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b, ds)), rng.normal(size=(b, dt)) * 3


def test_rkd_distance_matches_numpy():
    s, t = embeddings(0)
    np.testing.assert_allclose(rkd_distance(s, t), np_rkd_distance(s, t), rtol=1e-10)
    # Large disagreement exercises the linear part of the Huber loss.
    t2 = t.copy()
    t2[0] *= 40
    np.testing.assert_allclose(rkd_distance(s, t2), np_rkd_distance(s, t2), rtol=1e-10)
    np.testing.assert_allclose(jax.jit(rkd_distance)(s, t2), np_rkd_distance(s, t2), rtol=1e-10)


def test_rkd_angle_matches_numpy():
    s, t = embeddings(1, b=5)
    np.testing.assert_allclose(rkd_angle(s, t), np_rkd_angle(s, t), rtol=1e-10)
    np.testing.assert_allclose(jax.jit(rkd_angle)(s, t), np_rkd_angle(s, t), rtol=1e-10)


def test_rkd_feature_maps_are_flattened():
    rng = np.random.default_rng(5)
    s, t = rng.normal(size=(4, 2, 2, 3)), rng.normal(size=(4, 7))
    np.testing.assert_allclose(rkd_distance(s, t), np_rkd_distance(s.reshape(4, -1), t),
                               rtol=1e-10)


@pytest.mark.parametrize("loss", [rkd_distance, rkd_angle])
def test_rkd_invariant_to_rotation_and_scaling(loss):
    s, t = embeddings(2, b=6, ds=4, dt=4)
    rng = np.random.default_rng(3)
    rs, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    rt, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    base = loss(s, t)
    assert float(base) > 1e-3
    np.testing.assert_allclose(loss(s @ rs, t @ rt), base, rtol=1e-9)
    np.testing.assert_allclose(loss(2.5 * s, 0.1 * t), base, rtol=1e-9)
    np.testing.assert_allclose(loss(3.0 * s @ rs, 3.0 * t @ rs), base, rtol=1e-9)


@pytest.mark.parametrize("loss", [rkd_distance, rkd_angle])
def test_rkd_finite_gradients_at_coincident_points(loss):
    s, t = embeddings(4, b=5)
    s[1] = s[0]
    t[3] = t[2]
    grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(jnp.asarray(s), jnp.asarray(t))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    same = jax.jit(jax.grad(loss))(jnp.zeros((4, 3)), jnp.asarray(t[:4]))  # all points coincide
    assert bool(jnp.all(jnp.isfinite(same)))


def test_rkd_bad_inputs():
    with pytest.raises(ConfigError, match="at least 3"):
        rkd_angle(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="at least 2"):
        rkd_distance(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ConfigError, match=r"\(4, 3\).*\(5, 3\)"):
        rkd_distance(np.zeros((4, 3)), np.zeros((5, 3)))
