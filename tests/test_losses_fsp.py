"""fsp_matrix / fsp against explicit loops; shape checks."""

import jax
import numpy as np
import pytest

from mtkd.errors import ConfigError
from mtkd.losses import fsp, fsp_matrix


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def np_fsp_matrix(f1, f2):
    b, h, w, m = f1.shape
    n = f2.shape[-1]
    g = np.zeros((b, m, n))
    for bi in range(b):
        for i in range(m):
            for j in range(n):
                g[bi, i, j] = sum(f1[bi, y, x, i] * f2[bi, y, x, j]
                                  for y in range(h) for x in range(w)) / (h * w)
    return g


def test_fsp_matrix_and_loss_match_numpy():
    rng = np.random.default_rng(0)
    s1, s2 = rng.normal(size=(2, 3, 4, 2)), rng.normal(size=(2, 3, 4, 3))
    t1, t2 = rng.normal(size=(2, 3, 4, 2)), rng.normal(size=(2, 3, 4, 3))
    np.testing.assert_allclose(fsp_matrix(s1, s2), np_fsp_matrix(s1, s2), rtol=1e-10)
    expected = np.mean((np_fsp_matrix(s1, s2) - np_fsp_matrix(t1, t2)) ** 2)
    np.testing.assert_allclose(fsp((s1, s2), (t1, t2)), expected, rtol=1e-10)
    np.testing.assert_allclose(jax.jit(fsp)((s1, s2), (t1, t2)), expected, rtol=1e-10)


def test_fsp_1d_feature_maps():
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 4))
    np.testing.assert_allclose(fsp_matrix(f1, f2),
                               np_fsp_matrix(f1[:, :, None], f2[:, :, None]), rtol=1e-10)


def test_fsp_bad_inputs():
    a, b = np.zeros((2, 4, 4, 3)), np.zeros((2, 2, 2, 3))
    with pytest.raises(ConfigError, match=r"\(2, 4, 4, 3\).*\(2, 2, 2, 3\)"):
        fsp((a, b), (a, a))
    with pytest.raises(ConfigError, match="channel"):
        fsp((a, a), (a, np.zeros((2, 4, 4, 5))))
    with pytest.raises(ConfigError, match="pair"):
        fsp(a, (a, a))
