"""`val_acc_weighted_confidence`: per-example confidence in the true label, scaled by each
teacher's validation accuracy (docs/methods.md, Fusion strategies).

`w_bk = a_k p_k(y_b) / sum_j a_j p_j(y_b)` = `softmax_k(log a_k - CE_k(y_b))`, with `a_k` teacher
k's validation accuracy and `p_k(y_b)` its probability of example b's label. It is `confidence`
with `weighted`'s prior: a teacher that is right on this example counts more, and one that is
right less often overall counts less. A teacher with validation accuracy 0 gets weight 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtkd.fusion.strategies import STRATEGIES, FusionStrategy, StrategyContext, StrategyInput, no_argument


@STRATEGIES.register("val_acc_weighted_confidence")
def val_acc_weighted_confidence_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    no_argument("val_acc_weighted_confidence", argument)
    log_prior = jnp.log(jnp.asarray(context.teacher_val_accuracy, jnp.float32))  # (K,); -inf at 0

    def weights(batch: StrategyInput):
        log_probs = jax.nn.log_softmax(batch.teacher_logits, axis=-1)  # (K, B, C)
        true_log_prob = jnp.take_along_axis(log_probs, batch.labels[None, :, None], axis=-1)[..., 0]  # (K, B)
        return jax.nn.softmax(true_log_prob.T + log_prior, axis=-1)  # (B, K)

    return FusionStrategy("val_acc_weighted_confidence", weights)
