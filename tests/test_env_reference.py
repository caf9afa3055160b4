"""The functional core against a slow, step-by-step reference written with numpy.

The reference shares only the documented key schedule (so it draws the same permutations) and
the optimizer (optax Adam on a plain dict); its forward pass, fusion, loss, observations,
validation and rewards are written out here independently.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from mtkd import envs
from mtkd.envs.probe import probe_arrays
from mtkd.distill.fit import init_students, unstack
from mtkd.models import ModelSpec

WIDTH = 8
STUDENT = {"arch": "mlp", "options": {"widths": [WIDTH]}}


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_forward(p, x):
    h = np.maximum(x @ p["hidden"][0]["kernel"] + p["hidden"][0]["bias"], 0.0)
    return h @ p["head"]["kernel"] + p["head"]["bias"]


def jnp_forward(p, x):
    h = jax.nn.relu(x @ p["hidden"][0]["kernel"] + p["hidden"][0]["bias"])
    return h @ p["head"]["kernel"] + p["head"]["bias"]


def np_features(teacher_logits, labels, student_logits, progress, temperature):
    """Per example: teacher rows (K, B, 5) and shared rows (B, 4)."""
    b = np.arange(labels.size)
    rows = []
    for z in teacher_logits:
        logp = np_log_softmax(z)
        p = np.exp(logp)
        logp_t = np_log_softmax(z / temperature)
        kl = (np.exp(logp_t) * (logp_t - np_log_softmax(student_logits / temperature))).sum(-1)
        rows.append(np.stack([-logp[b, labels], p.max(-1), -(p * logp).sum(-1), kl,
                              (z.argmax(-1) == labels).astype(float)], -1))
    s_logp = np_log_softmax(student_logits)
    shared = np.stack([-s_logp[b, labels], -(np.exp(s_logp) * s_logp).sum(-1),
                       (student_logits.argmax(-1) == labels).astype(float), np.full(labels.size, progress)], -1)
    return np.stack(rows), shared


def np_observation(teacher_logits, labels, student_logits, progress, temperature, per_example):
    teacher, shared = np_features(teacher_logits, labels, student_logits, progress, temperature)
    if per_example:
        k = teacher.shape[0]
        return np.concatenate([teacher.transpose(1, 0, 2), np.repeat(shared[:, None], k, axis=1)], -1)
    return np.concatenate([teacher.mean(1).reshape(-1), shared.mean(0)])


def reference_loss(p, x, y, target, has_target, alpha, temperature):
    logits = jnp_forward(p, x)
    ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]
    log_student_t = jax.nn.log_softmax(logits / temperature)
    safe = jnp.where(target > 0, target, 1.0)
    kl = jnp.sum(jnp.where(target > 0, target * (jnp.log(safe) - log_student_t), 0.0), axis=1)
    return jnp.mean(jnp.where(has_target, alpha * ce + (1 - alpha) * temperature ** 2 * kl, ce))


@functools.partial(jax.jit, static_argnums=(6, 7, 8))
def reference_update(p, opt_state, x, y, target, has_target, alpha, temperature, learning_rate):
    """One Adam step on the reference loss (jitted only to keep the test fast)."""
    loss, grads = jax.value_and_grad(reference_loss)(p, x, y, target, has_target, alpha, temperature)
    updates, opt_state = optax.adam(learning_rate).update(grads, opt_state, p)
    return optax.apply_updates(p, updates), opt_state, loss


permutation = jax.jit(jax.random.permutation, static_argnums=1)


def np_target(teacher_logits, weights, temperature):
    """weights (B, K) -> (target (B, C), has_target (B,))."""
    probs = np.exp(np_log_softmax(teacher_logits / temperature))  # (K, B, C)
    total = weights.sum(1)
    fused = np.einsum("bk,kbc->bc", weights, probs) / np.where(total > 0, total, 1.0)[:, None]
    return fused, total > 0


def reference_episode(arrays, cfg: envs.EnvConfig, key, actions, init_params):
    """Observations (T + 1) and rewards (T) of one episode with the given actions."""
    x, y, tl = arrays.x_train, arrays.y_train, arrays.teacher_logits_train
    n, batch = cfg.updates_per_decision, cfg.batch_size
    per_epoch = (len(y) // batch) // n
    total = cfg.epochs * per_epoch
    subset = cfg.val_subset or len(arrays.y_val)
    xv, yv = arrays.x_val[:subset], arrays.y_val[:subset]

    def order(k):
        perm = np.asarray(permutation(k, len(y)))
        return perm[: per_epoch * n * batch].reshape(per_epoch, n, batch)

    def validation(p):
        logits = np_forward(p, xv)
        return -np_log_softmax(logits)[np.arange(subset), yv].mean(), (logits.argmax(-1) == yv).mean()

    def observe(index, p, t):
        index = index.reshape(-1)
        return np_observation(tl[:, index], y[index], np_forward(p, x[index]), t / total, cfg.temperature,
                              cfg.per_example)

    _, order_key, state_key = jax.random.split(key, 3)
    batches = order(order_key)
    p = jax.tree.map(np.asarray, init_params)
    opt_state = optax.adam(cfg.learning_rate).init(p)
    previous = validation(p)
    observations, rewards = [observe(batches[0], p, 0)], []
    for t in range(total):
        index = batches[t % per_epoch]
        action = np.asarray(actions[t], dtype=np.float64)
        losses = []
        for j in range(n):
            rows = index[j]
            weights = (action.reshape(n, batch, -1)[j] if cfg.per_example
                       else np.broadcast_to(action, (batch, action.size)))
            target, has_target = np_target(tl[:, rows], weights, cfg.temperature)
            p, opt_state, loss = reference_update(p, opt_state, x[rows], y[rows], target, has_target,
                                                  cfg.alpha, cfg.temperature, cfg.learning_rate)
            p = jax.tree.map(np.asarray, p)
            losses.append(float(loss))
        done = t + 1 == total
        if cfg.reward == "neg_train_loss":
            rewards.append(-np.mean(losses))
        elif cfg.reward == "terminal_val_acc":
            rewards.append(validation(p)[1] if done else 0.0)
        elif (t + 1) % cfg.eval_every == 0 or done:
            current = validation(p)
            gain = previous[0] - current[0] if cfg.reward == "val_loss_gain" else current[1] - previous[1]
            rewards.append(gain)
            previous = current
        else:
            rewards.append(0.0)
        if (t + 1) % per_epoch == 0:
            order_key, state_key = jax.random.split(state_key)
            batches = order(order_key)
        observations.append(observe(batches[(t + 1) % per_epoch], p, t + 1))
    return observations, rewards


CASES = [
    dict(reward="val_loss_gain", eval_every=3),
    dict(reward="val_acc_gain", updates_per_decision=2, per_example=True, val_subset=20),
    dict(reward="terminal_val_acc"),
    dict(reward="neg_train_loss", updates_per_decision=2),
]


@pytest.fixture(scope="module")
def problem():
    arrays = probe_arrays(seed=3, num_train=64, num_val=24, num_classes=4, num_features=6)
    graphdef, params = init_students(ModelSpec("mlp", {"widths": [WIDTH]}), (6,), 4, [7])
    return arrays, unstack(params, 0)


@pytest.mark.parametrize("case", CASES, ids=[c["reward"] for c in CASES])
def test_core_matches_reference(problem, case):
    arrays, student = problem
    params = envs.make_env_params(*arrays, envs.EnvConfig(student=STUDENT, epochs=2, batch_size=16, temperature=2.0,
                                                          learning_rate=1e-2, **case), initial_student=student)
    cfg = params.config
    rng = np.random.default_rng(0)
    shape = (cfg.examples_per_decision, 3) if cfg.per_example else (3,)
    actions = [np.zeros(shape), np.ones(shape)] + [rng.integers(0, 2, shape) for _ in range(params.num_decisions - 2)]
    key = jax.random.key(11)

    expected_obs, expected_rewards = reference_episode(arrays, cfg, key, actions, nnx.to_pure_dict(student))

    reset, step = jax.jit(envs.reset), jax.jit(envs.step)
    obs, state = reset(key, params)
    observations, rewards, dones = [np.asarray(obs)], [], []
    for t, action in enumerate(actions):
        obs, state, reward, done, info = step(jax.random.key(100 + t), state, jnp.asarray(action), params)
        observations.append(np.asarray(obs))
        rewards.append(float(reward))
        dones.append(bool(done))

    assert dones == [False] * (len(actions) - 1) + [True]
    for t, (got, want) in enumerate(zip(observations, expected_obs)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5, err_msg=f"observation {t}")
    np.testing.assert_allclose(rewards, expected_rewards, rtol=2e-4, atol=2e-5)
    assert any(abs(r) > 1e-3 for r in rewards)  # the comparison is not vacuous


def test_fresh_student_comes_from_the_reset_key(problem):
    arrays, _ = problem
    params = envs.make_env_params(*arrays, student=STUDENT, batch_size=16)
    _, state_a = jax.jit(envs.reset)(jax.random.key(5), params)
    _, state_b = jax.jit(envs.reset)(jax.random.key(6), params)
    expected = envs.init_student(params, jax.random.split(jax.random.key(5), 3)[0])
    for got, want in zip(jax.tree.leaves(state_a.student.params), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(got, want)
    assert not np.allclose(jax.tree.leaves(state_a.student.params)[-1], jax.tree.leaves(state_b.student.params)[-1])


@pytest.mark.parametrize("per_example", [False, True])
def test_observation_features_match_numpy_and_stay_in_bounds(per_example):
    rng = np.random.default_rng(1)
    teacher_logits = rng.normal(size=(3, 32, 5)).astype(np.float32) * np.array([1.0, 4.0, 60.0])[:, None, None]
    student_logits = rng.normal(size=(32, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 32)
    got = np.asarray(envs.observation_features(teacher_logits, labels, student_logits, 0.25, 4.0, per_example))
    want = np_observation(teacher_logits, labels, student_logits, 0.25, 4.0, per_example)
    assert got.shape == envs.observation_shape(3, per_example, 32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.minimum(want, envs.observation.FEATURE_CAP), rtol=1e-4, atol=1e-4)
    space_low, space_high = envs.observation.observation_bounds(3, per_example, 32)
    assert np.all(got >= space_low) and np.all(got <= space_high)
    assert envs.observation_size(3, per_example) == (27 if per_example else 19)


@pytest.mark.parametrize("case", CASES, ids=[c["reward"] for c in CASES])
def test_run_decisions_matches_reference(problem, case):
    """`run_decisions` (`decide`: one forward pass serves the observation and the update) against
    the same numpy reference, its actions chosen from the observation's clock."""
    arrays, student = problem
    params = envs.make_env_params(*arrays, envs.EnvConfig(student=STUDENT, epochs=2, batch_size=16, temperature=2.0,
                                                          learning_rate=1e-2, **case), initial_student=student)
    cfg = params.config
    rng = np.random.default_rng(1)
    shape = (cfg.examples_per_decision, 3) if cfg.per_example else (3,)
    actions = np.stack([rng.integers(0, 2, shape) for _ in range(params.num_decisions)]).astype(np.float32)
    key = jax.random.key(12)
    expected_obs, expected_rewards = reference_episode(arrays, cfg, key, actions, nnx.to_pure_dict(student))

    def select(_, obs):  # the decision's number, read back from `progress` (the last feature)
        progress = obs[0, 0, -1] if cfg.per_example else obs[-1]
        return jnp.asarray(actions)[jnp.round(progress * params.num_decisions).astype(jnp.int32)]

    _, state = envs.reset(key, params)
    run = jax.jit(lambda s: envs.run_decisions(jax.random.key(0), s, params, select, params.num_decisions))
    end, trajectory = run(state)
    np.testing.assert_allclose(trajectory.obs, np.stack(expected_obs[:-1]), rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(trajectory.action, actions)
    np.testing.assert_allclose(trajectory.reward, expected_rewards, rtol=2e-4, atol=2e-5)
    assert int(end.t) == params.num_decisions and bool(trajectory.done[-1]) and not trajectory.done[:-1].any()


def test_run_decisions_can_keep_the_order():
    """`new_orders=False`: past an epoch's end the decisions replay the state's order (and the
    state's key is untouched); with the default, the next epoch's order comes from that key."""
    arrays = probe_arrays(seed=4, num_train=64, num_val=24, num_classes=4, num_features=6)
    params = envs.make_env_params(*arrays, student=STUDENT, epochs=3, batch_size=16)
    _, state = envs.reset(jax.random.key(3), params)
    per_epoch = params.decisions_per_epoch

    def run(new_orders):
        return envs.run_decisions(jax.random.key(0), state, params, lambda k, o: jnp.ones(3), 2 * per_epoch,
                                  new_orders=new_orders)

    kept, _ = run(False)
    drawn, _ = run(True)
    np.testing.assert_array_equal(kept.batches, state.batches)
    np.testing.assert_array_equal(jax.random.key_data(kept.key), jax.random.key_data(state.key))
    # two epoch ends: two orders drawn from the state's key, the order held at the end is the second
    first_key, next_key = jax.random.split(state.key)
    second_key, _ = jax.random.split(next_key)
    np.testing.assert_array_equal(drawn.batches, envs.core.decision_batches(second_key, params))
    assert not np.array_equal(drawn.batches, state.batches)
