"""Trainable adapters r(.) that map a student feature to a teacher's feature shape (FitNets).

One adapter per teacher, trained with the student. It is a linear map on the last axis:
for (B, D) vectors an ordinary linear layer, for (B, *spatial, C) maps the same matrix at every
position, i.e. a 1x1 convolution. A 1x1 convolution maps channels only, so the spatial sizes of
the two maps must already agree.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mtkd.errors import ConfigError


def shape_text(shape) -> str:
    """A per-example shape as the batched shape it describes: (20, 8) -> '(B, 20, 8)'."""
    return "(" + ", ".join(["B", *map(str, shape)]) + ")"


def adapter_size(student_shape: tuple[int, ...], teacher_shape: tuple[int, ...], what: str) -> tuple[int, int]:
    """(in, out) sizes of the adapter from a student to a teacher feature (per-example shapes).

    ConfigError (starting with `what`, which should name both layers) when no linear or 1x1 map
    connects them: a vector and a map, or maps of different spatial sizes.
    """
    student_shape, teacher_shape = tuple(student_shape), tuple(teacher_shape)
    if not student_shape or not teacher_shape:
        raise ConfigError(f"{what}: features must have at least one axis besides the batch")
    if len(student_shape) != len(teacher_shape):
        raise ConfigError(f"{what}: cannot map a {shape_text(student_shape)} feature to a "
                          f"{shape_text(teacher_shape)} one; the adapter is linear per position, so both must be "
                          f"(B, D) vectors or maps with the same spatial size")
    if student_shape[:-1] != teacher_shape[:-1]:
        raise ConfigError(f"{what}: spatial sizes differ, student {shape_text(student_shape)} vs teacher "
                          f"{shape_text(teacher_shape)}; a 1x1 adapter maps channels only, pick layers of the "
                          f"same spatial size")
    return student_shape[-1], teacher_shape[-1]


def init_adapter(key: jax.Array, size_in: int, size_out: int) -> dict[str, jax.Array]:
    """{'kernel': (in, out) LeCun-normal, 'bias': (out,) zeros}, the init of `nnx.Linear`."""
    kernel = jax.random.normal(key, (size_in, size_out), jnp.float32) / math.sqrt(size_in)
    return {"kernel": kernel, "bias": jnp.zeros((size_out,), jnp.float32)}


def apply_adapter(params, features: jax.Array) -> jax.Array:
    """(B, ..., in) -> (B, ..., out): the same linear map at every position."""
    return features @ params["kernel"] + params["bias"]


__all__ = ["adapter_size", "apply_adapter", "init_adapter", "shape_text"]
