"""The Gymnasium shells: env_checker, conversions, registration, bad input."""

import importlib

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mtkd import envs
from mtkd.envs.probe import probe_arrays
from mtkd.errors import ConfigError, UnknownNameError

from mtkd.envs.gym_env import _reset as jit_reset  # the shell's own jitted core: compiled once per config

SMALL = dict(student={"arch": "mlp", "options": {"widths": [8]}}, batch_size=16, epochs=1, temperature=2.0)


@pytest.fixture(scope="module")
def arrays():
    return probe_arrays(seed=1, num_train=64, num_val=24, num_features=6)


@pytest.fixture(scope="module")
def params(arrays):
    return envs.make_env_params(*arrays, **SMALL)


def test_check_env_passes_batch_level(arrays):
    env = envs.TeacherSelectionEnv.from_arrays(*arrays, teacher_names=["a", "b", "bad"], **SMALL)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (envs.observation_size(3),)
    assert env.action_space == gymnasium.spaces.MultiBinary(3)
    assert env.teacher_names == ["a", "b", "bad"]


def test_check_env_passes_per_example(arrays):
    env = envs.TeacherSelectionEnv.from_arrays(*arrays, per_example=True, **SMALL)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (16, 3, 9)
    assert env.action_space.shape == (16, 3)


def test_make_with_in_memory_params(params):
    env = gymnasium.make(envs.ENV_ID, params=params)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    expected, _ = jit_reset(jax.random.key(3), params)
    np.testing.assert_allclose(obs, np.asarray(expected), rtol=1e-6)
    obs, reward, terminated, truncated, info = env.step([1, 0, 1])
    assert isinstance(obs, np.ndarray) and obs.dtype == np.float32
    assert type(reward) is float and type(terminated) is bool and truncated is False
    assert type(info["val_accuracy"]) is float and info["selection"] == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("action", [[1, 1, 0], np.array([1, 1, 0]), jnp.array([1, 1, 0]),
                                    np.array([True, True, False]), np.array([1.0, 1.0, 0.0])])
def test_accepts_list_numpy_jax_bool_and_float_actions(params, action):
    env = envs.TeacherSelectionEnv(params=params)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(action)
    reference = envs.TeacherSelectionEnv(params=params)
    reference.reset(seed=0)
    assert reward == reference.step(np.array([1, 1, 0], np.int8))[1]
    assert info["selection"] == [1.0, 1.0, 0.0]


def state_arrays(state):
    return [np.array(leaf) for leaf in jax.tree.leaves(state.replace(key=jax.random.key_data(state.key)))]


@pytest.mark.parametrize("action, message", [
    ([1, 0], "shape"), (np.ones((1, 3)), "shape"), ([1, 2, 0], "0 or 1"), ([1, -1, 0], "0 or 1"),
    ([0.5, 1, 0], "0 or 1"), ([np.nan, 1, 0], "0 or 1"), (["a", "b", "c"], "0 or 1"), ([[1], [0, 1]], "array"),
])
def test_bad_action_is_rejected_and_leaves_the_state_unchanged(params, action, message):
    env = envs.TeacherSelectionEnv(params=params)
    env.reset(seed=0)
    env.step([1, 1, 1])
    before = env.state
    snapshot = state_arrays(before)
    with pytest.raises(ConfigError, match=message):
        env.step(action)
    assert env.state is before
    assert all(np.array_equal(a, b) for a, b in zip(state_arrays(env.state), snapshot))
    # the episode goes on exactly as if the bad action had never been sent
    _, reward, _, _, _ = env.step([1, 0, 0])
    replay = envs.TeacherSelectionEnv(params=params)
    replay.reset(seed=0)
    replay.step([1, 1, 1])
    assert reward == replay.step([1, 0, 0])[1]


def test_step_after_the_end_or_before_reset_is_an_error(params):
    env = envs.TeacherSelectionEnv(params=params)
    with pytest.raises(ConfigError, match="reset"):
        env.step([1, 1, 1])
    env.reset(seed=0)
    terminated = False
    for _ in range(params.num_decisions):
        assert not terminated
        _, _, terminated, _, _ = env.step([1, 1, 0])
    assert terminated
    with pytest.raises(ConfigError, match="episode is over"):
        env.step([1, 1, 0])


def test_bad_configuration_and_data(arrays):
    with pytest.raises(UnknownNameError, match="reward"):
        envs.TeacherSelectionEnv.from_arrays(*arrays, reward="accuracy_please", **SMALL)
    with pytest.raises(ConfigError, match="unknown environment option"):
        envs.TeacherSelectionEnv.from_arrays(*arrays, epoch=3, **SMALL)
    with pytest.raises(ConfigError, match="eval_every"):
        envs.EnvConfig(eval_every=0)
    with pytest.raises(UnknownNameError, match="optimizer"):
        envs.EnvConfig(optimizer="adamax")
    logits, logits_val, x, y, xv, yv = arrays
    with pytest.raises(ConfigError, match="does not match the data set"):  # a 3-class pool on 4-class data
        envs.make_env_params(logits[..., :3], logits_val[..., :3], x, y, xv, yv, **SMALL)
    with pytest.raises(ConfigError, match="teacher names"):
        envs.TeacherSelectionEnv.from_arrays(*arrays, teacher_names=["only_one"], **SMALL)
    with pytest.raises(ConfigError, match="initial_student"):
        envs.make_env_params(*arrays, initial_student={"w": np.zeros(3)}, **SMALL)
    with pytest.raises(ConfigError, match="render"):
        envs.TeacherSelectionEnv.from_arrays(*arrays, render_mode="human", **SMALL)


def test_registration_is_idempotent_and_has_a_vector_entry_point():
    importlib.reload(envs)  # a second registration attempt must not raise
    spec = gymnasium.spec(envs.ENV_ID)
    assert spec.entry_point == "mtkd.envs.gym_env:TeacherSelectionEnv"
    assert spec.vector_entry_point == "mtkd.envs.vector_env:TeacherSelectionVectorEnv"


def test_make_vec_runs_students_through_the_vmapped_core(params):
    vec = gymnasium.make_vec(envs.ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", params=params)
    assert isinstance(vec.unwrapped, envs.TeacherSelectionVectorEnv)
    obs, _ = vec.reset(seed=4)
    assert obs.shape == (3, envs.observation_size(3)) and obs.dtype == np.float32
    for i in range(3):
        single, _ = jit_reset(jax.random.fold_in(jax.random.key(4), i), params)
        np.testing.assert_allclose(obs[i], np.asarray(single), rtol=1e-5, atol=1e-6)
    actions = np.array([[1, 1, 0], [0, 0, 0], [1, 1, 1]])
    for t in range(params.num_decisions):
        obs, rewards, terminated, truncated, info = vec.step(actions)
        assert rewards.shape == (3,) and terminated.dtype == np.bool_
        assert terminated.all() == (t == params.num_decisions - 1)
    obs, rewards, terminated, _, _ = vec.step(actions)  # autoreset (next step): a fresh episode
    assert not terminated.any() and np.all(rewards == 0)
    assert np.all(obs[:, -1] == 0)  # progress back at 0
    with pytest.raises(ConfigError, match="shape"):
        vec.step(np.ones((2, 3)))


@pytest.mark.skipif(not (envs.sources.default_pool_file().is_file()),
                    reason="the default mnist1d pool is not trained on this machine (it takes about a minute)")
def test_make_without_arguments_uses_mnist1d_and_the_default_pool():
    env = gymnasium.make(envs.ENV_ID)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape
    assert env.unwrapped.params.num_classes == 10 and env.unwrapped.params.x_train.shape == (3600, 40)
    assert env.action_space.n == len(env.unwrapped.teacher_names)
    _, reward, terminated, _, _ = env.step(np.ones(env.action_space.n, np.int8))
    assert isinstance(reward, float) and not terminated


def test_reset_info_and_feature_names_say_what_the_values_are(arrays):
    from mtkd.envs.observation import feature_names, observation_features

    env = envs.TeacherSelectionEnv.from_arrays(*arrays, teacher_names=["a", "b", "bad"], **SMALL)
    obs, info = env.reset(seed=0)
    assert info["pool"] == "in-memory arrays" and info["teacher_names"] == ["a", "b", "bad"]
    assert info["feature_names"] == env.feature_names and len(env.feature_names) == obs.shape[0]
    steps, done = 0, False
    while not done:
        _, _, done, _, _ = env.step([1, 1, 1])
        steps += 1
    assert steps == info["episode_length"]
    # The names follow the values: a teacher always right, one always wrong, a known progress.
    labels = jnp.array([0, 1, 2, 1])
    right = 10.0 * jax.nn.one_hot(labels, 3)
    teacher_logits = jnp.stack([right, jnp.roll(right, 1, axis=-1)])
    values = np.asarray(observation_features(teacher_logits, labels, jnp.zeros((4, 3)), 0.25, temperature=1.0))
    names = feature_names(["right", "wrong"])
    assert values[names.index("right/teacher_accuracy")] == 1.0 and values[names.index("wrong/teacher_accuracy")] == 0.0
    assert values[names.index("progress")] == 0.25
    assert values[names.index("student_ce")] == pytest.approx(np.log(3), rel=1e-5)  # a uniform student
    assert feature_names(["x"], per_example=True)[-1] == "progress"
