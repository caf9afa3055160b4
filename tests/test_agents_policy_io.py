"""Saved policies, the `rl` fusion strategy built from them, and the cost benchmark."""

import hashlib
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd import agents
from mtkd import envs
import mtkd.selector_strategy  # noqa: F401  (registers `rl`)
from mtkd.agents import PolicyMeta, load_policy, make_policy, save_policy
from mtkd.agents.benchmark import epoch_cost_from_arrays
from mtkd.envs.probe import probe_arrays
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.errors import CheckpointError, ConfigError, OutputExistsError
from mtkd.fusion import STRATEGIES, StrategyContext, StrategyInput, make_strategy
from mtkd.models import ModelSpec

# a hand-set policy that keeps teachers 0 and 1 and skips teacher 2, whatever it observes
SKIP_LAST = {"w": jnp.zeros((19, 3)), "b": jnp.array([6.0, 6.0, -6.0])}


def meta_for(num_teachers=3, per_example=False):
    return PolicyMeta("logistic", {}, num_teachers, envs.observation_size(num_teachers, per_example), per_example,
                      2.0, [f"t{k}" for k in range(num_teachers)])


def tree_digest(directory):
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + path.read_bytes())
    return digest.hexdigest()


def context(num_teachers=3, **options):
    return StrategyContext(tuple(f"t{k}" for k in range(num_teachers)), (0.9,) * num_teachers, options)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = tmp_path_factory.mktemp("policy") / "policy"
    save_policy(directory, SKIP_LAST, meta_for(), extra={"note": "test"})
    return directory


def test_save_and_load_round_trip(saved):
    policy, params, meta = load_policy(saved)
    assert meta == meta_for()
    np.testing.assert_array_equal(params["b"], SKIP_LAST["b"])
    assert json.loads((saved / "policy.json").read_text())["note"] == "test"
    with pytest.raises(OutputExistsError):
        save_policy(saved, SKIP_LAST, meta_for())


def test_rl_strategy_is_registered_and_needs_a_policy():
    assert "rl" in STRATEGIES
    with pytest.raises(ConfigError, match="strategy 'rl' needs --policy DIR"):
        make_strategy("rl", context())
    with pytest.raises(ConfigError, match="strategy 'rl' needs --policy DIR"):
        make_strategy("rl", context(policy=None))


def test_rl_strategy_weights_follow_the_policy_on_the_env_features(saved):
    strategy = make_strategy("rl", context(policy=str(saved)))
    assert strategy.name == "rl" and strategy.needs_student and strategy.uses_teachers
    arrays = probe_arrays(seed=0, num_train=32)
    batch = StrategyInput(jax.random.key(0), jnp.asarray(arrays.teacher_logits_train), jnp.asarray(arrays.y_train),
                          jnp.zeros((32, 4)), jnp.float32(0.5))
    weights = np.asarray(strategy.weights(batch))
    assert weights.shape == (32, 3) and set(np.unique(weights)) <= {0.0, 1.0}
    assert np.all(weights == weights[0])  # one decision per batch
    # greedy mode decides by sign of the policy's logits on the shared observation function
    policy = make_policy("logistic")
    params = {"w": jnp.zeros((19, 3)).at[4, 0].set(-10.0).at[10, 2].set(10.0), "b": jnp.array([1.0, -1.0, -1.0])}
    greedy = agents.make_rl_strategy(policy, params, meta_for(), greedy=True)
    obs = envs.observation_features(batch.teacher_logits, batch.labels, batch.student_logits, 0.5, 2.0)
    expected = (np.asarray(obs) @ np.asarray(params["w"]) + np.asarray(params["b"]) > 0).astype(float)
    np.testing.assert_array_equal(np.asarray(greedy.weights(batch))[0], expected)
    # teacher 0 is accurate (so skipped), teacher 1 has a negative bias, the rolled one a high CE
    assert expected.tolist() == [0.0, 0.0, 1.0]


def test_rl_strategy_in_fit_skips_the_teacher_the_policy_skips(saved):
    arrays = probe_arrays(seed=0, num_train=64, num_val=16, num_features=6)
    strategy = make_strategy("rl:greedy", context(policy=str(saved)))
    result = fit(ModelSpec("mlp", {"widths": [8]}), (6,), 4,
                 SplitArrays(jnp.asarray(arrays.x_train), jnp.asarray(arrays.y_train),
                             jnp.asarray(arrays.teacher_logits_train)),
                 SplitArrays(jnp.asarray(arrays.x_val), jnp.asarray(arrays.y_val)), strategy,
                 TrainConfig(epochs=2, batch_size=16, temperature=2.0), seeds=[0, 1])
    for record in result.history:
        np.testing.assert_array_equal(record["selection"], [[1.0, 1.0, 0.0]] * 2)


def test_policy_for_another_pool_is_refused_and_left_intact(saved):
    before = tree_digest(saved)
    with pytest.raises(CheckpointError, match="trained for 3 teachers"):
        make_strategy("rl", context(4, policy=str(saved)))
    assert tree_digest(saved) == before


def test_bad_policy_directories(saved, tmp_path):
    with pytest.raises(CheckpointError, match="policy.json"):
        make_strategy("rl", context(policy=str(tmp_path)))
    with pytest.raises(ConfigError, match="takes one of expected, greedy, sample"):
        make_strategy("rl:fast", context(policy=str(saved)))

    wrong_size = tmp_path / "wrong_size"
    shutil.copytree(saved, wrong_size)
    data = json.loads((wrong_size / "policy.json").read_text())
    (wrong_size / "policy.json").write_text(json.dumps({**data, "observation_size": 23}))
    with pytest.raises(CheckpointError, match="observation size 23"):
        load_policy(wrong_size)

    unknown = tmp_path / "unknown"
    shutil.copytree(saved, unknown)
    (unknown / "policy.json").write_text(json.dumps({**data, "policy": "transformer"}))
    with pytest.raises(CheckpointError, match="transformer"):
        load_policy(unknown)

    corrupt = tmp_path / "corrupt"
    shutil.copytree(saved, corrupt)
    (corrupt / "policy.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid policy"):
        load_policy(corrupt)

    mismatched = tmp_path / "mismatched"  # params of a 3-teacher policy described as 4 teachers
    shutil.copytree(saved, mismatched)
    (mismatched / "policy.json").write_text(json.dumps({**data, "num_teachers": 4, "observation_size": 24}))
    with pytest.raises(CheckpointError, match="corrupt or does not match"):
        load_policy(mismatched)


def test_selector_epoch_cost_reports_both_times():
    arrays = probe_arrays(seed=0, num_train=64, num_features=6)
    report = epoch_cost_from_arrays(arrays.x_train, arrays.y_train, arrays.teacher_logits_train, 4,
                                    student=ModelSpec("mlp", {"widths": [8]}),
                                    config=TrainConfig(batch_size=16), repeats=2)
    assert report["epoch_seconds_rl"] > 0 and report["epoch_seconds_uniform"] > 0
    summary = report["ratio_rl_uniform_summary"]  # the median of per-round ratios, not a ratio of medians
    assert report["ratio_rl_uniform"] == summary["median"] and summary["pairs"] >= 2
    assert summary["min"] <= summary["median"] <= summary["max"]
    assert report["goal_ratio_rl_uniform"] == 1.10


def test_per_example_policy_selects_per_example():
    arrays = probe_arrays(seed=0, num_train=64, label_noise=0.3)
    meta = meta_for(per_example=True)
    params = {"w": jnp.zeros((27, 3)).at[4, 0].set(20.0), "b": jnp.array([-10.0, 10.0, -10.0])}
    strategy = agents.make_rl_strategy(make_policy("logistic"), params, meta, greedy=True)
    batch = StrategyInput(jax.random.key(0), jnp.asarray(arrays.teacher_logits_train), jnp.asarray(arrays.y_train),
                          jnp.zeros((64, 4)), jnp.float32(0.0))
    weights = np.asarray(strategy.weights(batch))
    # teacher 0 where it agrees with the (noisy) label, teacher 1 everywhere, teacher 2 nowhere
    agrees = arrays.teacher_logits_train[0].argmax(-1) == arrays.y_train
    np.testing.assert_array_equal(weights[:, 0], agrees.astype(float))
    assert 0 < agrees.mean() < 1
    np.testing.assert_array_equal(weights[:, 1:], [[1.0, 0.0]] * 64)
