"""The min-norm point of a convex hull with capped weights, solved inside a jitted step.

`argmin_w || sum_k w_k g_k ||^2` subject to `sum_k w_k = 1`, `0 <= w_k <= cap`: MGDA's min-norm
problem with AE-KD's cap. Only the Gram matrix `G = g g^T` (K, K) is needed. The solver is
accelerated projected gradient (FISTA) with step 1 / (2 lambda_max(G)) and an exact projection
onto the capped simplex, so it is a fixed number of tiny K x K operations: no host call, no
data-dependent loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def project_capped_simplex(v: jax.Array, cap: float) -> jax.Array:
    """Euclidean projection of v (K,) onto `{w : sum w = 1, 0 <= w <= cap}` (needs K * cap >= 1).

    The projection is `clip(v - tau, 0, cap)` for the tau at which it sums to 1. That sum is
    piecewise linear and non-increasing in tau with breakpoints at `v_k` and `v_k - cap`, so
    tau is found exactly by evaluating the sum at every breakpoint and interpolating linearly
    inside the segment that brackets 1.
    """
    breakpoints = jnp.sort(jnp.concatenate([v, v - cap]))  # (2K,)
    sums = jnp.clip(v[None, :] - breakpoints[:, None], 0.0, cap).sum(axis=1)  # non-increasing
    # The last breakpoint whose sum is still >= 1, and the next one (sum < 1).
    above = jnp.sum(sums >= 1.0) - 1
    low = jnp.clip(above, 0, breakpoints.shape[0] - 2)
    tau_lo, tau_hi = breakpoints[low], breakpoints[low + 1]
    s_lo, s_hi = sums[low], sums[low + 1]
    fraction = jnp.where(s_lo > s_hi, (s_lo - 1.0) / jnp.where(s_lo > s_hi, s_lo - s_hi, 1.0), 0.0)
    tau = tau_lo + jnp.clip(fraction, 0.0, 1.0) * (tau_hi - tau_lo)
    return jnp.clip(v - tau, 0.0, cap)


def min_norm_weights(gram: jax.Array, cap: float, iterations: int = 100) -> jax.Array:
    """Capped-simplex weights minimising `w^T G w` for a (K, K) Gram matrix (see module doc).

    Starts from the uniform weights. A cap below 1/K would leave no feasible point, so the cap
    used is `max(cap, 1/K)`.
    """
    num = gram.shape[0]
    cap = max(float(cap), 1.0 / num)
    gram = gram.astype(jnp.float32)
    # lambda_max of a PSD matrix; the floor keeps the step finite when every gradient is zero.
    lipschitz = 2.0 * jnp.maximum(jnp.linalg.eigvalsh(gram)[-1], 1e-12)
    start = jnp.full((num,), 1.0 / num, jnp.float32)

    def body(_, carry):
        w, y, t = carry
        w_next = project_capped_simplex(y - (2.0 * gram @ y) / lipschitz, cap)
        t_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
        y_next = w_next + ((t - 1.0) / t_next) * (w_next - w)
        return w_next, y_next, t_next

    w, _, _ = jax.lax.fori_loop(0, iterations, body, (start, start, jnp.float32(1.0)))
    return w
