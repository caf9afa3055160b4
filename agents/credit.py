"""Counterfactual credit per teacher, and the policy gradient it gives.

A credit round starts from one student state and runs one epoch of decisions twice over the
same batches (and the same per-decision keys): once as the policy chooses (the main run) and
once per teacher k with k's weight flipped on every decision, `w_k -> 1 - w_k` (branch k).
The environment's transition is deterministic given the state, so the difference of the two
returns, `gain_k = R(main) - R(branch k)`, is what teacher k's choices did over that epoch: with
a selected teacher it is `R(with k) - R(without k)`, with a skipped one minus that.

The selector's objective is the expected return `J = E[R(a)]` over independent Bernoulli
selections `a_k ~ sigmoid(l_k)`. For one teacher, `dJ/dl_k = p_k (1 - p_k) (R(a_k = 1) - R(a_k = 0))`:
REINFORCE with a per-teacher counterfactual baseline (COMA-style), its expectation over the
teacher's own action taken in closed form. The difference `R(a_k = 1) - R(a_k = 0)` of a decision
is estimated by `(2 w_k - 1) gain_k`, the epoch's measured gain signed by what the main run did
(exact when k was kept, or skipped, on the whole epoch; shrunk towards 0 when it was mixed).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def flip_teacher(weights: jax.Array, teacher: jax.Array) -> jax.Array:
    """`weights` (..., K) with column `teacher` replaced by `1 - w`; `teacher` may be traced."""
    one_hot = jax.nn.one_hot(teacher, weights.shape[-1], dtype=weights.dtype)
    return weights + one_hot * (1.0 - 2.0 * weights)


def counterfactual_gains(main_return: jax.Array, branch_returns: jax.Array) -> jax.Array:
    """gain_k = R(main) - R(branch k): (K,)."""
    return main_return - branch_returns


def policy_gradient_loss(logits: jax.Array, weights: jax.Array, gains: jax.Array) -> jax.Array:
    """A surrogate whose gradient in the logits (T, [B,] K) is minus the estimated dJ/dl per
    decision, averaged over decisions (and examples): `-mean(p (1 - p) (2 w - 1) gain . l)`.
    weights: what the main run trained with, same shape as `logits`; gains (K,)."""
    p = jax.nn.sigmoid(logits)
    credit = jax.lax.stop_gradient(p * (1.0 - p) * (2.0 * weights - 1.0) * gains)
    return -jnp.mean(jnp.sum(credit * logits, axis=-1))


def update_statistics(mean: jax.Array, scale: jax.Array, rows: jax.Array, rounds: jax.Array, decay: float,
                      floor: float = 0.1):
    """Running per-teacher feature statistics from one round's rows (..., K, F): an exponential
    average of the round means and second moments (the first round sets them), so a feature that
    drifts across rounds (progress, the student's loss) keeps a spread. `scale` is at least
    `floor`, so a feature that barely moves is not blown up."""
    axes = tuple(range(rows.ndim - 2))
    round_mean, round_square = rows.mean(axis=axes), jnp.square(rows).mean(axis=axes)
    old_square = jnp.square(scale) + jnp.square(mean)
    weight = jnp.where(rounds == 0, 0.0, decay)
    new_mean = weight * mean + (1.0 - weight) * round_mean
    new_square = weight * old_square + (1.0 - weight) * round_square
    variance = jnp.maximum(new_square - jnp.square(new_mean), 0.0)
    return new_mean, jnp.maximum(jnp.sqrt(variance), floor)


def running_scale(scale: jax.Array, gains: jax.Array, rounds: jax.Array, decay: float, floor: float = 1e-4):
    """Exponential average of the root-mean-square gain over teachers (the first round sets it):
    gains divided by it are in units of their own typical size, so one learning rate fits a reward
    measured in accuracy points or in nats, and a round of pure noise moves the policy by about
    the same amount whatever the reward's scale."""
    square = jnp.mean(jnp.square(gains))
    weight = jnp.where(rounds == 0, 0.0, decay)
    return jnp.maximum(jnp.sqrt(weight * jnp.square(scale) + (1.0 - weight) * square), floor)
