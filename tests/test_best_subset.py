"""best_subset: the subsets it tries, how it chooses, and the masked batch of runs it trains."""

import itertools

import jax.numpy as jnp
import numpy as np

from mtkd.ablation.best_subset import all_subsets, choose
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.fusion.strategies import StrategyContext, make_strategy
from mtkd.models import ModelSpec
from mtkd.envs.probe import probe_arrays


def test_all_subsets_are_every_non_empty_mask_once():
    masks = all_subsets(4)
    assert masks.shape == (15, 4)
    expected = {m for m in itertools.product([0, 1], repeat=4) if any(m)}
    assert {tuple(int(v) for v in m) for m in masks} == expected
    assert list(masks.sum(axis=1)) == sorted(masks.sum(axis=1))  # smaller subsets first


def test_choose_takes_the_best_validation_then_the_smaller_subset():
    masks = np.asarray([[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 1, 1]], np.float32)
    assert choose(masks, np.asarray([0.5, 0.7, 0.6, 0.7])) == 1  # tie: the smaller subset
    assert choose(masks, np.asarray([0.5, 0.6, 0.6, 0.8])) == 3


def test_masked_runs_equal_the_weighted_strategy_with_the_same_mask():
    """One vmapped batch of (subset, seed) runs gives what each subset gives alone as fixed
    weights (`weighted:1,0,1` is uniform over teachers 0 and 2)."""
    arrays = probe_arrays(seed=4)
    train = SplitArrays(jnp.asarray(arrays.x_train), jnp.asarray(arrays.y_train), jnp.asarray(arrays.teacher_logits_train))
    val = SplitArrays(jnp.asarray(arrays.x_val), jnp.asarray(arrays.y_val))
    config = TrainConfig(epochs=3, batch_size=64)
    spec = ModelSpec("mlp", {"widths": [16]})
    context = StrategyContext(("a", "b", "c"), (0.9, 0.9, 0.1))
    masks = np.asarray([[1, 0, 1], [1, 0, 1], [0, 1, 0]], np.float32)
    batched = fit(spec, (10,), 4, train, val, make_strategy("uniform", context), config, [0, 1, 0],
                  teacher_masks=masks)
    alone = fit(spec, (10,), 4, train, val, make_strategy("weighted:1,0,1", context), config, [0, 1])
    single = fit(spec, (10,), 4, train, val, make_strategy("single:b", context), config, [0])
    np.testing.assert_allclose(batched.val_accuracy[:2], alone.val_accuracy, atol=1e-6)
    np.testing.assert_allclose(batched.val_accuracy[2], single.val_accuracy[0], atol=1e-6)
    np.testing.assert_allclose([h["train_loss"][:2] for h in batched.history],
                               [h["train_loss"] for h in alone.history], rtol=1e-4)
    assert batched.history[0]["selection"][2] == [0.0, 1.0, 0.0]
