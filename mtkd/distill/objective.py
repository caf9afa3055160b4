"""The distillation objective: `alpha * CE + (1 - alpha) * T^2 * KL(q || p_s^T)` (docs/methods.md, Distillation objective)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example cross-entropy with integer labels: (B, C), (B,) -> (B,)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def soft_target_kl(student_logits: jax.Array, target: jax.Array, temperature: float) -> jax.Array:
    """Per-example `KL(target || softmax(student / T))`; target (B, C) is a distribution.

    Zero-probability target entries contribute 0 (x log x -> 0), so a one-hot or very
    confident fused target gives no NaN.
    """
    log_student = jax.nn.log_softmax(student_logits / temperature, axis=-1)
    safe_log_target = jnp.log(jnp.where(target > 0, target, 1.0))
    return jnp.sum(jnp.where(target > 0, target * (safe_log_target - log_student), 0.0), axis=-1)


def distillation_loss(student_logits, labels, target, has_target, alpha, temperature):
    """Mean over the batch of the per-example distillation loss.

    student_logits (B, C); labels (B,); target (B, C) the fused teacher distribution;
    has_target (B,) bool, False where no teacher was selected for the example: there the loss
    is the plain cross-entropy (weight 1, not alpha), so a batch with every teacher skipped
    trains exactly like a student alone.
    """
    ce = cross_entropy(student_logits, labels)
    kd = temperature**2 * soft_target_kl(student_logits, target, temperature)
    per_example = jnp.where(has_target, alpha * ce + (1.0 - alpha) * kd, ce)
    return per_example.mean()


# Temperatures tried by `calibrated_cross_entropy`: 0.25 to 32, log-spaced, 2^(1/5) ~ 1.15 between
# neighbours (CE is smooth in log T, so the grid minimum is within a fraction of a percent of the
# continuous one). 1.0 is on the grid, so the calibrated loss never exceeds the plain one.
CALIBRATION_TEMPERATURES = tuple(float(2.0 ** (-2 + 7 * i / 35)) for i in range(36))


def calibrated_cross_entropy(logits: jax.Array, labels: jax.Array,
                             temperatures=CALIBRATION_TEMPERATURES) -> jax.Array:
    """Mean cross-entropy of `logits / T` at the best temperature T of a fixed grid (temperature
    scaling, Guo et al. 2017): the loss with the model's calibration taken out, so it measures
    how well the logits rank the classes, not how confident they are (docs/methods.md, The
    selector's reward). logits (N, C), labels (N,) -> scalar."""
    grid = jnp.asarray(temperatures, jnp.float32)
    losses = jax.vmap(lambda t: cross_entropy(logits / t, labels).mean())(grid)
    return jnp.min(losses)
