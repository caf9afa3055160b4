"""EBKD (Kwon et al., ICASSP 2020): teachers weighted per example by how certain they are.

`w_ik = 1 - H_ik / sum_j H_ij`, with `H_ik` the entropy of teacher k's softmax at T = 1. The
weights sum to K - 1 over teachers and are not renormalised here; the fused target divides by
their sum, which gives the same student gradient as the paper's `sum_ik w_ik KL_ik / (B K)` up
to the constant factor (K - 1) / K.
"""

from __future__ import annotations

import jax.numpy as jnp

from mtkd.fusion.strategies import STRATEGIES, FusionStrategy, StrategyContext, no_argument
from mtkd.fusion.teacher_stats import teacher_entropy


def entropy_weights(teacher_logits) -> jnp.ndarray:
    """(K, B, C) -> (B, K) EBKD weights. One teacher gets weight 1 (the formula would give 0);
    where every teacher is exactly certain (all entropies 0) each gets `1 - 1/K`."""
    entropy = teacher_entropy(teacher_logits)
    num_teachers = entropy.shape[-1]
    if num_teachers == 1:
        return jnp.ones_like(entropy)
    total = entropy.sum(axis=-1, keepdims=True)
    share = jnp.where(total > 0, entropy / jnp.where(total > 0, total, 1.0), 1.0 / num_teachers)
    return 1.0 - share


@STRATEGIES.register("ebkd")
def ebkd_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """EBKD: per-example weights `1 - H_ik / sum_j H_ij` from the teachers' entropies."""
    no_argument("ebkd", argument)
    return FusionStrategy("ebkd", lambda batch: entropy_weights(batch.teacher_logits))
