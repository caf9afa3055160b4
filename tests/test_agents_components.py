"""Policies, baselines, returns and the agent configuration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.agents import AgentConfig, BASELINES, POLICIES, discounted_returns, make_baseline, make_policy, policy_rows
from mtkd.errors import ConfigError, UnknownNameError


def test_registries_hold_the_documented_names():
    assert POLICIES.names() == ["logistic", "mlp", "teacher_bias", "teacher_logistic"]
    assert BASELINES.names() == ["leave_one_out", "moving_average", "none"]
    with pytest.raises(UnknownNameError, match="policy 'transformer'"):
        make_policy("transformer")
    with pytest.raises(UnknownNameError, match="baseline"):
        AgentConfig(baseline="critic")
    with pytest.raises(ConfigError, match="bad options"):
        make_policy("logistic", {"hidden": [4]})


def test_logistic_policy_is_sigmoid_of_ws_plus_b():
    policy = make_policy("logistic")
    params = policy.init(jax.random.key(0), 4, 3)
    assert float(jax.nn.sigmoid(policy.apply(params, jnp.ones(4))).mean()) == pytest.approx(0.5)
    params = {"w": jnp.arange(12.0).reshape(4, 3) / 10, "b": jnp.array([0.1, -0.2, 0.3])}
    rows = jnp.array([[1.0, 0.0, 2.0, -1.0], [0.5, 0.5, 0.5, 0.5]])
    np.testing.assert_allclose(policy.apply(params, rows), np.asarray(rows) @ np.asarray(params["w"]) + [0.1, -0.2, 0.3],
                               rtol=1e-6)


def test_mlp_policy_shapes_and_initial_probability():
    policy = make_policy("mlp", {"hidden": [5, 6], "initial_probability": 0.8})
    params = policy.init(jax.random.key(0), 27, 3)
    obs = jax.random.normal(jax.random.key(1), (7, 3, 9))  # per-example observations (B, K, 9)
    logits = policy.apply(params, policy_rows(obs, per_example=True))
    assert logits.shape == (7, 3)
    np.testing.assert_allclose(jax.nn.sigmoid(logits), 0.8, rtol=1e-5)
    with pytest.raises(ConfigError):
        make_policy("mlp", {"hidden": []})


def test_discounted_returns_by_hand():
    rewards = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(discounted_returns(rewards, 0.5), [[1 + 1 + 0.75, 2 + 1.5, 3], [0.25, 0.5, 1]])
    np.testing.assert_allclose(discounted_returns(rewards, 0.0), rewards)


def test_leave_one_out_baseline_by_hand():
    baseline = make_baseline("leave_one_out")
    returns = jnp.array([[1.0, 4.0], [2.0, 0.0], [6.0, 2.0]])
    values, _ = baseline.apply(baseline.init(2), returns)
    np.testing.assert_allclose(values, [[4.0, 1.0], [3.5, 3.0], [1.5, 2.0]])


def test_moving_average_baseline_by_hand():
    baseline = make_baseline("moving_average", {"decay": 0.5})
    state = baseline.init(2)
    first, state = baseline.apply(state, jnp.array([[2.0, 4.0], [4.0, 0.0]]))
    np.testing.assert_allclose(first, [[3.0, 2.0], [3.0, 2.0]])  # no past yet: this episode's mean
    second, state = baseline.apply(state, jnp.array([[10.0, 10.0], [10.0, 10.0]]))
    np.testing.assert_allclose(second, [[3.0, 2.0], [3.0, 2.0]])  # past only: bias-corrected average
    third, _ = baseline.apply(state, jnp.zeros((2, 2)))
    # average = 0.5 * (0.5 * m1) + 0.5 * m2 with m1 = (3, 2), m2 = (10, 10); corrected by 1 - 0.25
    np.testing.assert_allclose(third[0], (0.25 * np.array([3.0, 2.0]) + 0.5 * 10) / 0.75, rtol=1e-6)


def test_agent_config_validation():
    with pytest.raises(ConfigError, match="at least 2"):
        AgentConfig(num_envs=1)
    AgentConfig(num_envs=1, baseline="moving_average")
    for bad in (dict(episodes=0), dict(policy_learning_rate=0.0), dict(discount=1.5), dict(entropy_coef=-1.0)):
        with pytest.raises(ConfigError):
            AgentConfig(**bad)
    with pytest.raises(UnknownNameError, match="optimizer"):
        AgentConfig(policy_optimizer="lion")
