"""Counterfactual credit per teacher, how much of it is evidence, and the policy step it gives.

A credit round starts from one student state and runs one epoch of decisions K + 1 times over
the same batches: once as the policy chooses (the reference branch, teacher k at mean weight
w_k) and once per teacher k with k's weight set to the far end of [0, 1] on every decision
(branch k: 1 where w_k < 0.5, else 0). The environment's transition is deterministic given the
state, so `gain_k = (R(branch k) - R(reference))`, signed towards selecting k (times +1 where
the branch selects k more, -1 where it selects k less), is what moving k's weight towards
"selected" did to the return: for a 0/1 selection exactly R(k selected) - R(k skipped), the
counterfactual a Bernoulli policy gradient needs; positive when k helps (docs/methods.md, The
selector's credit). It is a return difference, not a slope, so every teacher's gain carries the
same noise, whatever its weight.

The selector's logits l_k give weights w_k = sigmoid(l_k) (expected) or their 0/1 rounding
(greedy). The policy step is the natural gradient of the return for independent Bernoulli
selections: dJ/dl_k = p_k (1 - p_k) dR/dw_k, divided by the Fisher information p_k (1 - p_k),
is dR/dw_k itself. Before it is used, each gain is divided by the noise of a gain, estimated
from how much the gains move between rounds (successive differences cancel a slowly changing
true effect), and soft-thresholded: a round moves teacher k only by the part of its evidence
beyond `threshold` noise units, capped at `cap`. Rewards of pure noise then barely move the
policy (the null-reward control), while an effect many times the noise moves it within a few
rounds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def far_ends(mean_weights: jax.Array) -> jax.Array:
    """Where each teacher's branch puts its weight: 1 for a teacher weighted under 0.5, else 0."""
    return jnp.where(mean_weights < 0.5, 1.0, 0.0)


def set_teacher(weights: jax.Array, teacher: jax.Array, value: jax.Array) -> jax.Array:
    """`weights` (..., K) with column `teacher` set to `value` on every decision (and example);
    `teacher` may be traced."""
    one_hot = jax.nn.one_hot(teacher, weights.shape[-1], dtype=weights.dtype)
    return weights * (1.0 - one_hot) + one_hot * value


def signed_gains(branch_returns: jax.Array, reference_return: jax.Array, ends: jax.Array) -> jax.Array:
    """gain_k = (R(branch k) - R(reference)) * (+1 if branch k selects k, -1 if it skips k): (K,)."""
    return (branch_returns - reference_return) * (2.0 * ends - 1.0)


def update_noise(noise: jax.Array, previous: jax.Array, gains: jax.Array, rounds: jax.Array, decay: float):
    """The variance of one gain's noise, from this round's gains and the last round's.

    The first round has nothing to difference: its mean square gain (signal included, so an
    overestimate) starts the estimate. Later rounds add `mean_k (g_k - g'_k)^2 / 2`, whose
    expectation is the noise variance when the true effects change slowly between rounds,
    averaged over the rounds so far and exponentially (`decay`) once there are more than
    1 / (1 - decay) of them. Returns the new estimate."""
    first = jnp.mean(jnp.square(gains))
    difference = 0.5 * jnp.mean(jnp.square(gains - previous))
    weight = jnp.minimum(decay, rounds / (rounds + 1.0))
    return jnp.where(rounds == 0, first, weight * noise + (1.0 - weight) * difference)


def evidence(gains: jax.Array, noise: jax.Array, threshold: float, cap: float, floor: float = 1e-12) -> jax.Array:
    """Gains in noise units, soft-thresholded: sign(z) * min(max(|z| - threshold, 0), cap)."""
    z = gains / jnp.sqrt(jnp.maximum(noise, floor))
    return jnp.sign(z) * jnp.clip(jnp.abs(z) - threshold, 0.0, cap)


def natural_gradient_loss(logits: jax.Array, step: jax.Array) -> jax.Array:
    """A surrogate whose gradient in the logits (T, [B,] K) is minus `step` (K,) for every
    decision (and example), averaged over them: a gradient-descent step of rate lr on it moves
    each logit by lr * step (through the policy's parameters)."""
    return -jnp.mean(jnp.sum(jax.lax.stop_gradient(step) * logits, axis=-1))


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
