"""Logit distillation (Hinton et al. 2015; docs/methods.md, Distillation objective)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtkd.losses._common import check_logits, check_temperature


def kl_from_log_probs(log_p, log_q):
    """KL(p || q) over the last axis from log-probabilities.

    Taking `p = exp(log_p)` keeps every term finite for extreme logits: where p underflows to
    0, the term is 0 * (finite) = 0 and its gradient is finite too.
    """
    return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


def kd_per_example(student_logits, teacher_logits, temperature):
    """(B, C), (B, C) -> (B,): `T^2 * KL(softmax(t/T) || softmax(s/T))` per example."""
    check_logits(student_logits, teacher_logits)
    check_temperature(temperature)
    log_p_t = jax.nn.log_softmax(teacher_logits / temperature, axis=-1)
    log_p_s = jax.nn.log_softmax(student_logits / temperature, axis=-1)
    # T^2 keeps the soft-target gradient magnitude independent of T.
    return temperature**2 * kl_from_log_probs(log_p_t, log_p_s)


def kd(student_logits, teacher_logits, temperature):
    """Scalar: `T^2 * mean_b KL(softmax(t_b/T) || softmax(s_b/T))`.

    student_logits, teacher_logits: (B, C). temperature: > 0 (ConfigError otherwise).
    """
    return jnp.mean(kd_per_example(student_logits, teacher_logits, temperature))
