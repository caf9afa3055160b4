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

from mtkd.agents.checkpoint import PolicyMeta, load_policy
from mtkd.agents.rl_strategy import check_policy_fits, make_rl_strategy
from mtkd.envs.observation import observation_size
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


def joint_selector_cost(splits, pool, seeds: int = 5, rounds: int = 10, budget_seconds: float = 60.0,
                        student: ModelSpec = ModelSpec("mlp", {"widths": [100, 100]}),
                        train: TrainConfig = TrainConfig(), config=None) -> dict[str, Any]:
    """What the joint selector (`mtkd.agents.joint`, the `rl` row) adds to a uniform-fusion run, per
    epoch of `seeds` vmapped students: its plain epoch (one decision per batch: table features, the
    policy, the fused target, the student step) against the uniform epoch of `fit`, and one credit
    round (K + 1 branches of `credit_horizon` of an epoch), timed in interleaved rounds. The
    amortised ratio adds one round per `rounds_every(K)` epochs, the schedule of a real run."""
    from mtkd.agents.joint import JOINT_AXES, init_joint_state, make_credit_round, make_joint_epoch, selector_env_config
    from mtkd.agents.selector_config import SelectorConfig
    from mtkd.envs.params import make_env_params
    from mtkd.distill.timed_epochs import seeds_epoch_runner

    config = config or SelectorConfig()
    logits = pool.logits(splits)
    decisions = splits.x_train.shape[0] // train.batch_size
    env_params = make_env_params(logits["train"], logits["val"], splits.x_train, splits.y_train, splits.x_val,
                                 splits.y_val, selector_env_config(student, train, config, decisions))
    seed_list = list(range(seeds))
    state = init_joint_state(env_params, config, seed_list, pool.val_accuracy)
    keys = jnp.stack([jax.random.key(s) for s in seed_list])
    plain = jax.jit(jax.vmap(make_joint_epoch(env_params, config), in_axes=(JOINT_AXES, 0, None),
                             out_axes=(JOINT_AXES, 0)))
    validated, unvalidated = jnp.bool_(True), jnp.bool_(False)
    credit = jax.jit(jax.vmap(make_credit_round(env_params, config), in_axes=(JOINT_AXES, 0, 0)))
    selection = plain(state, keys, validated)[1]["selection"]
    jax.block_until_ready(credit(state, keys, selection))

    def fold(i):
        return jax.vmap(lambda k: jax.random.fold_in(k, i))(keys)

    runners = {"uniform": seeds_epoch_runner(splits, logits["train"], seeds, student, config=train),
               "joint_epoch": lambda i: jax.block_until_ready(plain(state, fold(i), validated)),
               "joint_epoch_unvalidated": lambda i: jax.block_until_ready(plain(state, fold(i), unvalidated)),
               "credit_round": lambda i: jax.block_until_ready(credit(state, fold(i), selection))}
    timed = paired_ratios(runners, "uniform", min_rounds=rounds, budget_seconds=budget_seconds)
    every = config.rounds_every(len(pool))
    epoch_ratio = timed["ratios"]["joint_epoch"]
    unvalidated_ratio = timed["ratios"]["joint_epoch_unvalidated"]
    round_ratio = timed["ratios"]["credit_round"]
    # Of every `every` epochs, the one before a credit round ends with the environment's validation.
    typical = (unvalidated_ratio["median"] * (every - 1) + epoch_ratio["median"]) / every if every else \
        unvalidated_ratio["median"]
    amortised = typical + (round_ratio["median"] / every if every else 0.0)
    return {"seeds": seeds, "epoch_seconds_uniform": timed["seconds"]["uniform"],
            "epoch_seconds_joint": timed["seconds"]["joint_epoch"],
            "round_seconds_credit": timed["seconds"]["credit_round"],
            "epoch_seconds_joint_unvalidated": timed["seconds"]["joint_epoch_unvalidated"],
            "ratio_joint_epoch_uniform": typical,
            "ratio_joint_epoch_validated_uniform": epoch_ratio["median"],
            "ratio_joint_epoch_validated_uniform_summary": epoch_ratio,
            "ratio_joint_epoch_unvalidated_uniform": unvalidated_ratio["median"],
            "ratio_joint_epoch_unvalidated_uniform_summary": unvalidated_ratio,
            "ratio_credit_round_uniform": round_ratio["median"], "ratio_credit_round_uniform_summary": round_ratio,
            "rounds_every": every, "ratio_joint_amortised_uniform": amortised, "goal_ratio_joint_epoch_uniform": 1.05}


def population_cost(splits, pool, population: int = 16, seeds: int = 5, rounds: int = 5,
                    budget_seconds: float = 60.0) -> dict[str, Any]:
    """The population selector's epoch (`mtkd.agents.population`): `population` students vmapped, each
    with its own teacher mask (a masked uniform epoch costs what a uniform one does), against one
    student and against the `seeds` students of an ordinary row, in interleaved rounds. Gives
    students per second for each, and what the default `rl` row (generations x population
    students for the default horizon, then `seeds` reported students) costs against a uniform row
    of `seeds` students, from these epoch times."""
    import statistics

    from mtkd.agents.population_config import PopulationConfig
    from mtkd.distill.timed_epochs import seeds_epoch_runner
    from mtkd.timing import interleaved_rounds, ratio_summary

    logits = pool.logits(splits)["train"]
    cases = {"one": seeds_epoch_runner(splits, logits, 1), "row": seeds_epoch_runner(splits, logits, seeds),
             "population": seeds_epoch_runner(splits, logits, population)}
    times = interleaved_rounds(cases, min_rounds=rounds, max_rounds=rounds, budget_seconds=budget_seconds)
    seconds = {name: statistics.median(values) for name, values in times.items()}
    defaults = PopulationConfig()
    generations, share = defaults.generations, defaults.horizon_epochs(150) / 150  # of a run's epochs
    ratio = ratio_summary(times["population"], times["row"])
    report = {"population": population, "seeds": seeds, "generations": generations, "epoch_seconds": seconds,
              "students_per_second_one": 1.0 / seconds["one"],
              "students_per_second_population": population / seconds["population"],
              "vmap_speedup": (population / seconds["population"]) / (1.0 / seconds["one"]),
              "ratio_population_epoch_row_epoch": ratio["median"], "ratio_population_epoch_row_epoch_summary": ratio,
              # per epoch of the row: the generations' population epochs (for `share` of the epochs),
              # plus the reported row's own
              "predicted_ratio_rl_uniform": generations * share * ratio["median"] + 1.0}
    return report
