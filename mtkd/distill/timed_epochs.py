"""Compiled student epochs of `seeds` vmapped students, ready to time (`mtkd bench`, the
selector's cost in `mtkd.agents.benchmark`): the epoch `fit` runs, without its validation loop."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from mtkd.data import DatasetSplits
from mtkd.distill.fit import init_students
from mtkd.distill.steps import FitState, StudentState, make_epoch
from mtkd.fusion import StrategyContext, make_strategy
from mtkd.models import ModelSpec
from mtkd.optimizers import make_optimizer
from mtkd.timing import epoch_runner
from mtkd.train_config import TrainConfig

MLP_STUDENT = ModelSpec("mlp", {"widths": [100, 100]})


def seeds_epoch_runner(splits: DatasetSplits, teacher_logits, seeds: int, student: ModelSpec = MLP_STUDENT,
                       strategy_name: str = "uniform", config: TrainConfig = TrainConfig()) -> Callable[[int], None]:
    """`run(i)`: one compiled uniform-fusion epoch of `seeds` students vmapped, as `fit` runs them
    (each seed its own permutation), on teacher_logits (K, N_train, C)."""
    num_teachers = int(teacher_logits.shape[0])
    graphdef, params = init_students(student, splits.input_shape, splits.num_classes, list(range(seeds)))
    optimizer = make_optimizer(config.optimizer, config.learning_rate)
    context = StrategyContext(tuple(f"teacher_{k}" for k in range(num_teachers)), (1.0,) * num_teachers)
    strategy = make_strategy(strategy_name, context)
    epoch = make_epoch(graphdef, optimizer, strategy, config.alpha, config.temperature, config.batch_size)
    state = FitState(StudentState(params, jax.vmap(optimizer.init)(params)))
    seeds_epoch = jax.vmap(epoch, in_axes=(0, 0, None, None, None, None))

    def one_key_epoch(state, key, *arrays):  # `epoch_runner` hands one key per epoch: one per seed from it
        return seeds_epoch(state, jax.random.split(key, seeds), *arrays)

    return epoch_runner(one_key_epoch, state, jnp.asarray(splits.x_train), jnp.asarray(splits.y_train),
                        teacher_logits)


__all__ = ["MLP_STUDENT", "seeds_epoch_runner"]
