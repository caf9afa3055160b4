"""Running a model given as an `nnx.split` graph definition plus its state: for inference (one
batch, or all of an array in fixed-size chunks: the one home of chunked prediction, for students
and teachers) and for training.

The two differ only for models with BatchNorm: inference reads the running statistics (PyTorch's
`model.eval()`), training normalises by the batch's own and returns the updated running
statistics (`model.train()`). Every other model computes the same thing in both."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def apply_model(graphdef, params, x):
    """Logits and features of the model `(graphdef, params)` on a batch x, in inference mode."""
    model = nnx.merge(graphdef, params)
    return nnx.view(model, use_running_average=True, raise_if_not_found=False)(x)


def train_forward(graphdef, params, x):
    """((logits, features), the state with its running statistics updated by this batch): the
    forward pass of a training step, in training mode. For a model without BatchNorm the state
    comes back as it went in."""
    # A copy: the training-mode call writes the new statistics into the model's variables, which
    # must not be the caller's.
    model = nnx.view(nnx.merge(graphdef, params, copy=True), use_running_average=False, raise_if_not_found=False)
    outputs = model(x)
    return outputs, nnx.state(model)


def predict(graphdef, params, x, batch_size: int):
    """Logits for all of x, computed in chunks of `batch_size` under `lax.map`: (N, C)."""
    n = x.shape[0]
    chunks = -(-n // batch_size)
    padded = jnp.concatenate([x, jnp.zeros((chunks * batch_size - n,) + x.shape[1:], x.dtype)])
    logits = jax.lax.map(lambda xb: apply_model(graphdef, params, xb)[0],
                         padded.reshape((chunks, batch_size) + x.shape[1:]))
    return logits.reshape((chunks * batch_size,) + logits.shape[2:])[:n]


__all__ = ["apply_model", "predict", "train_forward"]
