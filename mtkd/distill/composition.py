"""Composite losses: a `LossConfig` bound to a pool and a student, and the epoch that trains with it.

How several teachers are combined (docs/methods.md, Distillation objective applied to every teacher term):

- each teacher-dependent term is computed per teacher and mixed with the batch's fusion weights
  w (B, K) from the FusionStrategy: per example, `sum_k w_bk L_k(b) / sum_k w_bk`; an example
  whose weights are all zero gets no teacher term (0), and the term is the mean over the batch.
  Teacher-free terms (`ce`) are unaffected by the weights, so an all-zero selection trains on the
  teacher-free terms alone, at their configured weights. (Unlike `distillation_loss`, which
  raises the CE weight from alpha to 1 there: here the weights are explicit.)
- relational terms (RKD, DarkRank) give one value per batch and teacher; they are mixed with the
  teachers' batch-mean weights, `sum_k wbar_k L_k / sum_k wbar_k` (0 if every wbar_k is 0).
- `kd` with `fused = true` instead distills from the fused target, `T^2 KL(q || p_s^T)` with
  `q = sum_k w_bk p_k^T / sum_k w_bk` (the classic multi-teacher KD of `fit`); the default
  (fused = false) averages the per-teacher KL divergences. Their values differ by a constant (the
  teachers' entropies: the KL of an average is at most the average of the KLs), but their
  gradients are equal, `T (p_s^T - q)`, since KL(p || p_s) is linear in p apart from -H(p). The
  fused form costs one KL instead of K.
- a term's `teachers` list (or a teacher_layer table) restricts it to those teachers: the others'
  weights count as 0 for that term only.

Hint adapters (one per teacher and hint term) are trainable parameters next to the student's:
the training state holds `{"student": ..., "adapters": {"term_J": {teacher: {kernel, bias}}}}`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from mtkd.distill.adapters import adapter_size, apply_adapter, init_adapter, shape_text
from mtkd.distill.loss_config import LossConfig, LossTerm, loss_config_from
from mtkd.distill.steps import StudentState, apply_model, scan_batches
from mtkd.distill.terms import TermKind, fused_kd
from mtkd.errors import ConfigError
from mtkd.fusion.strategies import FusionStrategy
from mtkd.models import ModelSpec, abstract_model


@dataclasses.dataclass(frozen=True)
class BoundTerm:
    """One term with its teachers resolved: `teachers` holds (pool index, name, teacher layer)."""

    index: int
    term: LossTerm
    teachers: tuple[tuple[int, str, str | None], ...]

    @property
    def kind(self) -> TermKind:
        return self.term.kind

    @property
    def adapter_key(self) -> str:
        return f"term_{self.index}"


def _require_layer(owner: str, shapes: Mapping[str, tuple], layer: str) -> tuple:
    if layer not in shapes:
        raise ConfigError(f"{owner} has no feature {layer!r}; it has {', '.join(sorted(shapes)) or 'none'}")
    return tuple(shapes[layer])


@dataclasses.dataclass(frozen=True)
class CompositeLoss:
    """A LossConfig bound to K named teachers and a student's feature shapes (see `bind_loss`).

    Calling it gives `(loss, term_values (T,))` for one batch: term_values are the unweighted,
    teacher-mixed values of the terms, loss their weighted (and warmed-up) sum.
    """

    config: LossConfig
    terms: tuple[BoundTerm, ...]
    teacher_names: tuple[str, ...]
    adapter_sizes: Mapping[str, Mapping[str, tuple[int, int]]]

    def feature_layers(self) -> dict[str, tuple[int, ...]]:
        """Teacher features the loss reads: {layer: indices of the teachers it is read from}."""
        needed: dict[str, set[int]] = {}
        for bound in self.terms:
            if bound.kind.source == "features":
                for k, _, layer in bound.teachers:
                    needed.setdefault(layer, set()).add(k)
        return {layer: tuple(sorted(ks)) for layer, ks in needed.items()}

    def head_teachers(self) -> tuple[int, ...]:
        """Teachers whose classifier head a term reads (`ca_mkd_feature`)."""
        return tuple(sorted({k for bound in self.terms if bound.kind.head for k, _, _ in bound.teachers}))

    def init_adapters(self, key: jax.Array) -> dict:
        """Fresh adapter parameters: {"term_J": {teacher name: {"kernel", "bias"}}}."""
        adapters = {}
        for term_key, per_teacher in sorted(self.adapter_sizes.items()):
            key, *keys = jax.random.split(key, len(per_teacher) + 1)
            adapters[term_key] = {name: init_adapter(k, *size)
                                  for k, (name, size) in zip(keys, sorted(per_teacher.items()))}
        return adapters

    def __call__(self, student_logits, student_features, labels, teacher_logits, teacher_features, weights,
                 adapters, progress, teacher_heads=None):
        """student_logits (B, C); student_features {name: (B, ...)}; labels (B,); teacher_logits
        (K, B, C); teacher_features {layer: K-tuple of (B, ...) or None}; weights (B, K);
        adapters as from `init_adapters`; progress scalar in [0, 1]; teacher_heads a K-tuple of
        {"kernel", "bias"} (or None) for the terms that read heads (`head_teachers`)."""
        values = jnp.stack([self._term_value(bound, student_logits, student_features, labels, teacher_logits,
                                             teacher_features, weights, adapters, teacher_heads)
                            for bound in self.terms])
        scales = jnp.stack([term_scale(bound.term, progress) for bound in self.terms])
        return jnp.sum(scales * values), values

    def _term_value(self, bound, student_logits, student_features, labels, teacher_logits, teacher_features,
                    weights, adapters, teacher_heads=None):
        kind, options = bound.kind, bound.term.options
        if not kind.uses_teachers:
            return jnp.mean(kind.value(student_logits, None, labels, options))
        if not bound.teachers:  # no teacher in this run (e.g. the student-alone baseline)
            return jnp.zeros((), student_logits.dtype)
        indices = [k for k, _, _ in bound.teachers]
        w = weights[:, indices]  # (B, n): the weights of this term's teachers
        if options.get("fused"):
            values, has_teacher = fused_kd(student_logits, teacher_logits[jnp.asarray(indices)], w,
                                           options["temperature"])
            return jnp.mean(jnp.where(has_teacher, values, 0.0))
        if kind.head:
            students, teachers = [], []
            for k, name, layer in bound.teachers:
                student = student_features[options["student_layer"]]
                if bound.adapter_key in adapters:
                    student = apply_adapter(adapters[bound.adapter_key][name], student)
                students.append(student)
                teachers.append(teacher_features[layer][k])
            heads = [teacher_heads[k] for k in indices]
            return jnp.mean(weighted_mean(kind.value(students, teachers, labels, options, heads), w))
        per_teacher = []
        for k, name, layer in bound.teachers:
            if kind.source == "logits":
                student, teacher = student_logits, teacher_logits[k]
            else:
                student, teacher = student_features[options["student_layer"]], teacher_features[layer][k]
                if bound.adapter_key in adapters:
                    student = apply_adapter(adapters[bound.adapter_key][name], student)
            per_teacher.append(kind.value(student, teacher, labels, options))
        values = jnp.stack(per_teacher, axis=-1)  # (B, n), or (n,) for relational terms
        if kind.relational:
            return weighted_mean(values, w.mean(axis=0))
        return jnp.mean(weighted_mean(values, w))


def weighted_mean(values, weights):
    """`sum_k w_k v_k / sum_k w_k` over the last axis, 0 where every weight is 0.

    The `where`s keep a skipped teacher's value out entirely: 0 * inf would be NaN, and its
    gradient is exactly 0 (so an unselected teacher's adapter receives nothing).
    """
    total = jnp.sum(weights, axis=-1)
    mixed = jnp.sum(jnp.where(weights > 0, weights * values, 0.0), axis=-1)
    safe_total = jnp.where(total > 0, total, 1.0)
    return jnp.where(total > 0, mixed / safe_total, 0.0)


def term_scale(term: LossTerm, progress) -> jax.Array:
    """The term's weight, times `min(1, progress / warmup)` while warming up."""
    if term.warmup <= 0:
        return jnp.asarray(term.weight)  # the default float type: float64 under x64
    return term.weight * jnp.minimum(1.0, jnp.asarray(progress) / term.warmup)


def bind_loss(
    config: LossConfig | Sequence[Mapping[str, Any]],
    teacher_names: Sequence[str],
    student_shapes: Mapping[str, tuple[int, ...]],
    teacher_shapes: Sequence[Mapping[str, tuple[int, ...]]] | None = None,
    student_name: str = "student",
) -> CompositeLoss:
    """Resolves each term's teachers and layers and checks every shape before any training.

    student_shapes / teacher_shapes[k]: per-example feature shapes by layer name (no batch axis),
    e.g. from `feature_shapes`. `student_name` names the student model in error messages.
    Raises ConfigError for an unknown teacher or layer (naming the model and its layers) and for
    features an adapter or attention transfer cannot match (naming both layers and shapes).
    """
    config = loss_config_from(config)
    names = tuple(teacher_names)
    teacher_shapes = list(teacher_shapes) if teacher_shapes is not None else [{} for _ in names]
    if len(teacher_shapes) != len(names):
        raise ConfigError(f"got feature shapes of {len(teacher_shapes)} teachers for {len(names)} teacher names")
    bound_terms, adapter_sizes = [], {}
    for index, term in enumerate(config.terms):
        kind = term.kind
        if not kind.uses_teachers:
            bound_terms.append(BoundTerm(index, term, ()))
            continue
        chosen = term.teachers if term.teachers is not None else names
        unknown = [t for t in chosen if t not in names]
        if unknown and names:
            raise ConfigError(f"loss term {index} ({term.loss}) names teacher(s) {', '.join(unknown)} not in the "
                              f"pool; teachers: {', '.join(names)}")
        chosen = [t for t in chosen if t in names]
        teachers = tuple((names.index(t), t, term.teacher_layer(t) if kind.source == "features" else None)
                         for t in chosen)
        if kind.source == "features":
            sizes = _check_feature_term(index, term, teachers, student_shapes, teacher_shapes, student_name)
            if sizes:
                adapter_sizes[f"term_{index}"] = sizes
        bound_terms.append(BoundTerm(index, term, teachers))
    return CompositeLoss(config, tuple(bound_terms), names, adapter_sizes)


def _check_feature_term(index, term, teachers, student_shapes, teacher_shapes, student_name):
    """Checks one feature term's shapes; returns its adapter sizes {teacher: (in, out)}."""
    layer = term.options["student_layer"]
    student = _require_layer(f"student model {student_name!r}", student_shapes, layer)
    sizes = {}
    for k, name, teacher_layer in teachers:
        teacher = _require_layer(f"teacher {name!r}", teacher_shapes[k], teacher_layer)
        what = (f"loss term {index} ({term.loss}): student layer {layer!r} {shape_text(student)} -> teacher "
                f"{name!r} layer {teacher_layer!r} {shape_text(teacher)}")
        if term.kind.adapter and term.options["adapter"] == "linear":
            sizes[name] = adapter_size(student, teacher, what)
        elif term.kind.adapter and student != teacher:
            raise ConfigError(f"{what}: shapes differ and adapter = 'identity'; use adapter = 'linear'")
        elif term.kind.spatial and (len(student) < 2 or len(teacher) < 2 or student[:-1] != teacher[:-1]):
            raise ConfigError(f"{what}: {term.loss} needs (B, *spatial, C) maps of the same spatial size")
    return sizes


def feature_shapes(graphdef, params, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Per-example shapes of a model's named features, from one abstract evaluation (no compute)."""
    x = jax.ShapeDtypeStruct((2,) + tuple(input_shape), jnp.float32)
    features = jax.eval_shape(lambda p, xb: apply_model(graphdef, p, xb)[1], params, x)
    return {name: tuple(f.shape[1:]) for name, f in features.items()}


def model_feature_shapes(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> dict[str, tuple]:
    """`feature_shapes` of an architecture, from its abstract model (nothing is initialised)."""
    return feature_shapes(*nnx.split(abstract_model(spec, input_shape, num_classes)), input_shape)


def make_composite_train_step(graphdef, optimizer: optax.GradientTransformation, loss: CompositeLoss,
                              teacher_heads=None):
    """Returns `step(state, x, y, teacher_logits (K, B, C), teacher_features, weights (B, K), progress)
    -> (state, (loss, term_values (T,)))`; state.params = {"student": ..., "adapters": ...}.
    teacher_heads: the frozen classifier heads that `head` terms read (see `CompositeLoss`)."""

    def step(state: StudentState, x, y, teacher_logits, teacher_features, weights, progress):
        def objective(params):
            logits, features = apply_model(graphdef, params["student"], x)
            return loss(logits, features, y, teacher_logits, teacher_features, weights, params["adapters"], progress,
                        teacher_heads)

        (value, terms), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return StudentState(optax.apply_updates(state.params, updates), opt_state), (value, terms)

    return step


def make_composite_epoch(graphdef, optimizer, strategy: FusionStrategy, loss: CompositeLoss, batch_size: int,
                         teacher_heads=None, augment=None):
    """Returns `epoch(state, key, x, y, teacher_logits (K, N, C), teacher_features, progress) -> (state, metrics)`.

    As `mtkd.distill.steps.make_epoch`, with the composite loss: teacher_features is
    {layer: K-tuple of (N, ...) arrays aligned with x, or None for teachers the loss does not read
    at that layer}. Metrics: mean training loss, mean weight of each teacher ("selection", (K,))
    and the mean unweighted value of each term ("terms", (T,)). `augment` as in `make_epoch`; the
    teachers' cached features stay those of the unaugmented inputs.
    """
    step = make_composite_train_step(graphdef, optimizer, loss, teacher_heads)

    def epoch(state: StudentState, key, x, y, teacher_logits, teacher_features, progress):
        def update(state, index, batch_teachers, weights, inputs):
            batch_features = jax.tree.map(lambda f: f[index], teacher_features)
            state, (value, terms) = step(state, inputs, y[index], batch_teachers, batch_features, weights, progress)
            return state, {"loss": value, "terms": terms}

        state, _, metrics = scan_batches(state, key, x, y, teacher_logits, progress, batch_size, strategy,
                                         graphdef, lambda state: state.params["student"], update, augment=augment)
        return state, metrics

    return epoch


__all__ = ["BoundTerm", "CompositeLoss", "bind_loss", "feature_shapes", "make_composite_epoch",
           "make_composite_train_step", "weighted_mean"]
