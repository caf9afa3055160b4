"""The joint selector: the final student is trained alongside its selector, in one run.

Every epoch the student takes one epoch of decisions in the selection environment
(`mtkd.envs.run_decisions`), each batch's teacher weights chosen by the policy (expected weights by
default). Every `credit_every` epochs a credit round (`mtkd.agents.credit`) branches from the epoch's
starting state: a reference branch with the policy as it is and one branch per teacher with that
teacher's weight moved to the far end of [0, 1], all on the same batches (an order drawn from the selector's
own key, so selector seeds differ). The return differences (the drop of the temperature-calibrated
validation loss, by default) are each teacher's counterfactual credit at this point of training;
divided by their noise and soft-thresholded, they move the policy one natural-gradient step. So
the policy is trained on exactly the states the final student goes through (`progress` is the
fraction of this run in training and in use), credit is per teacher, and the student that is
reported is the one trained beside the agent. Seeds are vmapped: student seed i has its own
selector (seed `agent_seed + i`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtkd.agents.bernoulli import ACTION_MODES
from mtkd.agents.credit import (evidence, far_ends, natural_gradient_loss, set_teacher, signed_gains, update_noise,
                           update_statistics)
from mtkd.agents.policies import make_policy, policy_rows, teacher_rows
from mtkd.agents.selector_config import SelectorConfig, start_logits
from mtkd.envs.config import EnvConfig
from mtkd.envs.core import EnvState, decision_batches, start_state, validation_metrics
from mtkd.envs.observation import observation_size
from mtkd.envs.rewards import REWARDS, RewardInput
from mtkd.envs.params import EnvParams, make_env_params, student_graphdef
from mtkd.envs.rollout import STATE_AXES, run_decisions
from mtkd.devices import seed_placement, take_seeds
from mtkd.distributed import to_host
from mtkd.distill.config import TrainConfig
from mtkd.optimizers import make_optimizer
from mtkd.distill.seed_loop import run_epochs
from mtkd.distill.fit import init_students
from mtkd.distill.steps import evaluate
from mtkd.models import ModelSpec


class AgentState(NamedTuple):
    """The selector of one seed: policy parameters, optimizer state, credit rounds done, the
    estimated noise variance of a gain and the last round's gains (`mtkd.agents.credit.update_noise`),
    and the key its credit rounds draw their batch orders from."""

    params: Any
    opt_state: Any
    rounds: jax.Array
    noise: jax.Array
    previous: jax.Array
    key: jax.Array


class JointState(NamedTuple):
    env: EnvState
    agent: AgentState


JOINT_AXES = JointState(env=STATE_AXES, agent=0)  # the environment's clock is shared by all seeds


@dataclasses.dataclass
class JointResult:
    """Per seed: chosen epoch (1-based), its validation accuracy, the test accuracy of its
    parameters; `history` per epoch (as `run_epochs`); `rounds`: one record per credit round;
    `policy_params`: the final policies, stacked over seeds."""

    seeds: list[int]
    best_epoch: list[int]
    val_accuracy: list[float]
    test_accuracy: list[float] | None
    history: list[dict]
    rounds: list[dict]
    policy_params: Any
    seconds: float


def selector_env_config(student: ModelSpec, train: TrainConfig, config: SelectorConfig,
                        decisions_per_epoch: int) -> EnvConfig:
    """The environment of a whole training run: `train.epochs` epochs, validated once per epoch."""
    return EnvConfig(student=student, train=train, reward=config.reward, eval_every=decisions_per_epoch,
                     per_example=config.per_example)


def initial_logits(config: SelectorConfig, teacher_val_accuracy: Sequence[float], num_classes: int) -> np.ndarray:
    return start_logits(config.init, teacher_val_accuracy, num_classes).astype(np.float32)


NEVER = 2**30  # an `eval_every` no branch reaches: branches are evaluated once, at their end


def stretch_return(start: EnvState, end: EnvState, trajectory, env_params: EnvParams) -> jax.Array:
    """The environment's reward for a whole stretch of decisions, from `start` to `end`, as if it
    were one decision evaluated at its end (the gains of the validation rewards add up to exactly
    this over an evaluated stretch)."""
    reward = REWARDS.get(env_params.config.reward)
    if reward.needs_validation:
        val_loss, val_accuracy = validation_metrics(end.student.params, env_params)
    else:
        val_loss, val_accuracy = start.val_loss, start.val_accuracy
    return reward.compute(RewardInput(start.val_loss, start.val_accuracy, val_loss, val_accuracy, jnp.bool_(True),
                                      jnp.bool_(False), trajectory.info["train_loss"].mean()))


def _selector(policy, mode, per_example: bool, params, teacher=None, value=None):
    """`select(key, obs) -> weights` of the policy `params`; with `teacher`, that teacher's weight
    set to `value` on every decision (a credit branch; `teacher` = K leaves every weight as it is)."""
    def select(key, obs):
        weights = mode(key, policy.apply(params, policy_rows(obs, per_example)))
        return weights if teacher is None else set_teacher(weights, teacher, value)
    return select


def without_validation(env_params: EnvParams) -> EnvParams:
    """The environment with validation only at a run's very end: for epochs whose validation
    nothing reads (see `needs_validation`) and for credit branches (evaluated once, at their end)."""
    return env_params.replace(config=env_params.config.replace(eval_every=NEVER))


def needs_validation(epoch: int, epochs: int, every: int) -> bool:
    """Whether epoch `epoch` must end with the environment's validation: its values are read only
    as the start of a credit round's rewards (`stretch_return`), and a round at epoch e starts from
    the end of epoch e - 1. The epoch loop's own validation, which chooses the best epoch, is
    separate (`run_epochs`). Skipping it elsewhere changes nothing that is computed."""
    return bool(every) and epoch % every == 0 and epoch + 1 < epochs


def make_joint_epoch(env_params: EnvParams, config: SelectorConfig):
    """`epoch(state: JointState, key, validate) -> (state, metrics)` for one seed (vmap it over
    seeds with `JOINT_AXES`, `validate` shared): one epoch of decisions under the selector as it is,
    ending with the environment's validation where `validate` (a traced bool; `needs_validation`),
    one compiled program either way."""
    policy = make_policy(config.policy_arch, config.policy_options)
    mode = ACTION_MODES.get(config.apply)
    per_example = env_params.config.per_example
    quiet = without_validation(env_params)  # the decisions themselves never validate (but a run's last)

    def epoch(state: JointState, key, validate):
        # This epoch's batch order is drawn from `key` exactly as `fit` draws it (`scan_batches`),
        # so seed s sees the same batches as under every other strategy: rows differ by selection.
        order_key, _ = jax.random.split(key)
        start, agent = state.env.replace(batches=decision_batches(order_key, env_params)), state.agent
        select = _selector(policy, mode, per_example, agent.params)
        # Each epoch's order is set here, so the decisions never draw one (`new_orders`).
        after, trajectory = run_decisions(key, start, quiet, select, env_params.decisions_per_epoch,
                                          new_orders=False)
        val_loss, val_accuracy = jax.lax.cond(validate, lambda: validation_metrics(after.student.params, env_params),
                                              lambda: (after.val_loss, after.val_accuracy))
        after = after.replace(val_loss=val_loss, val_accuracy=val_accuracy)
        probability = jax.nn.sigmoid(policy.apply(agent.params, policy_rows(trajectory.obs, per_example)))
        metrics = {"loss": trajectory.info["train_loss"].mean(),
                   "selection": trajectory.info["selection"].mean(axis=0),
                   "probability": probability.mean(axis=tuple(range(probability.ndim - 1)))}
        return JointState(after, agent), metrics

    return epoch


def make_credit_round(env_params: EnvParams, config: SelectorConfig):
    """`credit_round(state: JointState, key, selection (K,)) -> (agent, metrics)` for one seed
    (vmap it over seeds): from the epoch's starting state, K + 1 branches of `credit_horizon`
    epochs side by side (one vmapped program): branch k with teacher k's weight at its far end
    (from `selection`, the mean weights of the epoch run from the same state), branch K the
    reference (the policy as it is); then one policy step from the signed gains. The policy's
    feature statistics follow the reference branch's observations. `metrics` holds `credit`
    (the gains) and `evidence` (the step)."""
    policy = make_policy(config.policy_arch, config.policy_options)
    optimizer = make_optimizer(config.policy_optimizer, config.policy_learning_rate)
    mode = ACTION_MODES.get(config.apply)
    per_example = env_params.config.per_example
    num_teachers = env_params.num_teachers
    # Branches run `horizon` decisions and are evaluated once, at their end.
    horizon = max(1, int(round(config.credit_horizon * env_params.decisions_per_epoch)))
    branch_params = without_validation(env_params)

    def update(agent: AgentState, obs, gains):
        rows = policy_rows(obs, per_example)
        params = agent.params
        if "mean" in params:  # a policy with running feature statistics (teacher_logistic)
            mean, scale = update_statistics(params["mean"], params["scale"], teacher_rows(rows, num_teachers),
                                            agent.rounds, config.norm_decay)
            params = {**params, "mean": mean, "scale": scale}
        noise = update_noise(agent.noise, agent.previous, gains, agent.rounds, config.norm_decay)
        step = evidence(gains, noise, config.evidence_threshold, config.evidence_cap)
        grads = jax.grad(lambda p: natural_gradient_loss(policy.apply(p, rows), step))(params)
        updates, opt_state = optimizer.update(grads, agent.opt_state, params)
        return AgentState(optax.apply_updates(params, updates), opt_state, agent.rounds + 1, noise, gains,
                          agent.key), step

    def credit_round(state: JointState, key, selection):
        agent = state.agent
        # The branches replay half an epoch from the epoch's start on an order of the selector's
        # own, so what a selector seed measures is its own draw (selector seeds differ).
        start = state.env.replace(batches=decision_batches(jax.random.fold_in(agent.key, agent.rounds), env_params))
        ends = jnp.append(far_ends(selection), 0.0)  # branch K, the reference, overrides nothing

        def branch(teacher):
            select = _selector(policy, mode, per_example, agent.params, teacher, ends[teacher])
            end, trajectory = run_decisions(key, start, branch_params, select, horizon, new_orders=False)
            return stretch_return(start, end, trajectory, env_params), trajectory.obs

        returns, observations = jax.vmap(branch)(jnp.arange(num_teachers + 1))
        gains = signed_gains(returns[:num_teachers], returns[num_teachers], ends[:num_teachers])
        agent, step = update(agent, observations[num_teachers], gains)
        return agent, {"credit": gains, "evidence": step}

    return credit_round


def init_joint_state(env_params: EnvParams, config: SelectorConfig, seeds: Sequence[int],
                     teacher_val_accuracy: Sequence[float]) -> JointState:
    """Fresh students (one per seed, drawn from the seed) and their selectors, stacked over seeds."""
    policy = make_policy(config.policy_arch, config.policy_options)
    optimizer = make_optimizer(config.policy_optimizer, config.policy_learning_rate)
    bias = jnp.asarray(initial_logits(config, teacher_val_accuracy, env_params.num_classes))
    size = observation_size(env_params.num_teachers, config.per_example)

    def agent_for(seed):
        key = jax.random.key(config.agent_seed + seed)
        params = policy.init(key, size, env_params.num_teachers)
        params = {**params, "b": bias} if "b" in params else params
        return AgentState(params, optimizer.init(params), jnp.int32(0), jnp.float32(1.0),
                          jnp.zeros((env_params.num_teachers,), jnp.float32), jax.random.fold_in(key, 1))

    agents = [agent_for(int(s)) for s in seeds]
    agent = jax.tree.map(lambda *leaves: jnp.stack(leaves), *agents)
    keys = jnp.stack([jax.random.fold_in(jax.random.key(int(s)), 2) for s in seeds])
    # The same initial student as `fit` draws for each seed (paired comparisons across rows).
    _, students = init_students(env_params.config.student_spec, env_params.input_shape, env_params.num_classes,
                                [int(s) for s in seeds])
    env_state = jax.jit(jax.vmap(start_state, in_axes=(0, 0, None), out_axes=STATE_AXES))(keys, students, env_params)
    return JointState(env_state, agent)


def train_jointly(logits: dict, splits, teacher_val_accuracy: Sequence[float], student: ModelSpec,
                  train: TrainConfig, config: SelectorConfig, seeds: Sequence[int],
                  metrics_path: str | Path | None = None, on_epoch: Callable[[dict], None] | None = None,
                  test: bool = True, checkpoints=None, devices: int | None = None) -> JointResult:
    """Trains one student per seed beside its selector for `train.epochs` epochs; the epoch of
    each seed is chosen on validation and its test accuracy computed once at the end.
    `logits`: the pool's cached logits {"train", "val"} (K, N, C). `checkpoints` makes the run
    resumable (`mtkd.distill.seed_loop.run_epochs`); the credit rounds' records travel with them.
    The seeds are split over up to `devices` local devices (default: all; `mtkd.devices`)."""
    started = time.perf_counter()
    seeds = [int(s) for s in seeds]
    decisions = (splits.x_train.shape[0] // train.batch_size)
    env_config = selector_env_config(student, train, config, max(1, decisions))
    env_params = make_env_params(logits["train"], logits["val"], splits.x_train, splits.y_train, splits.x_val,
                                 splits.y_val, env_config)
    placement = seed_placement(len(seeds), devices)
    asked, seeds = seeds, placement.pad(seeds)  # padded to fill the devices; dropped from every result
    state = init_joint_state(env_params, config, seeds, teacher_val_accuracy)
    # Seeds over local devices; the environment's clock, shared by all seeds, on every device.
    state = placement.place_axes(state, JOINT_AXES)

    every = config.rounds_every(env_params.num_teachers)
    plain_epoch = jax.jit(jax.vmap(make_joint_epoch(env_params, config), in_axes=(JOINT_AXES, 0, None),
                                   out_axes=(JOINT_AXES, 0)))
    credit_round = jax.jit(jax.vmap(make_credit_round(env_params, config), in_axes=(JOINT_AXES, 0, 0)))
    rounds: list[dict] = []
    if checkpoints is not None:
        checkpoints.attach("rounds", lambda: rounds, lambda saved: rounds.extend(saved))
    latest = {"state": state}

    def run_epoch(state, keys, progress):
        epoch = int(round(float(progress) * train.epochs)) + 1  # progress = (epoch - 1) / epochs
        # A round at the first epoch and every `credit_every` after it, never at the last (it would
        # train a policy that nothing uses). The epoch runs under the selector as it was at its
        # start; the round branches from the same start and gives the selector of the next epoch.
        is_round = bool(every) and (epoch - 1) % every == 0 and epoch < train.epochs
        after, metrics = plain_epoch(state, keys, jnp.bool_(needs_validation(epoch, train.epochs, every)))
        if is_round:
            agent, credit = credit_round(state, keys, metrics["selection"])
            after = JointState(after.env, agent)
            gains, step = (np.asarray(to_host(credit[name]))[:len(asked)] for name in ("credit", "evidence"))
            probability = np.asarray(to_host(metrics["probability"]))[:len(asked)]
            rounds.append({"epoch": epoch, "credit": gains.round(6).tolist(), "evidence": step.round(4).tolist(),
                           "probability": probability.round(6).tolist()})
        latest["state"] = after  # the selectors after the last epoch, for the saved policy
        return after, metrics

    graphdef = student_graphdef(env_params)
    run_eval = jax.jit(jax.vmap(lambda p, x, y: evaluate(graphdef, p, x, y, train.eval_batch_size),
                                in_axes=(0, None, None)))
    x_val, y_val = jnp.asarray(splits.x_val), jnp.asarray(splits.y_val)

    def validate(params):
        accuracy, loss = run_eval(params, x_val, y_val)
        return {"val_accuracy": accuracy, "val_loss": loss}

    loop = run_epochs(state, run_epoch, validate, lambda state: state.env.student.params, train.epochs, seeds,
                      on_epoch, metrics_path, checkpoints, keep=len(asked))
    test_accuracy = None
    if test:
        test_accuracy = to_host(run_eval(loop.best_params, jnp.asarray(splits.x_test),
                                         jnp.asarray(splits.y_test))[0]).tolist()
    return JointResult(asked, loop.best_epoch, loop.val_accuracy, test_accuracy, loop.history, rounds,
                       to_host(take_seeds(latest["state"].agent.params, len(asked))), round(time.perf_counter() - started, 2))


def write_rounds(path: str | Path, rounds: list[dict], teacher_names: Sequence[str]) -> None:
    """`selector.jsonl`: one line per credit round: its epoch, each seed's counterfactual gain per
    teacher (dR/dw_k), the step it gave (`evidence`, in noise units beyond the threshold) and each
    seed's mean selection probability per teacher during that epoch."""
    lines = [json.dumps({"epoch": r["epoch"], "teachers": list(teacher_names), "credit": r["credit"],
                         "evidence": r.get("evidence"), "probability": r["probability"]}) for r in rounds]
    Path(path).write_text("".join(line + "\n" for line in lines))


__all__ = ["AgentState", "JointResult", "JointState", "init_joint_state", "make_credit_round", "make_joint_epoch",
           "train_jointly",
           "write_rounds", "selector_env_config", "initial_logits"]
