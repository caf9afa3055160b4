"""MTKD-RL (Yang et al., AAAI 2025): an agent's softmax weights, mixed with fixed rules, learned
from a clipped, batch-normalised reward once per epoch.

As the authors' code has it, at the logit level:
- state per example: for every teacher k, `[cos(z_s, z_k), KL_ik, CE_ik, z_k]` (C + 3 numbers),
  concatenated over teachers and detached;
- agent: `Linear(K (C + 3) -> 128, no bias) -> ReLU -> Linear(128 -> K) -> softmax` over teachers;
- weights: the agent's, the CA-MKD form `(1 - softmax_k(CE_ik)) / (K - 1)` and `softmax_k(KL_ik)`,
  mixed equally, or with a learned softmax mix (`mtkd_rl:dynamic`, initialised equal); all ones
  in the first epoch;
- reward `r_i = -(CE_i + sum_k w_ik KL_ik)` of the student on the batch, z-scored over the batch
  (unbiased std), clipped to [0, 1];
- at the epoch's end, one SGD step (lr 0.1) per stored batch on the reward-weighted BCE of the
  mixed weights toward 1, `mean_ik -r_i log w_ik`: not a policy gradient.
mtkd's students distil from fused logits only, so two parts of the authors' agent have no
counterpart here and are left out: the teacher embedding in the state (the cosine is taken
between student and teacher logits instead of adapted embeddings) and the feature-weight head.
`KL_ik` and `CE_ik` use T = 4 and T = 1 as in the paper, whatever the run's temperature.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.fusion.strategies import STRATEGIES, FusionStrategy, StrategyContext, StrategyInput, StrategyShapes
from mtkd.fusion.teacher_stats import ca_mkd_weights, teacher_cross_entropy, teacher_student_kl

HIDDEN = 128
AGENT_LEARNING_RATE = 0.1


class Agent(nnx.Module):
    """The agent network: a bias-free stem, ReLU, one softmax head over teachers, and the mix."""

    def __init__(self, state_size: int, num_teachers: int, rngs: nnx.Rngs):
        self.stem = nnx.Linear(state_size, HIDDEN, use_bias=False, rngs=rngs)
        self.head = nnx.Linear(HIDDEN, num_teachers, rngs=rngs)
        self.mix = nnx.Param(jnp.ones((3,)))  # logits of the three sources' shares (`dynamic` only)

    def __call__(self, state):
        return jax.nn.softmax(self.head(jax.nn.relu(self.stem(state))), axis=-1)


class MtkdRlState(NamedTuple):
    agent: Any  # the agent's parameters (an nnx.State)
    states: jax.Array  # (num_batches, B, K (C + 3)): this epoch's agent inputs
    rewards: jax.Array  # (num_batches, B)


def agent_inputs(teacher_logits, student_logits, labels):
    """(B, K (C + 3)) detached state and the (B, K) CE and KL it holds."""
    teacher_logits = jax.lax.stop_gradient(teacher_logits)
    student_logits = jax.lax.stop_gradient(student_logits)
    ce = teacher_cross_entropy(teacher_logits, labels)
    kl = teacher_student_kl(teacher_logits, student_logits)
    cosine = optax.cosine_similarity(student_logits[None], teacher_logits).T  # (B, K)
    blocks = jnp.concatenate([cosine[..., None], kl[..., None], ce[..., None],
                              jnp.swapaxes(teacher_logits, 0, 1)], axis=-1)  # (B, K, C + 3)
    return blocks.reshape(blocks.shape[0], -1), ce, kl


def mixed_weights(agent_weights, ce, kl, mix_logits, dynamic: bool):
    """The final weights: the agent's, the CA-MKD form and softmax_k(KL), equally or by the mix."""
    share = jax.nn.softmax(mix_logits) if dynamic else jnp.full((3,), 1.0 / 3.0)
    return share[0] * agent_weights + share[1] * ca_mkd_weights(ce) + share[2] * jax.nn.softmax(kl, axis=-1)


def clipped_reward(loss):
    """`-loss` z-scored over the batch (unbiased std, as torch's) and clipped to [0, 1]."""
    reward = -loss
    std = jnp.std(reward, ddof=1)
    return jnp.clip((reward - reward.mean()) / jnp.where(std > 0, std, 1.0), 0.0, 1.0)


@functools.lru_cache(maxsize=None)
def agent_graphdef(state_size: int, num_teachers: int):
    return nnx.split(nnx.eval_shape(lambda: Agent(state_size, num_teachers, nnx.Rngs(0))))[0]


def agent_weights(agent_params, inputs, dynamic: bool):
    """The mixed (B, K) weights of the agent `agent_params` on the stored state `inputs`; the CE
    and KL are read back from the state (teacher k's block is `[cos, KL, CE, z_k]`)."""
    num_teachers = agent_params["head"]["bias"][...].shape[0]
    blocks = inputs.reshape(inputs.shape[0], num_teachers, -1)
    agent = nnx.merge(agent_graphdef(inputs.shape[-1], num_teachers), agent_params)
    return mixed_weights(agent(inputs), blocks[..., 2], blocks[..., 1], agent_params["mix"][...], dynamic)


def make_mtkd_rl(dynamic: bool, name: str) -> FusionStrategy:
    def init_state(key, shapes: StrategyShapes) -> MtkdRlState:
        size = shapes.num_teachers * (shapes.num_classes + 3)
        agent = nnx.split(Agent(size, shapes.num_teachers, nnx.Rngs(params=key)))[1]
        return MtkdRlState(agent, jnp.zeros((shapes.num_batches, shapes.batch_size, size), jnp.float32),
                           jnp.zeros((shapes.num_batches, shapes.batch_size), jnp.float32))

    def stateful_weights(state: MtkdRlState, batch: StrategyInput):
        inputs, _, kl = agent_inputs(batch.teacher_logits, batch.student_logits, batch.labels)
        learned = agent_weights(state.agent, inputs, dynamic)
        weights = jnp.where(batch.progress == 0, jnp.ones_like(learned), learned)  # the first epoch: all ones
        student_ce = optax.softmax_cross_entropy_with_integer_labels(batch.student_logits, batch.labels)
        reward = clipped_reward(student_ce + jnp.sum(weights * kl, axis=-1))
        state = state._replace(states=state.states.at[batch.step].set(inputs),
                               rewards=state.rewards.at[batch.step].set(reward))
        return weights, state

    def agent_loss(agent_params, inputs, reward):
        """Reward-weighted BCE of every mixed weight toward 1."""
        weights = agent_weights(agent_params, inputs, dynamic)
        return jnp.mean(-reward[:, None] * jnp.log(jnp.maximum(weights, 1e-12)))

    def end_epoch(state: MtkdRlState) -> MtkdRlState:
        def sgd_step(agent_params, batch):
            grads = jax.grad(agent_loss)(agent_params, *batch)
            return jax.tree.map(lambda p, g: p - AGENT_LEARNING_RATE * g, agent_params, grads), None

        agent, _ = jax.lax.scan(sgd_step, state.agent, (state.states, state.rewards))
        return state._replace(agent=agent)

    return FusionStrategy(name, None, needs_student=True, init_state=init_state,
                          stateful_weights=stateful_weights, end_epoch=end_epoch)


@STRATEGIES.register("mtkd_rl")
def mtkd_rl_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """MTKD-RL's agent: `mtkd_rl` mixes its weights equally with the CA-MKD form and softmax(KL);
    `mtkd_rl:dynamic` learns the mix."""
    if argument not in (None, "dynamic"):
        raise ConfigError(f"mtkd_rl:{argument}: the only option is mtkd_rl:dynamic (a learned mix)")
    return make_mtkd_rl(argument == "dynamic", "mtkd_rl" if argument is None else f"mtkd_rl:{argument}")
