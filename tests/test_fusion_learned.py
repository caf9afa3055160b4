"""The published methods that learn while the student trains (MMKD, MTKD-RL): their pieces
against independent computations, and their runs inside `fit`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.errors import ConfigError
from mtkd.fusion import StrategyContext, StrategyInput, make_strategy
from mtkd.fusion import mmkd, mtkd_rl
from mtkd.fusion.strategies import StrategyShapes
from mtkd.models import ModelSpec

K, B, C, D = 3, 8, 5, 6
RNG = np.random.default_rng(5)
TEACHERS = (RNG.normal(size=(K, B, C)) * 2).astype(np.float32)
STUDENT = RNG.normal(size=(B, C)).astype(np.float32)
LABELS = RNG.integers(0, C, B)
CONTEXT = StrategyContext(("a", "b", "c"), (0.9, 0.8, 0.7))


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def numpy_kl_ce(teachers, student, labels, temperature=4.0):
    kl = np.zeros((len(labels), len(teachers)))
    ce = np.zeros_like(kl)
    for k, z in enumerate(teachers.astype(np.float64)):
        p_t, p_s = softmax(z / temperature), softmax(student.astype(np.float64) / temperature)
        kl[:, k] = temperature**2 * np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1)
        ce[:, k] = -np.log(softmax(z)[np.arange(len(labels)), labels])
    return kl, ce


def batch(progress=0.5, step=0):
    return StrategyInput(jax.random.key(0), jnp.asarray(TEACHERS), jnp.asarray(LABELS), jnp.asarray(STUDENT),
                         jnp.float32(progress), step=jnp.int32(step))


SHAPES = StrategyShapes(K, C, (D,), jnp.float32, B, 4)


# ---- MTKD-RL ------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["mtkd_rl", "mtkd_rl:dynamic"])
def test_mtkd_rl_weights_are_the_mix_of_agent_ca_mkd_and_kl_softmax(spec):
    strategy = make_strategy(spec, CONTEXT)
    state = strategy.init_state(jax.random.key(1), SHAPES)
    weights, state = strategy.stateful_weights(state, batch())
    kl, ce = numpy_kl_ce(TEACHERS, STUDENT, LABELS)
    # The agent by hand, from its parameters.
    cosine = np.stack([np.sum(STUDENT * TEACHERS[k], 1) / np.linalg.norm(STUDENT, axis=1)
                       / np.linalg.norm(TEACHERS[k], axis=1) for k in range(K)], axis=1)
    inputs = np.concatenate([np.concatenate([cosine[:, k:k + 1], kl[:, k:k + 1], ce[:, k:k + 1], TEACHERS[k]], 1)
                             for k in range(K)], axis=1)
    agent = state.agent
    hidden = np.maximum(inputs @ np.asarray(agent["stem"]["kernel"][...]), 0)
    agent_w = softmax(hidden @ np.asarray(agent["head"]["kernel"][...]) + np.asarray(agent["head"]["bias"][...]))
    share = softmax(np.ones(3)) if spec.endswith("dynamic") else np.full(3, 1 / 3)
    expected = share[0] * agent_w + share[1] * (1 - softmax(ce)) / (K - 1) + share[2] * softmax(kl)
    np.testing.assert_allclose(np.asarray(weights), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(state.states[0]), inputs, rtol=1e-4, atol=1e-5)
    # The reward: -(student CE + sum_k w_k KL_k), z-scored with the unbiased std, clipped to [0, 1].
    student_ce = -np.log(softmax(STUDENT.astype(np.float64))[np.arange(B), LABELS])
    r = -(student_ce + np.sum(expected * kl, axis=1))
    np.testing.assert_allclose(np.asarray(state.rewards[0]), np.clip((r - r.mean()) / r.std(ddof=1), 0, 1),
                               rtol=1e-4, atol=1e-5)


def test_mtkd_rl_uses_all_ones_in_the_first_epoch():
    strategy = make_strategy("mtkd_rl", CONTEXT)
    weights, _ = strategy.stateful_weights(strategy.init_state(jax.random.key(1), SHAPES), batch(progress=0.0))
    np.testing.assert_array_equal(np.asarray(weights), np.ones((B, K)))


def test_mtkd_rl_epoch_update_follows_the_reward_weighted_bce():
    """One epoch-end step per stored batch, each lowering `mean_ik -r_i log w_ik` on its batch;
    only the dynamic variant moves its mix."""
    for spec in ["mtkd_rl", "mtkd_rl:dynamic"]:
        strategy = make_strategy(spec, CONTEXT)
        state = strategy.init_state(jax.random.key(2), SHAPES)
        for step in range(4):
            _, state = strategy.stateful_weights(state, batch(step=step))
        dynamic = spec.endswith("dynamic")

        def bce(agent, i):
            w = mtkd_rl.agent_weights(agent, state.states[i], dynamic)
            return float(jnp.mean(-state.rewards[i][:, None] * jnp.log(w)))

        after = strategy.end_epoch(state)
        # A single stored batch: the update is exactly one SGD step on its loss.
        one = state._replace(states=state.states[:1], rewards=state.rewards[:1])
        stepped = strategy.end_epoch(one).agent
        assert bce(stepped, 0) < bce(state.agent, 0)
        grads = jax.grad(lambda a: jnp.mean(-state.rewards[0][:, None]
                                            * jnp.log(mtkd_rl.agent_weights(a, state.states[0], dynamic))))(state.agent)
        expected = jax.tree.map(lambda p, g: p - 0.1 * g, state.agent, grads)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7),
                     stepped, expected)
        mix_moved = not np.allclose(np.asarray(after.agent["mix"][...]), 1.0)
        assert mix_moved == dynamic


# ---- MMKD ---------------------------------------------------------------------------------

def linear_student(params, x):
    return x @ params["w"] + params["b"]


@pytest.mark.parametrize("steps,rtol", [(1, 1e-6), (2, 0.05)])
def test_mmkd_meta_gradient_against_finite_differences(steps, rtol):
    """Exact with one look-ahead step. With the paper's two, the second step's weight-network input
    (the look-ahead student's logits) is detached, as in the authors' code, so finite differences
    see a path that the meta gradient leaves out: close, not equal."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        network = nnx.split(mmkd.WeightNetwork(K, C, nnx.Rngs(params=jax.random.key(3))))[1]
        network = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), network)
        params = {"w": jnp.asarray(rng.normal(size=(D, C))), "b": jnp.zeros(C, jnp.float64)}
        x = jnp.asarray(rng.normal(size=(B, D)))
        teachers = jnp.asarray(TEACHERS, jnp.float64)
        meta_x, meta_y = jnp.asarray(rng.normal(size=(4, D))), jnp.asarray(rng.integers(0, C, 4))
        mask = jnp.ones(4)

        @jax.jit  # one compilation for the three calls below; op by op they took 20 s
        def f(net):
            return mmkd.meta_loss(net, linear_student, params, x, teachers, meta_x, meta_y, mask, 0.5, steps)

        grads = jax.jit(jax.grad(f))(network)
        direction = jax.tree.map(lambda g: jnp.asarray(rng.normal(size=g.shape)), grads)
        eps = 1e-5
        plus = f(jax.tree.map(lambda p, d: p + eps * d, network, direction))
        minus = f(jax.tree.map(lambda p, d: p - eps * d, network, direction))
        numeric = (plus - minus) / (2 * eps)
        analytic = sum(jnp.sum(g * d) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(direction)))
        assert abs(float(analytic)) > 1e-6  # the weights do reach the meta loss
        np.testing.assert_allclose(float(analytic), float(numeric), rtol=rtol)


def test_mmkd_weight_network_and_buffer_by_hand():
    strategy = make_strategy("mmkd", CONTEXT)
    state = strategy.init_state(jax.random.key(4), StrategyShapes(K, C, (D,), jnp.float32, B, 4))
    net = state.network
    inputs = np.concatenate([TEACHERS.transpose(1, 0, 2).reshape(B, -1), STUDENT], axis=1)
    hidden = np.maximum(inputs @ np.asarray(net["hidden"]["kernel"][...]) + np.asarray(net["hidden"]["bias"][...]), 0)
    expected = softmax(hidden @ np.asarray(net["out"]["kernel"][...]) + np.asarray(net["out"]["bias"][...]))
    got = mmkd.network_weights(net, jnp.asarray(TEACHERS), jnp.asarray(STUDENT))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)
    # Filling: whole batches first; once full, only misclassified examples are written.
    x = jnp.arange(B * D, dtype=jnp.float32).reshape(B, D)
    y = jnp.arange(B, dtype=jnp.int32)
    wrong = jnp.asarray(np.arange(B) % 2 == 0)
    filled = state
    for i in range(mmkd.BUFFER_SIZE // B):
        filled = mmkd.update_buffer(filled, x + 1000 * i, y, wrong, jax.random.key(i))
    assert int(filled.filled) == mmkd.BUFFER_SIZE
    np.testing.assert_array_equal(np.asarray(filled.buffer_x[:B]), np.asarray(x))
    after = mmkd.update_buffer(filled, -x - 1, y + 100, wrong, jax.random.key(99))
    changed = np.flatnonzero(np.asarray(after.buffer_y) != np.asarray(filled.buffer_y))
    assert 0 < len(changed) <= int(wrong.sum())
    assert set(np.asarray(after.buffer_y)[changed]) <= {100 + i for i in np.flatnonzero(np.asarray(wrong))}


# ---- Inside fit ---------------------------------------------------------------------------

def small_task():
    rng = np.random.default_rng(0)
    n, d, c = 384, 8, 4
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(d, c)), axis=1)
    good = np.eye(c, dtype=np.float32)[y] * 6
    teachers = np.stack([good, np.roll(good, 1, axis=1)])  # an honest teacher and its permuted copy
    return (SplitArrays(jnp.asarray(x[:320]), jnp.asarray(y[:320]), jnp.asarray(teachers[:, :320])),
            SplitArrays(jnp.asarray(x[320:]), jnp.asarray(y[320:])))


@pytest.mark.parametrize("spec", ["mmkd", "mtkd_rl"])
def test_learned_strategies_train_inside_fit_deterministically(spec):
    train, val = small_task()
    context = StrategyContext(("source", "permuted"), (1.0, 0.0))
    config = TrainConfig(epochs=3, batch_size=64)
    runs = [fit(ModelSpec("mlp", {"widths": [16]}), (8,), 4, train, val, make_strategy(spec, context), config, [0, 1])
            for _ in range(2)]
    assert runs[0].val_accuracy == runs[1].val_accuracy
    selection = np.asarray(runs[0].history[-1]["selection"])  # (seeds, K)
    assert selection.shape == (2, 2) and np.all(np.isfinite(selection))
    np.testing.assert_allclose(selection.sum(axis=1), 1.0, rtol=1e-5)  # both methods' weights sum to 1
    np.testing.assert_array_equal(np.asarray(runs[0].history[0]["selection"]),
                                  np.asarray(runs[1].history[0]["selection"]))


def test_learned_strategies_refused_by_the_composite_trainer():
    from mtkd.distill.composite_fit import fit_composite
    train, val = small_task()
    with pytest.raises(ConfigError, match="plain distillation trainer only"):
        fit_composite(ModelSpec("mlp", {"widths": [16]}), (8,), 4, train, val,
                      make_strategy("mmkd", StrategyContext(("a", "b"), (1.0, 0.0))), None, TrainConfig(), [0])


@pytest.mark.parametrize("spec,message", [("mtkd_rl:fast", "only option"), ("mmkd:-1", "must be positive"),
                                          ("mmkd:abc", "positive number")])
def test_bad_learned_strategy_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_strategy(spec, CONTEXT)
