"""A model's state in two parts: the parameters the optimiser moves (`nnx.Param`) and everything
else it carries (BatchNorm's running statistics, `nnx.BatchStat`), which the forward pass in
training mode updates instead.

For a model without running statistics the second part is empty and the first is the whole state,
with the same tree structure, so an optimiser state built over either is the same."""

from __future__ import annotations

import jax
from flax import nnx


def split_trainable(state):
    """(parameters, the rest) of an `nnx.split` state; works on states stacked over seeds."""
    return nnx.split_state(state, nnx.Param, ...)


def join_trainable(params, rest):
    """The inverse of `split_trainable`."""
    return nnx.merge_state(params, rest)


def trainable(state):
    """The optimiser's part of a state (what `optimizer.init` and `optimizer.update` see)."""
    return split_trainable(state)[0]


def has_running_stats(state) -> bool:
    """Whether a model's state holds anything besides parameters (BatchNorm's running statistics)."""
    return bool(jax.tree.leaves(split_trainable(state)[1]))


__all__ = ["split_trainable", "join_trainable", "trainable", "has_running_stats"]
