"""hint: mean squared / absolute difference, shape and norm checks."""

import jax
import numpy as np
import pytest

from mtkd.errors import ConfigError
from mtkd.losses import hint


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (4, 7)])
def test_hint_matches_numpy(shape):
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=shape), rng.normal(size=shape)
    flat_s, flat_t = s.ravel(), t.ravel()
    l2 = sum((flat_t[i] - flat_s[i]) ** 2 for i in range(flat_s.size)) / flat_s.size
    l1 = sum(abs(flat_t[i] - flat_s[i]) for i in range(flat_s.size)) / flat_s.size
    np.testing.assert_allclose(hint(s, t), l2, rtol=1e-12)
    np.testing.assert_allclose(hint(s, t, norm="l1"), l1, rtol=1e-12)
    f = jax.jit(hint, static_argnames="norm")
    np.testing.assert_allclose(f(s, t, norm="l1"), l1, rtol=1e-12)


def test_hint_shape_mismatch_names_both_shapes():
    with pytest.raises(ConfigError, match=r"\(2, 4, 4, 8\).*\(2, 4, 4, 16\)"):
        hint(np.zeros((2, 4, 4, 8)), np.zeros((2, 4, 4, 16)))


def test_hint_unknown_norm():
    with pytest.raises(ConfigError, match="norm"):
        hint(np.zeros((2, 3)), np.zeros((2, 3)), norm="l3")
