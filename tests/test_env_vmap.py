"""N environments under `vmap` equal N sequential runs; an episode is one `lax.scan`."""

import jax
import jax.numpy as jnp
import numpy as np

from mtkd import envs
from mtkd.envs.gym_env import _reset as jit_reset, _step as jit_step
from mtkd.envs.probe import probe_arrays
from mtkd.envs.vector_env import _reset as jit_reset_batch, _step as jit_step_batch

# the configuration of tests/test_env_gym.py, so the jitted core compiled there is reused
SMALL = dict(student={"arch": "mlp", "options": {"widths": [8]}}, batch_size=16, epochs=1, temperature=2.0)


def params():
    return envs.make_env_params(*probe_arrays(seed=1, num_train=64, num_val=24, num_features=6), **SMALL)


def test_vmapped_environments_equal_sequential_runs():
    env_params = params()
    keys = jax.random.split(jax.random.key(0), 3)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, (env_params.num_decisions, 3, 3)).astype(np.int8)  # (T, N, K), as the shells pass
    obs, states = jit_reset_batch(keys, env_params)
    batched = [[np.asarray(obs)], [], []]
    for t in range(env_params.num_decisions):
        obs, states, reward, done, info = jit_step_batch(jax.random.split(jax.random.key(t), 3), states,
                                                         jnp.asarray(actions[t]), env_params)
        batched[0].append(np.asarray(obs)), batched[1].append(np.asarray(reward)), batched[2].append(np.asarray(done))
    for i in range(3):
        obs, state = jit_reset(keys[i], env_params)
        np.testing.assert_allclose(batched[0][0][i], obs, rtol=1e-5, atol=1e-6)
        for t in range(env_params.num_decisions):
            obs, state, reward, done, _ = jit_step(jax.random.key(t), state, jnp.asarray(actions[t, i]), env_params)
            np.testing.assert_allclose(batched[0][t + 1][i], obs, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(batched[1][t][i], reward, rtol=1e-4, atol=1e-6)
            assert batched[2][t][i] == done
        for a, b in zip(jax.tree.leaves(state.student.params), jax.tree.leaves(states.student.params)):
            np.testing.assert_allclose(b[i], a, rtol=1e-5, atol=1e-6)
    rewards = np.stack(batched[1])
    assert not np.allclose(rewards[:, 0], rewards[:, 1])  # different students, different runs


def test_an_episode_is_one_scan_and_the_vmapped_clock_stays_shared():
    env_params = params()
    keys = jax.random.split(jax.random.key(0), 2)
    select = lambda key, obs: jnp.ones(obs.shape[:-1] + (3,))  # noqa: E731
    state, trajectory = jax.eval_shape(lambda k: envs.rollout_batch(k, jax.random.key(1), env_params, select), keys)
    assert trajectory.obs.shape == (env_params.num_decisions, 2, envs.observation_size(3))
    assert trajectory.reward.shape == trajectory.done.shape == (env_params.num_decisions, 2)
    assert state.t.shape == ()  # the decision counter is shared, not batched
    jaxpr = str(jax.make_jaxpr(lambda k: envs.rollout(k, jax.random.key(1), env_params, select))(keys[0]))
    assert jaxpr.count("scan[") >= 1
    # evaluation and epoch change stay real `cond`s under vmap (a batched predicate would make
    # them selects, evaluating the validation split at every decision)
    step_jaxpr = jax.make_jaxpr(lambda s: envs.step_batch(keys, s, jnp.ones((2, 3)), env_params))(
        jax.eval_shape(envs.reset_batch, keys, env_params)[1])
    assert str(step_jaxpr).count("cond[") == 2
