"""The deep-mutual-learning objective of one peer (docs/methods.md, Deep mutual learning and self-distillation).

For peer k of K, with p_l^T = softmax(z_l / T) and the other peers' predictions held constant:

    dml:           L_k = CE(y, p_k) + T^2 / (K-1) * sum_{l != k} KL(p_l^T || p_k^T)
    dml+teachers:  L_k = alpha * CE(y, p_k) + (1 - alpha) * Tc^2 * KL(q^Tc || p_k^Tc)
                         + T^2 / (K-1) * sum_{l != k} KL(p_l^T || p_k^T)

q^Tc is the uniform average of the teachers' tempered softmax outputs (`fuse_soft_targets`,
the `uniform` strategy's target); alpha and Tc are TrainConfig's alpha and temperature, so the
first two terms are exactly `mtkd.distill.objective.distillation_loss`. The paper uses T = 1
(then T^2 = 1 and the formula is the paper's); for T != 1 the T^2 factor keeps the peer term's
gradient on the scale of the CE term, as in Hinton et al.'s KD.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtkd.distill.objective import cross_entropy, soft_target_kl


def peer_probabilities(peer_logits: jax.Array, temperature: float) -> jax.Array:
    """Every peer's tempered softmax as constants (no gradient flows into a peer through
    another peer's loss): (K, B, C) -> (K, B, C)."""
    return jax.nn.softmax(jax.lax.stop_gradient(peer_logits) / temperature, axis=-1)


def mutual_kl(logits: jax.Array, peer_probs: jax.Array, peer, temperature: float) -> jax.Array:
    """Per example `T^2 / (K-1) * sum_{l != peer} KL(peer_probs[l] || softmax(logits / T))`.

    logits (B, C) are peer `peer`'s own; peer_probs (K, B, C) hold all K peers' tempered
    predictions (the peer's own row is masked out). `peer` may be traced. Returns (B,).
    """
    num_peers = peer_probs.shape[0]
    kl = jax.vmap(soft_target_kl, in_axes=(None, 0, None))(logits, peer_probs, temperature)  # (K, B)
    others = jnp.where(jnp.arange(num_peers) == peer, 0.0, 1.0 / (num_peers - 1))
    return temperature**2 * (others @ kl)


def dml_loss(logits, labels, peer_probs, peer, teacher_target=None, *, temperature: float = 1.0,
             alpha: float = 0.3, teacher_temperature: float = 8.0) -> jax.Array:
    """Batch mean of peer `peer`'s loss (module docstring): a scalar.

    logits (B, C) the peer's own; labels (B,); peer_probs (K, B, C) from `peer_probabilities`
    at the same `temperature`; teacher_target (B, C) the fused teacher distribution at
    `teacher_temperature`, or None for plain DML (then alpha is not used).
    """
    ce = cross_entropy(logits, labels)
    peer_term = mutual_kl(logits, peer_probs, peer, temperature)
    if teacher_target is None:
        return (ce + peer_term).mean()
    teacher_term = teacher_temperature**2 * soft_target_kl(logits, teacher_target, teacher_temperature)
    return (alpha * ce + (1.0 - alpha) * teacher_term + peer_term).mean()
