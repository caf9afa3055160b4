"""DIST against a numpy computation written loop by loop, its invariances, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.distill.loss_config import LossConfig
from mtkd.errors import ConfigError
from mtkd.losses import LOSSES, dist


def numpy_dist(s, t, beta, gamma, temperature):
    def softmax(z):
        e = np.exp(z / temperature - (z / temperature).max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p_s, p_t = softmax(s.astype(np.float64)), softmax(t.astype(np.float64))
    inter = np.mean([1 - np.corrcoef(p_s[i], p_t[i])[0, 1] for i in range(s.shape[0])])
    intra = np.mean([1 - np.corrcoef(p_s[:, c], p_t[:, c])[0, 1] for c in range(s.shape[1])])
    return temperature ** 2 * (beta * inter + gamma * intra)


@pytest.mark.parametrize("beta,gamma,temperature", [(1.0, 1.0, 1.0), (2.0, 0.5, 4.0), (0.0, 1.0, 2.0)])
def test_matches_numpy(beta, gamma, temperature):
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(12, 7)) * 3, rng.normal(size=(12, 7)) * 3
    got = float(dist(jnp.asarray(s, jnp.float32), jnp.asarray(t, jnp.float32), beta, gamma, temperature))
    assert got == pytest.approx(numpy_dist(s, t, beta, gamma, temperature), rel=1e-4, abs=1e-6)


def test_correlations_not_values():
    rng = np.random.default_rng(2)
    t = jnp.asarray(rng.normal(size=(16, 5)), jnp.float32)
    assert float(dist(t, t)) == pytest.approx(0.0, abs=1e-5)
    # A student that ranks like the teacher but is far less confident scores far lower under DIST
    # than an equally confident student with the classes shuffled.
    softer, shuffled = 0.3 * t, t[:, jnp.array([1, 2, 3, 4, 0])]
    assert float(dist(softer, t)) < 0.5 * float(dist(shuffled, t))
    assert np.isfinite(float(dist(jnp.zeros((4, 3)), t[:4, :3])))  # constant student rows stay finite
    grads = jax.grad(lambda s: dist(s, t))(jnp.zeros_like(t))
    assert np.all(np.isfinite(np.asarray(grads)))


def test_bad_input_and_the_composite_term():
    t = jnp.zeros((4, 3))
    for kwargs, message in (({"temperature": 0.0}, "temperature"), ({"beta": -1.0}, "beta"),
                            ({"gamma": float("nan")}, "gamma")):
        with pytest.raises(ConfigError, match=message):
            dist(t, t, **kwargs)
    with pytest.raises(ConfigError, match="at least 2"):
        dist(t[:1], t[:1])
    assert LOSSES.get("dist") is dist
    config = LossConfig.from_dicts([{"loss": "ce"}, {"loss": "dist", "gamma": 2.0}])
    assert config.uses_teachers and config.to_dicts()[1]["gamma"] == 2.0
    with pytest.raises(ConfigError, match="gama"):
        LossConfig.from_dicts([{"loss": "dist", "gama": 2.0}])
