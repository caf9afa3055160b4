"""The distillation loss and the fused target against by-hand numpy computations."""

import numpy as np
import pytest

from mtkd.distill.objective import distillation_loss
from mtkd.fusion import fuse_soft_targets


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def reference_loss(student, labels, teachers, weights, alpha, temperature):
    """Written example by example from docs/methods.md, Distillation objective."""
    total = 0.0
    for b in range(student.shape[0]):
        p_student = softmax(student[b].astype(np.float64))
        ce = -np.log(p_student[labels[b]])
        mu = weights[b]
        if mu.sum() == 0:
            total += ce
            continue
        q = sum(mu[k] * softmax(teachers[k, b] / temperature) for k in range(len(mu))) / mu.sum()
        log_ps = np.log(softmax(student[b].astype(np.float64) / temperature))
        kl = np.sum(q * (np.log(q) - log_ps))
        total += alpha * ce + (1 - alpha) * temperature**2 * kl
    return total / student.shape[0]


@pytest.mark.parametrize("temperature", [1.0, 4.0, 20.0])
def test_loss_matches_numpy_including_t_squared(temperature):
    rng = np.random.default_rng(0)
    student = rng.normal(size=(6, 5)).astype(np.float32) * 3
    teachers = rng.normal(size=(3, 6, 5)).astype(np.float32) * 3
    labels = rng.integers(0, 5, size=6)
    weights = rng.uniform(0, 2, size=(6, 3)).astype(np.float32)
    weights[2] = 0.0  # one example with every teacher skipped
    target, total = fuse_soft_targets(teachers, weights, temperature)
    loss = distillation_loss(student, labels, target, total > 0, 0.3, temperature)
    expected = reference_loss(student, labels, teachers, weights, 0.3, temperature)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-4)


def test_all_zero_weights_is_plain_cross_entropy():
    rng = np.random.default_rng(1)
    student = rng.normal(size=(4, 3)).astype(np.float32)
    teachers = rng.normal(size=(2, 4, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 1])
    target, total = fuse_soft_targets(teachers, np.zeros((4, 2), np.float32), 4.0)
    loss = distillation_loss(student, labels, target, total > 0, 0.3, 4.0)
    ce = -np.mean(np.log(softmax(student.astype(np.float64))[np.arange(4), labels]))
    np.testing.assert_allclose(float(loss), ce, rtol=1e-5)


def test_fused_target_is_the_weighted_average():
    rng = np.random.default_rng(2)
    teachers = rng.normal(size=(3, 5, 4)).astype(np.float32)
    weights = np.array([2.0, 0.0, 1.0], np.float32)
    target, total = fuse_soft_targets(teachers, weights, 2.0)
    expected = (2 * softmax(teachers[0] / 2) + 1 * softmax(teachers[2] / 2)) / 3
    np.testing.assert_allclose(np.asarray(target), expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(total), 3.0)


def test_confident_teacher_gives_finite_loss_and_gradient():
    import jax

    teachers = np.array([[[1e4, -1e4, 0.0]]], np.float32)
    target, total = fuse_soft_targets(teachers, np.ones((1, 1), np.float32), 1.0)
    grad = jax.grad(lambda s: distillation_loss(s, np.array([0]), target, total > 0, 0.5, 1.0))(
        np.array([[0.0, 5.0, -5.0]], np.float32))
    assert np.all(np.isfinite(np.asarray(grad)))
