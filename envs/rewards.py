"""Rewards of the teacher-selection environment, by name.

Validation means the split carved from train (`x_val`), never the test split. A reward that
needs validation gets the student's validation loss and accuracy at the last evaluation before
this decision and, where `evaluated`, right after it; evaluations happen every `eval_every`
decisions and always at the last one, so the gain rewards of an episode add up to the change
from the first evaluation (at reset) to the last.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from mtkd.registry import Registry


class RewardInput(NamedTuple):
    """Scalars of one decision: the validation numbers before (`previous_*`, at the last
    evaluation) and after (`val_*`, equal to the previous ones unless `evaluated`), whether
    this is the last decision, and the mean distillation loss of its student updates."""

    previous_val_loss: jax.Array
    previous_val_accuracy: jax.Array
    val_loss: jax.Array
    val_accuracy: jax.Array
    evaluated: jax.Array
    done: jax.Array
    train_loss: jax.Array


@dataclasses.dataclass(frozen=True)
class Reward:
    """`compute(RewardInput) -> scalar`. `needs_validation`: the environment evaluates the
    student on validation for it; `terminal_only`: only at the last decision; `calibrated`: the
    validation loss it reads is the temperature-calibrated one
    (`mtkd.distill.objective.calibrated_cross_entropy`), not the plain cross-entropy."""

    name: str
    compute: Callable[[RewardInput], jax.Array]
    needs_validation: bool = True
    terminal_only: bool = False
    calibrated: bool = False


REWARDS: Registry[Reward] = Registry("reward")


def _register(reward: Reward) -> None:
    REWARDS.add(reward.name, reward)


_register(Reward(
    "val_loss_gain",
    lambda r: jnp.where(r.evaluated, r.previous_val_loss - r.val_loss, 0.0),
))
# The joint selector's default (docs/methods.md, The selector's reward): the drop of the validation
# loss at the best temperature. Plain validation loss rewards whatever makes the student less
# confident (soft teachers, measured); 0/1 accuracy on a few hundred examples is too coarse to
# see one teacher's effect in an epoch. Calibrated, the loss keeps accuracy's ranking of teachers
# and the loss's resolution.
_register(Reward(
    "val_calibrated_loss_gain",
    lambda r: jnp.where(r.evaluated, r.previous_val_loss - r.val_loss, 0.0),
    calibrated=True,
))
_register(Reward(
    "val_acc_gain",
    lambda r: jnp.where(r.evaluated, r.val_accuracy - r.previous_val_accuracy, 0.0),
))
_register(Reward(
    "terminal_val_acc",
    lambda r: jnp.where(r.done, r.val_accuracy, 0.0),
    terminal_only=True,
))
# MTKD-RL's reward is minus the (per-sample, z-scored) weighted loss; here it is minus the mean
# distillation loss of the decision's updates, unnormalised.
_register(Reward(
    "neg_train_loss",
    lambda r: -r.train_loss,
    needs_validation=False,
))
