"""Decoupled knowledge distillation (Zhao et al. 2022; docs/methods.md, Distillation losses).

Both parts are computed in log space so that logits of +-1e4 give finite values and
gradients: the target class is removed from the non-target softmax by giving it a logit far
below the row minimum (its probability is then exactly 0 in float32 and float64), never by
multiplying probabilities by 0 before a log.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.errors import ConfigError
from mtkd.losses._common import (
    check_logits,
    check_nonnegative,
    check_temperature,
    is_traced,
)
from mtkd.losses.kd import kl_from_log_probs

# How far (in logit units, after dividing by T) the masked target logit sits below the row
# minimum: exp(-1000) is 0 in float64 as in float32, so the mask is exact.
_MASK_GAP = 1000.0


def _check_labels(logits, labels) -> None:
    if logits.shape[-1] < 2:
        raise ConfigError(f"dkd needs at least 2 classes, got logits {tuple(logits.shape)}")
    if labels.shape != logits.shape[:1]:
        raise ConfigError(
            f"labels must have shape (B,) = {tuple(logits.shape[:1])}, got {tuple(labels.shape)}"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ConfigError(f"labels must be integers, got dtype {labels.dtype}")
    if not is_traced(labels) and labels.size:
        # numpy, not jnp: inside a jit trace, jnp ops on a closed-over constant are traced.
        concrete = np.asarray(labels)
        lo, hi = int(concrete.min()), int(concrete.max())
        if lo < 0 or hi >= logits.shape[-1]:
            raise ConfigError(
                f"labels must lie in [0, {logits.shape[-1] - 1}], got values in [{lo}, {hi}]"
            )


def _split_log_probs(logits, labels, temperature):
    """Returns (log b, log p_hat): (B, 2) binary and (B, C) non-target log-probabilities.

    log b = [log p_target, log(1 - p_target)], where log(1 - p_target) is the logsumexp of
    the non-target logits minus the full logsumexp (no 1 - p cancellation). log p_hat has
    the target entry at about -1000 (probability exactly 0).
    """
    z = logits / temperature
    is_target = jax.nn.one_hot(labels, z.shape[-1], dtype=bool)
    floor = jax.lax.stop_gradient(jnp.min(z, axis=-1, keepdims=True)) - _MASK_GAP
    z_other = jnp.where(is_target, floor, z)
    lse_all = jax.nn.logsumexp(z, axis=-1)
    lse_other = jax.nn.logsumexp(z_other, axis=-1)
    z_target = jnp.take_along_axis(z, labels[:, None], axis=-1)[:, 0]
    log_b = jnp.stack([z_target - lse_all, lse_other - lse_all], axis=-1)
    log_p_hat = z_other - lse_other[:, None]
    return log_b, log_p_hat


def _checked(student_logits, teacher_logits, labels, temperature):
    check_logits(student_logits, teacher_logits)
    labels = jnp.asarray(labels)
    _check_labels(teacher_logits, labels)
    check_temperature(temperature)
    return labels


def tckd(student_logits, teacher_logits, labels, temperature):
    """(B,): target-class part `T^2 * KL(b_t || b_s)`, b = [p_target, 1 - p_target] at T."""
    labels = _checked(student_logits, teacher_logits, labels, temperature)
    log_b_t, _ = _split_log_probs(teacher_logits, labels, temperature)
    log_b_s, _ = _split_log_probs(student_logits, labels, temperature)
    return temperature**2 * kl_from_log_probs(log_b_t, log_b_s)


def nckd(student_logits, teacher_logits, labels, temperature):
    """(B,): non-target part `T^2 * KL(p_hat_t || p_hat_s)` over the C-1 other classes at T."""
    labels = _checked(student_logits, teacher_logits, labels, temperature)
    _, log_q_t = _split_log_probs(teacher_logits, labels, temperature)
    _, log_q_s = _split_log_probs(student_logits, labels, temperature)
    return temperature**2 * kl_from_log_probs(log_q_t, log_q_s)


def dkd(student_logits, teacher_logits, labels, alpha=1.0, beta=8.0, temperature=4.0):
    """Scalar: `mean_b (alpha * TCKD_b + beta * NCKD_b)`.

    student_logits, teacher_logits: (B, C), C >= 2; labels: (B,) integers in [0, C).
    alpha, beta >= 0; temperature > 0 (ConfigError otherwise). Defaults are the paper's
    (alpha 1, beta 8, T 4). Identity (per example): KD = TCKD + (1 - p_target_t) * NCKD.
    """
    check_nonnegative("alpha", alpha)
    check_nonnegative("beta", beta)
    return jnp.mean(
        alpha * tckd(student_logits, teacher_logits, labels, temperature)
        + beta * nckd(student_logits, teacher_logits, labels, temperature)
    )
