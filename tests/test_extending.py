"""Every example of docs/extending.md runs as written, and what it registers works by name."""

from __future__ import annotations

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.errors import ConfigError

PAGE = Path(__file__).resolve().parent.parent / "docs" / "extending.md"


@pytest.fixture(scope="module")
def registered():
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 5
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), {"__name__": "extending_example"})


def test_the_model_example_builds_and_checks_its_options(registered):
    from flax import nnx

    from mtkd.models import ModelSpec, build_model

    model = build_model(ModelSpec("tiny_mlp", {"width": 8}), (40,), 10, nnx.Rngs(0))
    logits, features = model(jnp.ones((3, 40)))
    assert logits.shape == (3, 10) and features["embedding"].shape == (3, 8)
    with pytest.raises(ConfigError, match="width = '8': expected a whole number"):
        ModelSpec("tiny_mlp", {"width": "8"})


def test_the_fusion_example_weights_the_first_teacher(registered):
    from mtkd.fusion.strategies import StrategyContext, StrategyInput, make_strategy

    strategy = make_strategy("first_only", StrategyContext(("a", "b", "c"), (0.5, 0.6, 0.7)))
    batch = StrategyInput._make([None] * len(StrategyInput._fields))._replace(labels=jnp.zeros(4, jnp.int32))
    np.testing.assert_array_equal(np.asarray(strategy.weights(batch)), np.tile([1.0, 0.0, 0.0], (4, 1)))


def test_the_loss_term_example_is_the_scaled_logit_mse(registered):
    from mtkd.distill.loss_config import LossConfig
    from mtkd.distill.terms import TERMS

    config = LossConfig.from_dicts([{"loss": "logit_mse", "weight": 0.5, "scale": 2.0}])
    assert config.terms[0].options["scale"] == 2.0
    s, t = np.random.default_rng(0).normal(size=(2, 5, 10))
    value = TERMS.get("logit_mse").value(jnp.asarray(s), jnp.asarray(t), None, config.terms[0].options)
    np.testing.assert_allclose(np.asarray(value), 2.0 * ((s - t) ** 2).mean(axis=1), rtol=1e-6)


def test_the_policy_example_selects_each_teacher_half_the_time(registered):
    from mtkd.agents.policies import make_policy

    policy = make_policy("always_half")
    params = policy.init(jax.random.key(0), 7, 3)
    probabilities = jax.nn.sigmoid(policy.apply(params, jnp.ones((5, 7))))
    np.testing.assert_allclose(np.asarray(probabilities), 0.5)
    assert not policy.reads_state


def test_the_reward_example_is_ten_times_the_accuracy_gain(registered):
    from mtkd.envs.rewards import REWARDS, RewardInput

    values = dict(previous_val_loss=1.0, previous_val_accuracy=0.5, val_loss=0.9, val_accuracy=0.56,
                  evaluated=True, done=False, train_loss=1.0)
    reward = REWARDS.get("val_acc_gain_x10").compute(RewardInput(**{k: jnp.asarray(v) for k, v in values.items()}))
    assert float(reward) == pytest.approx(0.6, abs=1e-6)
