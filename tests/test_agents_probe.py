"""Probe: two good teachers and one misleading teacher (its outputs rolled across classes).

A working selector must learn to keep the good teachers and skip the misleading one.
"""

import functools

import jax
import numpy as np
import pytest

from mtkd import envs
from mtkd.agents import AgentConfig, evaluate_policy, make_policy, make_train
from mtkd.envs.probe import probe_arrays

ENV = dict(student={"arch": "mlp", "options": {"widths": [16]}}, batch_size=64, epochs=2, temperature=2.0,
           learning_rate=3e-3)
AGENT = AgentConfig(num_envs=8, episodes=30, policy_learning_rate=0.05)


@pytest.fixture(scope="module")
def env_params():
    return envs.make_env_params(*probe_arrays(seed=0), **ENV)


@pytest.fixture(scope="module")
def trained(env_params):
    train = jax.jit(make_train(AGENT, env_params))
    return train, train(jax.random.key(0))


def test_selector_skips_the_misleading_teacher(env_params, trained):
    _, output = trained
    policy = make_policy(AGENT.policy_arch, AGENT.policy_options)
    evaluate = jax.jit(functools.partial(evaluate_policy, policy), static_argnums=(3,))
    result = evaluate(output.policy_params, env_params, jax.random.key(123), 8)
    good_a, good_b, misleading = np.asarray(result["selection"])
    assert misleading <= 0.10
    assert good_a >= 0.80 and good_b >= 0.80
    # and learning shows in the training record: the first episode selected about half of each
    first = np.asarray(output.metrics["selection"][0])
    assert np.all(np.abs(first - 0.5) < 0.2)
    assert np.asarray(output.metrics["selection"][-1])[2] <= 0.10


def test_training_is_deterministic_under_a_fixed_seed(trained):
    train, output = trained
    again = train(jax.random.key(0))
    for a, b in zip(jax.tree.leaves(output), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)


def test_seeds_vmap(env_params, trained):
    """`jax.vmap(train)` over keys gives each seed's own run (the first equals the probe's)."""
    _, output = trained
    keys = jax.vmap(jax.random.key)(np.array([0, 9]))
    batched = jax.jit(jax.vmap(make_train(AGENT, env_params)))(keys)
    # The same sampled selections; parameters equal up to float rounding (vmap batches the matmuls
    # differently, and 30 updates carry the last bits along).
    np.testing.assert_array_equal(batched.metrics["selection"][0], output.metrics["selection"])
    np.testing.assert_allclose(batched.metrics["return"][0], output.metrics["return"], rtol=1e-3, atol=1e-5)
    for a, b in zip(jax.tree.leaves(output.policy_params), jax.tree.leaves(batched.policy_params)):
        np.testing.assert_allclose(b[0], a, rtol=1e-2, atol=1e-3)
    assert not np.allclose(batched.metrics["return"][0], batched.metrics["return"][1])
