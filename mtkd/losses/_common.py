"""Shared argument checks and numerically safe helpers for the loss functions.

Checks run only on concrete (non-traced) values: under `jax.jit` a hyper-parameter passed as a
traced array cannot be inspected, so it is taken as given. Python floats/strings passed as
static arguments are always checked.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mtkd.errors import ConfigError


def concrete_float(value) -> float | None:
    """`value` as a python float, or None when it is traced (inside jit/grad/vmap)."""
    if isinstance(value, jax.core.Tracer):
        return None
    return float(value)


def is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_temperature(temperature) -> None:
    t = concrete_float(temperature)
    if t is not None and not (t > 0 and math.isfinite(t)):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")


def check_nonnegative(name: str, value) -> None:
    v = concrete_float(value)
    if v is not None and not (v >= 0 and math.isfinite(v)):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")


def check_positive(name: str, value) -> None:
    v = concrete_float(value)
    if v is not None and not (v > 0 and math.isfinite(v)):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")


def check_same_shape(what: str, student, teacher) -> None:
    if tuple(student.shape) != tuple(teacher.shape):
        raise ConfigError(
            f"{what}: student shape {tuple(student.shape)} does not match "
            f"teacher shape {tuple(teacher.shape)}"
        )


def check_logits(student_logits, teacher_logits) -> None:
    if student_logits.ndim != 2:
        raise ConfigError(f"logits must have shape (B, C), got {tuple(student_logits.shape)}")
    check_same_shape("logits", student_logits, teacher_logits)


def as_embeddings(student, teacher, min_batch: int, what: str):
    """Flattens (B, ...) features to (B, D); batch sizes must agree, D may differ."""
    if student.ndim < 2 or teacher.ndim < 2:
        raise ConfigError(
            f"{what}: embeddings must have shape (B, D) or (B, ...), got student "
            f"{tuple(student.shape)} and teacher {tuple(teacher.shape)}"
        )
    if student.shape[0] != teacher.shape[0]:
        raise ConfigError(
            f"{what}: batch sizes differ: student {tuple(student.shape)}, "
            f"teacher {tuple(teacher.shape)}"
        )
    if student.shape[0] < min_batch:
        raise ConfigError(f"{what} needs a batch of at least {min_batch}, got {student.shape[0]}")
    return student.reshape(student.shape[0], -1), teacher.reshape(teacher.shape[0], -1)


def safe_pow_of_sq(sq, power: float):
    """`sq ** power` for sq >= 0, with value 0 and a zero (not NaN) gradient where sq == 0.

    The double `where` keeps the untaken branch finite, so its gradient does not poison the
    result (jnp.where differentiates both branches). `power = 0.5` gives a safe norm.
    """
    positive = sq > 0
    safe = jnp.where(positive, sq, 1.0)
    return jnp.where(positive, safe**power, 0.0)


def pairwise_sq_distances(x):
    """(B, D) -> (B, B) squared Euclidean distances, from explicit differences.

    Differences rather than the Gram-matrix identity keep the diagonal exactly 0 (the Gram
    form can go slightly negative, which breaks the safe square root).
    """
    diff = x[:, None, :] - x[None, :, :]
    return jnp.sum(diff * diff, axis=-1)
