"""Running a model given as an `nnx.split` graph definition plus parameters: one batch, or all of
an array in fixed-size chunks (the one home of chunked prediction, for students and teachers)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def apply_model(graphdef, params, x):
    """Logits and features of the model `(graphdef, params)` on a batch x."""
    return nnx.merge(graphdef, params)(x)


def predict(graphdef, params, x, batch_size: int):
    """Logits for all of x, computed in chunks of `batch_size` under `lax.map`: (N, C)."""
    n = x.shape[0]
    chunks = -(-n // batch_size)
    padded = jnp.concatenate([x, jnp.zeros((chunks * batch_size - n,) + x.shape[1:], x.dtype)])
    logits = jax.lax.map(lambda xb: apply_model(graphdef, params, xb)[0],
                         padded.reshape((chunks, batch_size) + x.shape[1:]))
    return logits.reshape((chunks * batch_size,) + logits.shape[2:])[:n]


__all__ = ["apply_model", "predict"]
