"""Optimizers by name."""

from __future__ import annotations

import optax

from mtkd.registry import Registry

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.add("adam", lambda lr, wd: optax.adam(lr) if wd == 0 else optax.adamw(lr, weight_decay=wd))
OPTIMIZERS.add("adamw", lambda lr, wd: optax.adamw(lr, weight_decay=wd))
OPTIMIZERS.add("sgd", lambda lr, wd: optax.chain(optax.add_decayed_weights(wd), optax.sgd(lr, momentum=0.9)))
# Without momentum: each step is the gradient times the learning rate, no lag and no memory
# (the joint selector's default: its steps should follow the evidence of each credit round).
OPTIMIZERS.add("plain_sgd", lambda lr, wd: optax.chain(optax.add_decayed_weights(wd), optax.sgd(lr)))


def make_optimizer(name: str, learning_rate: float, weight_decay: float = 0.0) -> optax.GradientTransformation:
    return OPTIMIZERS.get(name)(learning_rate, weight_decay)
