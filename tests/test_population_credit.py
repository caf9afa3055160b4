"""The population selector's credit: least squares against the normal equations written out and
against the spread of repeated estimates, the masks' exploration, the seeds' independence from
student seeds, the policy step, and the config's refusals."""

import numpy as np
import pytest

from mtkd.agents.population import POPULATION_STREAM, policy_logits, population_masks, population_seeds
from mtkd.agents.population_config import PopulationConfig
from mtkd.agents.population_credit import draw_masks, least_squares_credit, minimum_population
from mtkd.errors import ConfigError, UnknownNameError


def _design(n, k, seed=0):
    return (np.random.default_rng(seed).random((n, k)) < 0.5).astype(np.float64)


def test_effects_and_standard_errors_equal_the_normal_equations_by_hand():
    rng = np.random.default_rng(1)
    masks = _design(40, 4)
    returns = 0.3 + masks @ np.array([1.0, -0.5, 0.0, 0.2]) + rng.normal(scale=0.1, size=40)
    credit = least_squares_credit(masks, returns)
    # By hand: X = [1, m], beta = (X'X)^-1 X'y, sigma^2 = |y - X beta|^2 / (n - p), se = sqrt(diag).
    x = np.hstack([np.ones((40, 1)), masks])
    xtx = np.zeros((5, 5))
    for row in x:
        xtx += np.outer(row, row)
    beta = np.linalg.solve(xtx, x.T @ returns)
    residual = returns - x @ beta
    sigma2 = residual @ residual / (40 - 5)
    se = np.sqrt(sigma2 * np.diag(np.linalg.inv(xtx)))
    np.testing.assert_allclose(credit.effect, beta[1:], rtol=1e-10)
    np.testing.assert_allclose(credit.se, se[1:], rtol=1e-8)
    np.testing.assert_allclose(credit.t, beta[1:] / se[1:], rtol=1e-8)
    assert credit.dof == 35 and credit.students == 40


def test_standard_errors_match_the_spread_of_repeated_estimates():
    """Each teacher's own standard error (not a pooled one) is what repeated populations scatter by:
    a teacher included 80% of the time is known less well than one included half the time."""
    rng = np.random.default_rng(2)
    n = 40  # exactly half, 80% and half of the students hold teachers 0, 1 and 2
    masks = np.stack([rng.permutation(np.arange(n) < round(p * n)).astype(float) for p in (0.5, 0.8, 0.5)], axis=1)
    estimates, ses = [], []
    for _ in range(2000):
        returns = masks @ np.array([0.5, -0.5, 0.0]) + rng.normal(size=n)
        credit = least_squares_credit(masks, returns)
        estimates.append(credit.effect)
        ses.append(credit.se)
    np.testing.assert_allclose(np.std(estimates, axis=0), np.mean(ses, axis=0), rtol=0.08)
    assert np.mean(ses, axis=0)[1] > 1.1 * np.mean(ses, axis=0)[0]
    np.testing.assert_allclose(np.mean(estimates, axis=0), [0.5, -0.5, 0.0], atol=0.03)


def test_a_teacher_never_varied_gets_no_credit_and_generations_get_their_own_intercepts():
    masks = _design(20, 3)
    masks[:, 2] = 1.0
    returns = masks[:, 0] - masks[:, 1] + 0.01 * np.random.default_rng(3).normal(size=20)
    credit = least_squares_credit(masks, returns)
    assert credit.effect[2] == 0 and credit.t[2] == 0 and np.isinf(credit.se[2])
    generation = np.repeat([0, 1], 10)
    shifted = returns + 5.0 * generation  # a whole generation better: no teacher's doing
    np.testing.assert_allclose(least_squares_credit(masks, shifted, generation).effect,
                               least_squares_credit(masks, returns, generation).effect, atol=1e-9)


def test_masks_explore_within_bounds():
    rng = np.random.default_rng(4)
    masks = draw_masks(rng, np.array([0.99, 0.5, 0.01]), 20000, exploration=0.25)
    np.testing.assert_allclose(masks.mean(axis=0), [0.75, 0.5, 0.25], atol=0.015)
    a = population_masks(0, 0, np.full(3, 0.5), 8, 0.25)
    np.testing.assert_array_equal(a, population_masks(0, 0, np.full(3, 0.5), 8, 0.25))
    assert not np.array_equal(a, population_masks(1, 0, np.full(3, 0.5), 8, 0.25))


def test_population_seeds_never_coincide_with_student_seeds():
    seeds = {s for agent in range(5) for g in range(4) for s in population_seeds(agent, g, 64)}
    assert len(seeds) == 5 * 4 * 64  # every selector seed and generation draws its own students
    assert min(seeds) >= 2**31  # student seeds are small integers; these have the top bit set
    assert population_seeds(3, 1, 8) == population_seeds(3, 1, 8)
    assert POPULATION_STREAM not in seeds


def test_policy_moves_by_the_soft_thresholded_evidence():
    from mtkd.agents.population_credit import Credit

    config = PopulationConfig(policy_learning_rate=2.0, evidence_threshold=1.0, evidence_cap=3.0)
    credit = Credit(np.zeros(4), np.ones(4), np.array([0.5, -2.5, 9.0, -1.0]), 10, 20)
    start = np.array([2.0, 2.0, 0.0, 1.0])
    np.testing.assert_allclose(policy_logits(start, credit, config), [2.0, 2.0 - 3.0, 6.0, 1.0])


def test_population_too_small_for_the_pool_is_refused():
    assert minimum_population(6) == 8
    PopulationConfig(population=8).check_pool(6)
    with pytest.raises(ConfigError, match="at least teachers \\+ 2 = 8"):
        PopulationConfig(population=7).check_pool(6)


@pytest.mark.parametrize("options", [{"population": "16"}, {"population": 16.0}, {"generations": True},
                                     {"generations": 0}, {"horizon": 0}, {"horizon": "all"},
                                     {"exploration": 0.0}, {"exploration": 0.7}, {"exploration": "0.2"},
                                     {"policy_learning_rate": -1.0}, {"evidence_threshold": -0.5},
                                     {"per_example": "yes"}, {"agent_seed": -1}, {"population_size": 8}])
def test_config_refuses_bad_options(options):
    with pytest.raises(ConfigError):
        PopulationConfig.from_dict(options)


@pytest.mark.parametrize("options", [{"reward": "val_acc_gain"}, {"init": "best"}, {"apply": "softly"}])
def test_config_refuses_unknown_names(options):
    with pytest.raises(UnknownNameError):
        PopulationConfig.from_dict(options)


def test_a_policy_over_another_fusion_multiplies_its_weights():
    """`fusion = "weighted"`: the rl strategy's weights are the selection times weighted's own."""
    import jax
    import jax.numpy as jnp

    from mtkd.agents.checkpoint import PolicyMeta
    from mtkd.agents.policies import make_policy
    from mtkd.agents.rl_strategy import make_rl_strategy
    from mtkd.fusion.strategies import StrategyContext, StrategyInput, make_strategy

    context = StrategyContext(("a", "b", "c"), (0.9, 0.6, 0.3))
    meta = PolicyMeta("teacher_bias", {}, 3, 19, False, 4.0, ["a", "b", "c"], "greedy", "weighted")
    strategy = make_rl_strategy(make_policy("teacher_bias"), {"b": jnp.asarray([2.0, -1.0, 0.5])}, meta,
                                context=context)
    batch = StrategyInput(jax.random.key(0), jnp.ones((3, 4, 5)), jnp.zeros(4, jnp.int32), None, 0.0)
    expected = np.asarray(make_strategy("weighted", context).weights(batch)) * np.array([1.0, 0.0, 1.0])
    np.testing.assert_allclose(np.asarray(strategy.weights(batch)), expected)
    assert strategy.name == "rl" and not strategy.needs_student
    with pytest.raises(ConfigError, match="fusion must name fusion strategies"):
        PopulationConfig(fusion="rl")
    with pytest.raises(UnknownNameError):
        PopulationConfig(fusion="median")


def test_the_default_horizon_is_half_the_run_rounded_up():
    assert PopulationConfig().horizon_epochs(150) == 75 and PopulationConfig().horizon_epochs(5) == 3
    assert PopulationConfig(horizon=40).horizon_epochs(150) == 40


def test_extra_regressors_are_fitted_alongside_and_decide_the_fusion():
    """A fusion indicator as an extra column: its coefficient by hand, and the choice it gives."""
    from mtkd.agents.population import chosen_fusion

    rng = np.random.default_rng(5)
    masks = _design(48, 3, seed=6)
    other = (np.arange(48) % 2).astype(float)[:, None]  # every other student used the second fusion
    returns = masks @ np.array([0.5, -0.3, 0.1]) + 0.8 * other[:, 0] + rng.normal(scale=0.1, size=48)
    credit = least_squares_credit(masks, returns, extra=other)
    x = np.hstack([np.ones((48, 1)), masks, other])
    beta = np.linalg.lstsq(x, returns, rcond=None)[0]
    np.testing.assert_allclose(credit.effect, beta[1:4], rtol=1e-9)
    np.testing.assert_allclose(credit.extra_effect, beta[4:], rtol=1e-9)
    assert credit.extra_t[0] > 10
    config = PopulationConfig(fusion="uniform,ae_kd")
    assert config.fusions == ("uniform", "ae_kd") and chosen_fusion(np.zeros(3), credit, config) == "ae_kd"
    weak = least_squares_credit(masks, returns - 0.8 * other[:, 0], extra=other)  # no real difference
    assert chosen_fusion(np.zeros(3), weak, config) == "uniform"
    with pytest.raises(ConfigError, match="at least teachers \\+ 2 \\+ 1 more fusion"):
        PopulationConfig(population=8, fusion="uniform,ae_kd").check_pool(6)
    with pytest.raises(ConfigError, match="twice"):
        PopulationConfig(fusion="uniform,uniform")
