"""Optimizers by name, and the learning-rate schedule of a training run."""

from __future__ import annotations

from typing import Sequence

import optax

from mtkd.registry import Registry

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.add("adam", lambda lr, wd: optax.adam(lr) if wd == 0 else optax.adamw(lr, weight_decay=wd))
OPTIMIZERS.add("adamw", lambda lr, wd: optax.adamw(lr, weight_decay=wd))
# PyTorch's SGD with weight decay and momentum: the decay is added to the gradient before the
# momentum buffer (buffer = 0.9 buffer + grad + wd * w; w -= lr * buffer).
OPTIMIZERS.add("sgd", lambda lr, wd: optax.chain(optax.add_decayed_weights(wd), optax.sgd(lr, momentum=0.9)))
# Without momentum: each step is the gradient times the learning rate, no lag and no memory
# (the joint selector's default: its steps should follow the evidence of each credit round).
OPTIMIZERS.add("plain_sgd", lambda lr, wd: optax.chain(optax.add_decayed_weights(wd), optax.sgd(lr)))


def make_optimizer(name: str, learning_rate, weight_decay: float = 0.0) -> optax.GradientTransformation:
    """`learning_rate` is a number or an optax schedule (of the update count)."""
    return OPTIMIZERS.get(name)(learning_rate, weight_decay)


def milestone_schedule(learning_rate: float, milestones: Sequence[int], decay: float, steps_per_epoch: int):
    """PyTorch's MultiStepLR stepped once per epoch: the rate times `decay` from the first update
    of each epoch in `milestones` (0-based epoch counts: 150 means after 150 epochs). A constant
    rate without milestones."""
    if not milestones:
        return learning_rate
    return optax.piecewise_constant_schedule(learning_rate, {int(m) * steps_per_epoch: decay for m in milestones})


def training_optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optimizer a `TrainConfig` names, with its learning-rate schedule."""
    schedule = milestone_schedule(config.learning_rate, config.milestones(), config.lr_decay, steps_per_epoch)
    return make_optimizer(config.optimizer, schedule, config.weight_decay)
