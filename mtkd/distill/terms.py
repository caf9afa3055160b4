"""The loss terms a composite loss can list, each a thin per-teacher view of a `mtkd.losses` function.

A term kind says what it reads (labels only, logits, or named features), which options it
accepts (with defaults), and how to compute its value for one teacher:

- per-example kinds return (B,) values, so per-example teacher weights can mix them;
- relational kinds (RKD, DarkRank) compare examples with each other and return one scalar per
  batch; they are mixed with the teachers' batch-mean weights.

The formulas live in `mtkd.losses`; per-example values of the batch-averaged zoo losses come from
running the zoo function on batches of one example under `jax.vmap`, so there is one formula.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from mtkd.distill.objective import cross_entropy, soft_target_kl
from mtkd.errors import ConfigError
from mtkd.fusion.soft_targets import fuse_soft_targets
from mtkd.losses import (attention_transfer, darkrank, dist, hint, kd_per_example, nckd, rkd_angle, rkd_distance,
                         tckd)
from mtkd.registry import Registry

SOURCES = ("labels", "logits", "features")


@dataclasses.dataclass(frozen=True)
class TermKind:
    """How one loss name enters a composite loss.

    value(student, teacher, labels, options): student/teacher are logits (B, C) or features
    (B, ...) of one teacher (teacher is None for `labels` kinds); returns (B,) per-example values,
    or a scalar when `relational`. `options` maps each accepted option to its default (REQUIRED
    marks options without one); `check(options)` raises ConfigError for bad values.
    `adapter`: the student feature passes through a trainable per-teacher adapter first (option
    "adapter": "linear"), or must already have the teacher's shape ("identity"). `spatial`: the two
    features must be maps of the same spatial size (channels may differ). Otherwise only the batch
    sizes must agree (relational terms compare examples, whatever the feature sizes).
    """

    name: str
    source: str
    options: Mapping[str, Any]
    value: Callable
    check: Callable[[Mapping[str, Any]], None] = lambda options: None
    relational: bool = False
    adapter: bool = False
    spatial: bool = False
    head: bool = False

    # A `head` kind reads every teacher's classifier head and mixes its teachers itself:
    # value(students, teachers, labels, options, heads) takes per-teacher lists (the student
    # feature after each teacher's adapter, each teacher's feature, each head's {"kernel",
    # "bias"}) and returns (B, n) per-example values.

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"term {self.name!r}: source must be one of {SOURCES}, got {self.source!r}")

    @property
    def uses_teachers(self) -> bool:
        return self.source != "labels"


REQUIRED = object()
TERMS: Registry[TermKind] = Registry("loss term")


def _number(options, name: str, low: float, strict: bool) -> None:
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (value <= low if strict else value < low):
        raise ConfigError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")


def _choice(options, name: str, choices: tuple) -> None:
    if options[name] not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}, got {options[name]!r}")


def _checks(*checks) -> Callable[[Mapping[str, Any]], None]:
    def check(options):
        for fn in checks:
            fn(options)
    return check


def per_example(zoo_loss: Callable) -> Callable:
    """(B, ...) pairs -> (B,): a batch-mean zoo loss evaluated on each example alone."""
    return lambda s, t: jax.vmap(lambda si, ti: zoo_loss(si[None], ti[None]))(s, t)


def ca_mkd_feature_values(students, teachers, labels, options, heads):
    """CA-MKD's feature term per example and teacher: `c_ik * MSE(r_k(f_s), f_k)`, where `c_ik` is
    the CA-MKD weight `(1 - softmax_k(CE_ik)) / (K - 1)` of the teachers' heads applied to the
    adapted student features. Unlike the logit weights, these carry gradient (as in the paper):
    the adapters learn to make each head classify them, too."""
    mse = jnp.stack([jnp.mean(jnp.square(s - t).reshape(s.shape[0], -1), axis=-1)
                     for s, t in zip(students, teachers)], axis=-1)  # (B, n)
    ce = jnp.stack([cross_entropy(s @ h["kernel"] + h["bias"], labels) for s, h in zip(students, heads)], axis=-1)
    if ce.shape[-1] == 1:
        return mse
    return (1.0 - jax.nn.softmax(ce, axis=-1)) / (ce.shape[-1] - 1) * mse


def _embedding_only(options) -> None:
    layers = options["teacher_layer"]
    layers = layers.values() if isinstance(layers, Mapping) else [layers]
    if any(layer != "embedding" for layer in layers):
        raise ConfigError("ca_mkd_feature weights each teacher by its classifier head, which reads the teacher's "
                          f"`embedding`; teacher_layer must be 'embedding', got {options['teacher_layer']!r}")


def fused_kd(student_logits, teacher_logits, weights, temperature):
    """`T^2 KL(q || p_s^T)` with q the weighted average of the teachers' p^T (docs/methods.md, Distillation objective).

    teacher_logits (K, B, C), weights (B, K). Returns (values (B,), has_teacher (B,) bool).
    """
    target, total = fuse_soft_targets(teacher_logits, weights, temperature)
    return temperature**2 * soft_target_kl(student_logits, target, temperature), total > 0


_LAYERS = {"student_layer": REQUIRED, "teacher_layer": REQUIRED}
_EMBEDDINGS = {"student_layer": "embedding", "teacher_layer": "embedding"}

TERMS.add("ce", TermKind("ce", "labels", {}, lambda s, t, y, o: cross_entropy(s, y)))
TERMS.add("kd", TermKind(
    "kd", "logits", {"temperature": 4.0, "fused": False},
    lambda s, t, y, o: kd_per_example(s, t, o["temperature"]),
    _checks(lambda o: _number(o, "temperature", 0, True), lambda o: _choice(o, "fused", (True, False)))))
TERMS.add("dkd", TermKind(
    "dkd", "logits", {"alpha": 1.0, "beta": 8.0, "temperature": 4.0},
    lambda s, t, y, o: o["alpha"] * tckd(s, t, y, o["temperature"]) + o["beta"] * nckd(s, t, y, o["temperature"]),
    _checks(lambda o: _number(o, "alpha", 0, False), lambda o: _number(o, "beta", 0, False),
            lambda o: _number(o, "temperature", 0, True))))
TERMS.add("hint", TermKind(
    "hint", "features", {**_LAYERS, "norm": "l2", "adapter": "linear"},
    lambda s, t, y, o: per_example(lambda a, b: hint(a, b, o["norm"]))(s, t),
    _checks(lambda o: _choice(o, "norm", ("l2", "l1")), lambda o: _choice(o, "adapter", ("linear", "identity"))),
    adapter=True))
TERMS.add("attention_transfer", TermKind(
    "attention_transfer", "features", {**_LAYERS, "p": 2.0},
    lambda s, t, y, o: per_example(lambda a, b: attention_transfer(a, b, o["p"]))(s, t),
    lambda o: _number(o, "p", 0, True), spatial=True))
TERMS.add("rkd_distance", TermKind("rkd_distance", "features", dict(_EMBEDDINGS),
                                   lambda s, t, y, o: rkd_distance(s, t), relational=True))
TERMS.add("rkd_angle", TermKind("rkd_angle", "features", dict(_EMBEDDINGS),
                                lambda s, t, y, o: rkd_angle(s, t), relational=True))
TERMS.add("darkrank", TermKind(
    "darkrank", "features", {**_EMBEDDINGS, "alpha": 3.0, "beta": 3.0, "mode": "hard"},
    lambda s, t, y, o: darkrank(s, t, o["alpha"], o["beta"], o["mode"]),
    _checks(lambda o: _number(o, "alpha", 0, True), lambda o: _number(o, "beta", 0, True),
            lambda o: _choice(o, "mode", ("hard", "soft"))),
    relational=True))
TERMS.add("dist", TermKind(  # its intra-class part compares examples: one value per batch
    "dist", "logits", {"beta": 1.0, "gamma": 1.0, "temperature": 1.0},
    lambda s, t, y, o: dist(s, t, o["beta"], o["gamma"], o["temperature"]),
    _checks(lambda o: _number(o, "beta", 0, False), lambda o: _number(o, "gamma", 0, False),
            lambda o: _number(o, "temperature", 0, True)),
    relational=True))

TERMS.add("ca_mkd_feature", TermKind(
    "ca_mkd_feature", "features", {"student_layer": "embedding", "teacher_layer": "embedding", "adapter": "linear"},
    ca_mkd_feature_values,
    _checks(lambda o: _choice(o, "adapter", ("linear", "identity")), _embedding_only), adapter=True, head=True))

__all__ = ["REQUIRED", "TERMS", "TermKind", "ca_mkd_feature_values", "fused_kd", "per_example"]
