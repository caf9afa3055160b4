"""Many environments and whole episodes: `vmap` over students, `lax.scan` over decisions.

All N environments of a batch share `params` and the decision counter, so `t` is kept
unbatched under `vmap`: the validation evaluation and the epoch change then stay real
`lax.cond`s instead of being computed for every decision (a batched predicate would turn them
into selects).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

from mtkd.envs.core import EnvState, decide, reset, step
from mtkd.envs.params import EnvParams

# vmap axes of a batched EnvState: everything per environment except the shared clock.
STATE_AXES = EnvState(student=0, batches=0, key=0, t=None, val_loss=0, val_accuracy=0)

reset_batch = jax.vmap(reset, in_axes=(0, None), out_axes=(0, STATE_AXES))
reset_batch.__doc__ = "`reset` of N environments: keys (N,) -> (obs (N, ...), batched state)."
step_batch = jax.vmap(step, in_axes=(0, STATE_AXES, 0, None), out_axes=(0, STATE_AXES, 0, 0, 0))
step_batch.__doc__ = "`step` of N environments: keys (N,), states, actions (N, ...) -> batched outputs."


class Trajectory(NamedTuple):
    """One episode, time-major: obs (T, [N,] ...) seen before each action, action (T, [N,] ...),
    reward (T, [N]), done (T, [N]), info dict of (T, [N,] ...) arrays."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    info: Any


Selector = Callable[[jax.Array, jax.Array], jax.Array]  # (key, obs) -> action


def _scan_episode(key, obs, state, params: EnvParams, select: Selector, step_fn, num_envs: int | None,
                  num_decisions: int | None = None):
    def body(carry, step_key):
        obs, state = carry
        select_key, env_key = jax.random.split(step_key)
        action = select(select_key, obs)
        env_keys = env_key if num_envs is None else jax.random.split(env_key, num_envs)
        next_obs, state, reward, done, info = step_fn(env_keys, state, action, params)
        return (next_obs, state), Trajectory(obs, action, reward, done, info)

    keys = jax.random.split(key, num_decisions or params.num_decisions)
    (_, state), trajectory = jax.lax.scan(body, (obs, state), keys)
    return state, trajectory


def rollout(reset_key, key, params: EnvParams, select: Selector):
    """One whole episode under `select(key, obs) -> action`, as one `lax.scan`:
    (final state, Trajectory)."""
    obs, state = reset(reset_key, params)
    return _scan_episode(key, obs, state, params, select, step, None)


def run_decisions(key, state, params: EnvParams, select: Selector, num_decisions: int, new_orders: bool = True):
    """`num_decisions` decisions of one environment from `state` (not necessarily a fresh one)
    under `select`, as one `lax.scan` of `decide` (each decision's observation and update share
    one forward pass): (state after them, Trajectory). The keys are those of `rollout`'s scan.
    Two calls from the same state and key see the same batches and the same per-decision keys
    (common random numbers), so they differ only where their selections differ. `new_orders`
    False keeps the state's order past an epoch's end (`decide`)."""
    def body(state, step_key):
        select_key, _ = jax.random.split(step_key)
        obs, action, state, reward, done, info = decide(select_key, state, params, select, new_orders)
        return state, Trajectory(obs, action, reward, done, info)

    return jax.lax.scan(body, state, jax.random.split(key, num_decisions))


def rollout_batch(reset_keys, key, params: EnvParams, select: Selector):
    """N episodes side by side (one per reset key (N,)); `select` gets the batched observation
    (N, ...) and returns actions (N, ...). Returns (final batched state, Trajectory (T, N, ...))."""
    obs, state = reset_batch(reset_keys, params)
    return _scan_episode(key, obs, state, params, select, step_batch, reset_keys.shape[0])
