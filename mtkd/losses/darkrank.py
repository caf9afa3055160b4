"""DarkRank: cross-sample similarity transfer (Chen et al. 2018; docs/methods.md, Distillation losses).

Scores `S(q, x) = -alpha * ||q - x||^beta`. Every example of the batch is a query in turn;
its candidates are the other B-1 examples, in batch order. A Plackett-Luce model with the
scores as logits gives the probability of a ranking pi (best first) of n candidates:

    log P(pi | s) = sum_{r=1..n} ( s[pi_r] - logsumexp(s[pi_r], ..., s[pi_n]) ).

- mode="hard" (ListMLE): `-log P(pi_t | s_student)`, pi_t the candidates sorted by teacher
  score, descending (ties keep batch order: a stable sort); averaged over the B queries.
  The teacher ranking is a constant (no gradient flows through the sort).
- mode="soft": `KL(P_teacher || P_student)` over all n! rankings, enumerated; averaged over
  queries. Only for n = B-1 <= MAX_SOFT_CANDIDATES (ConfigError otherwise: 8! = 40320
  rankings per query is the limit).

Embeddings are (B, D) (any (B, ...) is flattened); student and teacher D may differ.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.errors import ConfigError
from mtkd.losses._common import (
    as_embeddings,
    check_choice,
    check_positive,
    pairwise_sq_distances,
    safe_pow_of_sq,
)

MODES = ("hard", "soft")
MAX_SOFT_CANDIDATES = 8


def candidate_scores(emb, alpha=3.0, beta=3.0):
    """(B, D) -> (B, B-1): row q holds S(q, x) for the candidates x != q in batch order."""
    b = emb.shape[0]
    # ||q - x||^beta = (squared distance)^(beta/2), safe at coincident points for any beta > 0.
    scores = -alpha * safe_pow_of_sq(pairwise_sq_distances(emb), beta / 2)
    others = np.array([[x for x in range(b) if x != q] for q in range(b)], dtype=np.int32)
    return jnp.take_along_axis(scores, others.reshape(b, b - 1), axis=1)


def plackett_luce_log_prob(scores):
    """(..., n) scores already in ranking order (best first) -> (...,) log-probability."""
    tail_lse = jax.lax.cumlogsumexp(scores, axis=scores.ndim - 1, reverse=True)
    return jnp.sum(scores - tail_lse, axis=-1)


def _hard(s_scores, t_scores):
    order = jnp.argsort(-jax.lax.stop_gradient(t_scores), axis=-1, stable=True)
    ranked = jnp.take_along_axis(s_scores, order, axis=-1)
    return -jnp.mean(plackett_luce_log_prob(ranked))


def _soft(s_scores, t_scores):
    n = s_scores.shape[-1]
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int32)  # (n!, n)
    log_p_t = plackett_luce_log_prob(t_scores[:, perms])  # (B, n!)
    log_p_s = plackett_luce_log_prob(s_scores[:, perms])
    kl = jnp.sum(jnp.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)
    return jnp.mean(kl)


def darkrank(student_emb, teacher_emb, alpha=3.0, beta=3.0, mode="hard"):
    """Scalar DarkRank loss (see the module docstring). B >= 2; alpha, beta > 0."""
    check_choice("mode", mode, MODES)
    check_positive("alpha", alpha)
    check_positive("beta", beta)
    s, t = as_embeddings(student_emb, teacher_emb, 2, "darkrank")
    n = s.shape[0] - 1
    if mode == "soft" and n > MAX_SOFT_CANDIDATES:
        raise ConfigError(
            f"darkrank mode='soft' enumerates all rankings of the B-1 = {n} candidates per "
            f"query; the limit is {MAX_SOFT_CANDIDATES} (batch of {MAX_SOFT_CANDIDATES + 1}). "
            "Use a smaller batch or mode='hard'"
        )
    s_scores = candidate_scores(s, alpha, beta)
    t_scores = candidate_scores(t, alpha, beta)
    return _hard(s_scores, t_scores) if mode == "hard" else _soft(s_scores, t_scores)
