"""AE-KD (Du et al., NeurIPS 2020): teachers weighted per batch so that their KD gradients agree.

Per teacher, `L_k = mean_i T^2 KL(p_k^T || p_s^T)` at T = 4, and `g_k` is its gradient with
respect to the student's logits, averaged over the batch (in R^C, as in the authors' code). The batch's weights are the min-norm point of the g_k with each
weight capped at `C_tol` (MGDA with a cap; `mtkd.fusion.min_norm`), so a teacher whose gradient
points against the others' is down-weighted. The authors solve this with an SVM on the host;
here it is solved in the jitted step. Logits are the variable, so the K gradients cost no extra
backward pass through the student.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtkd.errors import ConfigError
from mtkd.fusion.min_norm import min_norm_weights
from mtkd.fusion.strategies import STRATEGIES, FusionStrategy, StrategyContext, StrategyInput
from mtkd.fusion.teacher_stats import PUBLISHED_TEMPERATURE, teacher_student_kl

DEFAULT_CAP = 0.6


def teacher_gradients(teacher_logits: jax.Array, student_logits: jax.Array,
                      temperature: float = PUBLISHED_TEMPERATURE) -> jax.Array:
    """`g_k`, (K, C): the gradient of `mean_i KL_ik` with respect to the student's logits (B, C),
    summed over examples, i.e. the batch mean of the per-example gradients."""
    def teacher_loss(logits, k):
        return teacher_student_kl(teacher_logits, logits, temperature)[:, k].mean()

    per_example = jax.vmap(jax.grad(teacher_loss), in_axes=(None, 0))(
        student_logits, jnp.arange(teacher_logits.shape[0]))  # (K, B, C)
    return per_example.sum(axis=1)


def ae_kd_weights(teacher_logits, student_logits, cap: float = DEFAULT_CAP,
                  temperature: float = PUBLISHED_TEMPERATURE) -> jax.Array:
    """(K,) AE-KD weights of one batch: sum to 1, each at most `max(cap, 1/K)`."""
    gradients = jax.lax.stop_gradient(teacher_gradients(teacher_logits, student_logits, temperature))
    return min_norm_weights(gradients @ gradients.T, cap)


@STRATEGIES.register("ae_kd")
def ae_kd_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """AE-KD: per-batch min-norm weights over the teachers' KD gradients, capped at
    `C_tol` (`ae_kd:C_TOL`, default 0.6)."""
    try:
        cap = DEFAULT_CAP if argument is None else float(argument)
    except ValueError:
        raise ConfigError(f"ae_kd:{argument}: the cap C_tol must be a number in (0, 1]") from None
    if not 0.0 < cap <= 1.0:
        raise ConfigError(f"ae_kd:{argument}: the cap C_tol must be in (0, 1], got {cap}")

    def weights(batch: StrategyInput):
        mu = ae_kd_weights(batch.teacher_logits, batch.student_logits, cap)
        return jnp.broadcast_to(mu, (batch.labels.shape[0], mu.shape[0]))

    return FusionStrategy("ae_kd" if argument is None else f"ae_kd:{argument}", weights, needs_student=True)
