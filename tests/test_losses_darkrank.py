"""DarkRank hard (ListMLE) and soft (KL over permutations) against explicit loops."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.errors import ConfigError
from mtkd.losses import darkrank


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def np_scores(e, alpha, beta):
    """list over queries of (candidate scores in batch order)."""
    b = e.shape[0]
    return [np.array([-alpha * np.linalg.norm(e[q] - e[x]) ** beta for x in range(b) if x != q])
            for q in range(b)]


def pl_prob(scores, order):
    """Plackett-Luce probability of a ranking, as a product of choice probabilities."""
    prob = 1.0
    for r in range(len(order)):
        rest = scores[list(order[r:])]
        m = rest.max()
        prob *= np.exp(scores[order[r]] - m) / np.sum(np.exp(rest - m))
    return prob


def np_hard(s, t, alpha, beta):
    total = 0.0
    for ss, ts in zip(np_scores(s, alpha, beta), np_scores(t, alpha, beta)):
        order = sorted(range(len(ts)), key=lambda i: -ts[i])
        total += -np.log(pl_prob(ss, order))
    return total / s.shape[0]


def np_soft(s, t, alpha, beta):
    total = 0.0
    for ss, ts in zip(np_scores(s, alpha, beta), np_scores(t, alpha, beta)):
        for perm in itertools.permutations(range(len(ts))):
            pt, ps = pl_prob(ts, perm), pl_prob(ss, perm)
            total += pt * np.log(pt / ps)
    return total / s.shape[0]


def embeddings(seed, b=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b, 3)) * 0.6, rng.normal(size=(b, 4)) * 0.6


@pytest.mark.parametrize("alpha,beta", [(3.0, 3.0), (1.0, 2.0), (0.5, 1.0)])
def test_darkrank_hard_matches_numpy(alpha, beta):
    s, t = embeddings(0, b=6)
    np.testing.assert_allclose(darkrank(s, t, alpha, beta, "hard"), np_hard(s, t, alpha, beta),
                               rtol=1e-9)


@pytest.mark.parametrize("alpha,beta", [(3.0, 3.0), (1.0, 2.0)])
def test_darkrank_soft_matches_numpy(alpha, beta):
    s, t = embeddings(1, b=5)
    np.testing.assert_allclose(darkrank(s, t, alpha, beta, "soft"), np_soft(s, t, alpha, beta),
                               rtol=1e-8)


def test_darkrank_jit_and_soft_properties():
    s, t = embeddings(2, b=5)
    f = jax.jit(darkrank, static_argnames=("alpha", "beta", "mode"))
    np.testing.assert_allclose(f(s, t, alpha=3.0, beta=3.0, mode="soft"),
                               darkrank(s, t, mode="soft"), rtol=1e-10)
    assert abs(float(darkrank(t, t, mode="soft"))) < 1e-10
    assert float(darkrank(s, t, mode="soft")) > 0


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_darkrank_finite_gradients_at_coincident_points(mode):
    s, t = embeddings(3, b=5)
    s[1] = s[0]
    t[2] = t[4]
    for beta in (3.0, 0.5):  # beta < 1 has an infinite slope at distance 0 without care
        grad_fn = jax.jit(jax.grad(darkrank, argnums=(0, 1)), static_argnums=(2, 3, 4))
        grads = grad_fn(jnp.asarray(s), jnp.asarray(t), 3.0, beta, mode)
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


def test_darkrank_bad_inputs():
    s, t = embeddings(4, b=10)
    with pytest.raises(ConfigError, match=r"9 candidates.*limit is 8"):
        darkrank(s, t, mode="soft")
    assert jnp.isfinite(darkrank(s, t, mode="hard"))
    with pytest.raises(ConfigError, match="mode"):
        darkrank(s, t, mode="listnet")
    with pytest.raises(ConfigError, match="alpha"):
        darkrank(s, t, alpha=-3.0)
    with pytest.raises(ConfigError, match="beta"):
        darkrank(s, t, beta=0.0)
    with pytest.raises(ConfigError, match="at least 2"):
        darkrank(s[:1], t[:1])
