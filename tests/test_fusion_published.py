"""The published weighting methods (EBKD, CA-MKD, AE-KD) against independent numpy computations."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.errors import ConfigError
from mtkd.fusion import StrategyContext, StrategyInput, make_strategy
from mtkd.fusion.ae_kd import teacher_gradients
from mtkd.fusion.min_norm import min_norm_weights, project_capped_simplex

RNG = np.random.default_rng(3)
K, B, C = 4, 16, 7
TEACHERS = (RNG.normal(size=(K, B, C)) * 2.5).astype(np.float32)
STUDENT = RNG.normal(size=(B, C)).astype(np.float32)
LABELS = RNG.integers(0, C, B)
CONTEXT = StrategyContext(tuple(f"t{k}" for k in range(K)), (0.9,) * K)


def weights(spec, teachers=TEACHERS, labels=LABELS, student=STUDENT):
    names = tuple(f"t{k}" for k in range(teachers.shape[0]))
    batch = StrategyInput(jax.random.key(0), jnp.asarray(teachers), jnp.asarray(labels), jnp.asarray(student),
                          jnp.float32(0))
    return np.asarray(make_strategy(spec, StrategyContext(names, (0.9,) * len(names))).weights(batch))


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_ebkd_weights_by_hand():
    expected = np.zeros((B, K))
    for i in range(B):
        entropies = []
        for k in range(K):
            p = softmax(TEACHERS[k, i].astype(np.float64))
            entropies.append(-np.sum(p * np.log(p)))
        expected[i] = 1.0 - np.array(entropies) / sum(entropies)
    got = weights("ebkd")
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), K - 1, rtol=1e-5)  # not renormalised, as in the paper


def test_ca_mkd_weights_by_hand():
    expected = np.zeros((B, K))
    for i in range(B):
        ce = np.array([-np.log(softmax(TEACHERS[k, i].astype(np.float64))[LABELS[i]]) for k in range(K)])
        expected[i] = (1.0 - softmax(ce)) / (K - 1)
    got = weights("ca_mkd")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


def test_ae_kd_teacher_gradients_by_hand():
    # d/dz_s of mean_i T^2 KL(p_k^T || p_s^T) is T (p_s^T - p_k^T) / B per example; summed over i.
    temperature = 4.0
    p_s = softmax(STUDENT.astype(np.float64) / temperature)
    expected = np.stack([(temperature * (p_s - softmax(TEACHERS[k].astype(np.float64) / temperature))).mean(axis=0)
                         for k in range(K)])
    np.testing.assert_allclose(np.asarray(teacher_gradients(jnp.asarray(TEACHERS), jnp.asarray(STUDENT))),
                               expected, rtol=1e-4, atol=1e-7)


def grid_min_norm(gram, cap, n=300):
    """Brute force over a fine grid of the K = 3 simplex: the capped weights of least w^T G w."""
    best, best_w = np.inf, None
    for i, j in itertools.product(range(n + 1), repeat=2):
        if i + j > n:
            continue
        w = np.array([i, j, n - i - j]) / n
        if w.max() <= cap + 1e-12 and w @ gram @ w < best:
            best, best_w = w @ gram @ w, w
    return best, best_w


@pytest.mark.parametrize("case", range(4))
def test_min_norm_solver_against_a_simplex_grid(case):
    rng = np.random.default_rng(case)
    g = rng.normal(size=(3, 5)) + (rng.normal(size=5) if case % 2 else 0.0)  # odd cases: correlated gradients
    gram = g @ g.T
    cap = 0.6 if case < 3 else 0.45
    w = np.asarray(min_norm_weights(jnp.asarray(gram, jnp.float32), cap), np.float64)
    best, best_w = grid_min_norm(gram, cap)
    assert abs(w.sum() - 1.0) < 1e-5 and w.min() >= -1e-7 and w.max() <= cap + 1e-6
    assert w @ gram @ w <= best + 1e-4  # no worse than the best grid point
    np.testing.assert_allclose(w, best_w, atol=5e-3)  # and at it (grid step 1/300)


def test_capped_simplex_projection_is_the_nearest_feasible_point():
    rng = np.random.default_rng(7)
    grid = np.array([[i, j, 300 - i - j] for i in range(301) for j in range(301 - i)]) / 300
    feasible = grid[grid.max(axis=1) <= 0.6 + 1e-12]
    for _ in range(5):
        v = rng.normal(size=3) * 2
        p = np.asarray(project_capped_simplex(jnp.asarray(v, jnp.float32), 0.6), np.float64)
        nearest = feasible[np.argmin(np.sum((feasible - v) ** 2, axis=1))]
        np.testing.assert_allclose(p, nearest, atol=5e-3)


def test_ae_kd_weights_respect_the_cap_and_sum_to_one():
    got = weights("ae_kd")
    assert np.all(got == got[:1])  # one weight vector per batch
    assert abs(got[0].sum() - 1.0) < 1e-5 and got.min() >= -1e-7 and got.max() <= 0.6 + 1e-6
    tight = weights("ae_kd:0.3")
    assert tight.max() <= 0.3 + 1e-6 and abs(tight[0].sum() - 1.0) < 1e-5
    # A cap below 1/K leaves no feasible point: the cap becomes 1/K, i.e. uniform weights.
    np.testing.assert_allclose(weights("ae_kd:0.1")[0], np.full(K, 1 / K), atol=1e-5)


def test_min_norm_weights_shrink_the_largest_gradient():
    """MGDA's min-norm point leans away from a gradient that dominates the others."""
    g = np.array([[1.0, 0.2, 0.0], [0.9, 0.0, 0.3], [4.0, 1.0, 0.5]])
    w = np.asarray(min_norm_weights(jnp.asarray(g @ g.T, jnp.float32), 0.6))
    assert w[2] < w[0] and w[2] < w[1]


def test_min_norm_weights_give_an_opposing_gradient_its_cap():
    """What the min-norm rule does with a teacher that pulls the other way: it *raises* its weight,
    to cancel the others (g_1 = g_2 = a, g_3 = -a: optimum 1/4, 1/4, 1/2). AE-KD does not
    down-weight an opposing teacher; the README and docs/methods.md say so."""
    a = np.array([1.0, 0.5, 0.0])
    g = np.stack([a, a, -a])
    w = np.asarray(min_norm_weights(jnp.asarray(g @ g.T, jnp.float32), 0.6))
    np.testing.assert_allclose(w, [0.25, 0.25, 0.5], atol=1e-4)


def permuted_pool():
    """A confident honest teacher, an independent honest one and the first one's classes rolled by 3."""
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 10, 256)

    def honest():
        z = rng.normal(size=(256, 10))
        z[np.arange(256), labels] += 4.0
        return z

    source = honest()
    return np.stack([source, honest(), np.roll(source, 3, axis=1)]).astype(np.float32), labels


def test_ca_mkd_down_weights_a_class_permuted_teacher():
    teachers, labels = permuted_pool()
    mean = weights("ca_mkd", teachers, labels, np.zeros((256, 10), np.float32)).mean(axis=0)
    assert mean[2] < 0.2 * mean[0]


def test_ebkd_cannot_tell_a_class_permuted_teacher_from_its_source():
    """Entropy ignores which class is predicted, so EBKD gives the permuted copy its source's weight."""
    teachers, labels = permuted_pool()
    got = weights("ebkd", teachers, labels, np.zeros((256, 10), np.float32))
    np.testing.assert_allclose(got[:, 2], got[:, 0], rtol=1e-5)


@pytest.mark.parametrize("spec,message", [("ebkd:1", "takes no argument"), ("ca_mkd:x", "takes no argument"),
                                          ("ae_kd:zero", "must be a number"), ("ae_kd:1.5", "must be in")])
def test_bad_published_strategy_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_strategy(spec, CONTEXT)
