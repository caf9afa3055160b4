"""Multi-layer perceptron over flattened inputs."""

from __future__ import annotations

import math
from typing import Sequence

import jax
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.models.architectures import MODELS


@MODELS.register("mlp")
class MLP(nnx.Module):
    """ReLU MLP: flatten -> widths[0] -> ... -> widths[-1] -> num_classes.

    Returns `(logits (B, C), features)` with features `hidden_i` (B, widths[i]) and `embedding`
    (the last hidden layer).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, rngs: nnx.Rngs,
                 widths: Sequence[int] = (100, 100)):
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) <= 0:
            raise ConfigError(f"mlp widths must be positive and non-empty, got {widths}")
        sizes = (math.prod(input_shape),) + widths
        self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.head = nnx.Linear(widths[-1], num_classes, rngs=rngs)

    def __call__(self, x: jax.Array):
        h = x.reshape(x.shape[0], -1)
        features = {}
        for i, layer in enumerate(self.hidden):
            h = jax.nn.relu(layer(h))
            features[f"hidden_{i}"] = h
        features["embedding"] = h
        return self.head(h), features
