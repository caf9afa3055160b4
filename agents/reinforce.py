"""REINFORCE for the teacher selector, PureJaxRL style: `make_train(config, env_params)` returns a
pure `train(key)`, one `lax.scan` over episodes; each episode rolls N students through the
vmapped environment core (itself a `lax.scan` over decisions), then takes one policy-gradient
step. So `jax.jit(train)(key)` is the whole run and `jax.jit(jax.vmap(train))(keys)` runs seeds
side by side.

Loss per episode: `-mean_{i,t}(A_{i,t} log pi(a_{i,t} | s_{i,t})) - entropy_coef * mean H(pi(.|s))`
with `A = G - baseline`, `G_t = sum_{t' >= t} gamma^(t' - t) r_t'` (return-to-go).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mtkd.agents.baselines import make_baseline
from mtkd.agents.bernoulli import bernoulli_entropy, bernoulli_log_prob, sample_actions
from mtkd.agents.config import AgentConfig
from mtkd.agents.policies import make_policy, policy_rows
from mtkd.envs.core import validation_metrics
from mtkd.envs.observation import observation_size
from mtkd.envs.params import EnvParams
from mtkd.envs.rollout import rollout_batch
from mtkd.devices import divisor_placement
from mtkd.optimizers import make_optimizer


class TrainOutput(NamedTuple):
    """policy_params: the trained policy; metrics: per episode (leading axis E): `return` (E, N)
    undiscounted episode return of each student, `selection` (E, K) fraction of decisions (and
    examples) selecting each teacher, `val_accuracy` (E, N) each student's validation accuracy at
    the episode's end, `loss` (E,) and `entropy` (E,) (mean per-teacher Bernoulli entropy)."""

    policy_params: Any
    metrics: dict


def discounted_returns(rewards: jax.Array, discount: float) -> jax.Array:
    """Return-to-go along the last axis: (..., T) -> (..., T)."""
    def body(future, reward):
        value = reward + discount * future
        return value, value

    _, returns = jax.lax.scan(body, jnp.zeros(rewards.shape[:-1]), jnp.moveaxis(rewards, -1, 0), reverse=True)
    return jnp.moveaxis(returns, 0, -1)


class Trainer(NamedTuple):
    """The run in pieces, so it can be cut into chunks of episodes (and checkpointed between):
    `start(key) -> (carry, episode keys (E,))`, carry = (policy params, optimizer state, baseline
    state); `episodes(carry, keys, indices) -> (carry, metrics)` runs the episodes `indices` (0-based,
    each with its key) in a `lax.scan`."""

    start: Callable[[jax.Array], tuple[Any, jax.Array]]
    episodes: Callable[[Any, jax.Array, jax.Array], tuple[Any, dict]]


def make_train(config: AgentConfig, env_params: EnvParams | None = None,
               on_episode: Callable[[int, dict], None] | None = None) -> Callable[[jax.Array], TrainOutput]:
    """`train(key) -> TrainOutput`, pure and jit-able, on the environment `env_params` (default:
    mnist1d with its default pool and `EnvConfig()`, the pool trained on first use).
    `on_episode(episode, metrics)`, if given, is called from inside the run
    (`jax.debug.callback`) after each episode, for progress."""
    trainer = make_trainer(config, env_params, on_episode)

    def train(key) -> TrainOutput:
        carry, keys = trainer.start(key)
        (policy_params, _, _), metrics = trainer.episodes(carry, keys, jnp.arange(config.episodes))
        return TrainOutput(policy_params, metrics)

    return train


def make_trainer(config: AgentConfig, env_params: EnvParams | None = None,
                 on_episode: Callable[[int, dict], None] | None = None, devices: int | None = None) -> Trainer:
    """`make_train`'s run as a `Trainer` (same numbers when its episodes run in one call). Each
    episode's `num_envs` environments are split over up to `devices` local devices (default: all;
    the most that divide `num_envs`, `mtkd.devices.divisor_placement`): the compiler partitions
    the episode from that constraint on its reset keys, and sums the policy gradient across them."""
    if env_params is None:
        from mtkd.envs.sources import params_from_pool

        env_params, _ = params_from_pool()
    policy = make_policy(config.policy_arch, config.policy_options)
    baseline = make_baseline(config.baseline, config.baseline_options)
    optimizer = make_optimizer(config.policy_optimizer, config.policy_learning_rate)
    per_example = env_params.config.per_example
    num_teachers = env_params.num_teachers
    num_envs = config.num_envs
    env_sharding = divisor_placement(num_envs, devices).sharding

    def logits_of(policy_params, obs):
        return policy.apply(policy_params, policy_rows(obs, per_example))

    def episode(carry, inputs):
        policy_params, opt_state, baseline_state = carry
        key, index = inputs
        reset_key, rollout_key = jax.random.split(key)
        reset_keys = jax.random.split(reset_key, num_envs)
        if config.same_start:
            reset_keys = reset_keys[jnp.zeros(num_envs, jnp.int32)]
        if env_sharding is not None:
            reset_keys = jax.lax.with_sharding_constraint(reset_keys, env_sharding)
        final_state, trajectory = rollout_batch(
            reset_keys, rollout_key, env_params, lambda k, obs: sample_actions(k, logits_of(policy_params, obs)))

        rewards = trajectory.reward.T  # (N, T)
        returns = discounted_returns(rewards, config.discount)
        baselines, baseline_state = baseline.apply(baseline_state, returns)
        advantages = (returns - baselines).T  # (T, N), time-major like the trajectory
        if config.normalize_advantages:
            advantages = advantages / (advantages.std() + 1e-8)

        def loss_fn(params):
            logits = logits_of(params, trajectory.obs)  # (T, N, [B,] K)
            log_prob = bernoulli_log_prob(logits, trajectory.action)
            entropy = bernoulli_entropy(logits)
            if per_example:  # one decision = all its examples' selections
                log_prob, entropy = log_prob.sum(axis=-1), entropy.mean(axis=-1)
            policy_loss = -jnp.mean(jax.lax.stop_gradient(advantages) * log_prob)
            mean_entropy = entropy.mean() / num_teachers
            return policy_loss - config.entropy_coef * mean_entropy, mean_entropy

        (loss, entropy), grads = jax.value_and_grad(loss_fn, has_aux=True)(policy_params)
        updates, opt_state = optimizer.update(grads, opt_state, policy_params)
        policy_params = jax.tree.map(lambda p, u: p + u, policy_params, updates)

        selection_axes = tuple(range(trajectory.action.ndim - 1))
        metrics = {
            "return": rewards.sum(axis=1),
            "selection": trajectory.action.mean(axis=selection_axes),
            "val_accuracy": jax.vmap(lambda p: validation_metrics(p, env_params)[1])(final_state.student.params),
            "loss": loss,
            "entropy": entropy,
        }
        if on_episode is not None:
            jax.debug.callback(on_episode, index, metrics)
        return (policy_params, opt_state, baseline_state), metrics

    def start(key):
        init_key, episodes_key = jax.random.split(key)
        policy_params = policy.init(init_key, observation_size(num_teachers, per_example), num_teachers)
        carry = (policy_params, optimizer.init(policy_params), baseline.init(env_params.num_decisions))
        return carry, jax.random.split(episodes_key, config.episodes)

    def episodes(carry, keys, indices):
        return jax.lax.scan(episode, carry, (keys, indices))

    return Trainer(start, episodes)
