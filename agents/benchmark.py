"""What the learned selector costs per student epoch, against the plain uniform average.

The `rl` epoch does everything the uniform one does plus, per batch, a student forward pass for
the observation, the observation features, the policy and the sampling of the mask. Times are
medians over compiled epochs in interleaved rounds (`mtkd.timing`); no test asserts a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from agents.checkpoint import PolicyMeta, load_policy
from agents.rl_strategy import check_policy_fits, make_rl_strategy
from envs.observation import observation_size
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import init_students, unstack
from mtkd.optimizers import make_optimizer
from mtkd.distill.steps import FitState, StudentState, make_epoch
from mtkd.fusion import StrategyContext, make_strategy
from mtkd.models import ModelSpec
from mtkd.timing import epoch_runner, paired_ratios

GOAL_RATIO = 1.10


def untrained_policy(num_teachers: int, temperature: float):
    """A logistic policy at its initial parameters (costs exactly what a trained one costs)."""
    meta = PolicyMeta("logistic", {}, num_teachers, observation_size(num_teachers), False, temperature,
                      [f"teacher_{k}" for k in range(num_teachers)])
    policy = meta.build()
    return policy, policy.init(jax.random.key(0), meta.observation_size, num_teachers), meta


def epoch_cost_from_arrays(x, y, teacher_logits, num_classes: int, policy_dir: str | Path | None = None,
                           student: ModelSpec = ModelSpec("mlp", {"widths": [100, 100]}),
                           config: TrainConfig = TrainConfig(), repeats: int = 20) -> dict[str, Any]:
    """Median epoch seconds under `rl` and `uniform` on x (N, ...), y (N,), teacher logits (K, N, C),
    timed in interleaved rounds, and the median (min, max, pairs, spread) of their per-round ratios."""
    num_teachers = int(teacher_logits.shape[0])
    if policy_dir is None:
        policy, params, meta = untrained_policy(num_teachers, config.temperature)
    else:
        policy, params, meta = load_policy(policy_dir)
        check_policy_fits(meta, num_teachers, str(policy_dir))
    graphdef, student_params = init_students(student, tuple(x.shape[1:]), num_classes, [0])
    student_params = unstack(student_params, 0)
    optimizer = make_optimizer(config.optimizer, config.learning_rate)
    state = FitState(StudentState(student_params, optimizer.init(student_params)))
    context = StrategyContext(tuple(f"teacher_{k}" for k in range(num_teachers)), (1.0,) * num_teachers)
    batch_size = min(config.batch_size, int(x.shape[0]))
    x, y, teacher_logits = jnp.asarray(x), jnp.asarray(y), jnp.asarray(teacher_logits)

    def runner(strategy):
        epoch = make_epoch(graphdef, optimizer, strategy, config.alpha, config.temperature, batch_size)
        return epoch_runner(epoch, state, x, y, teacher_logits)

    timed = paired_ratios({"uniform": runner(make_strategy("uniform", context)),
                           "rl": runner(make_rl_strategy(policy, params, meta))}, "uniform", min_rounds=repeats)
    ratio = timed["ratios"]["rl"]
    return {"epoch_seconds_rl": timed["seconds"]["rl"], "epoch_seconds_uniform": timed["seconds"]["uniform"],
            "ratio_rl_uniform": ratio["median"], "ratio_rl_uniform_summary": ratio,
            "goal_ratio_rl_uniform": GOAL_RATIO, "rl_policy": str(policy_dir) if policy_dir else "logistic (untrained)"}


def selector_epoch_cost(splits, pool, repeats: int = 20, policy_dir: str | Path | None = None,
                        student: ModelSpec = ModelSpec("mlp", {"widths": [100, 100]}),
                        config: TrainConfig = TrainConfig()) -> dict[str, Any]:
    """`epoch_cost_from_arrays` on a data set's training split and a pool's cached logits."""
    logits = pool.logits(splits)["train"]
    return epoch_cost_from_arrays(splits.x_train, splits.y_train, logits, splits.num_classes, policy_dir,
                                  student, config, repeats)
