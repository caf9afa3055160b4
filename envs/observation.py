"""The selector's observation of one decision's batch: one function shared by the environment
and the `rl` fusion strategy, so a policy sees the same features in training and in use.

Per teacher k (computed on the batch, then averaged over it unless per-example):
  0 `teacher_ce`          cross-entropy of teacher k's softmax on the batch labels
  1 `teacher_confidence`  max class probability of teacher k (T = 1)
  2 `teacher_entropy`     entropy of teacher k's softmax (T = 1, nats)
  3 `teacher_student_kl`  KL(p_teacher^T || p_student^T) at the distillation temperature T:
                          how much distilling from k would still move the student
  4 `teacher_accuracy`    1 where teacher k's arg-max equals the label (agreement with labels)
Shared (the student before this decision's update, and the clock):
  5 `student_ce`          the student's cross-entropy on the batch labels
  6 `student_entropy`     entropy of the student's softmax (T = 1)
  7 `student_accuracy`    1 where the student's arg-max equals the label
  8 `progress`            fraction of the episode (or of training) done, in [0, 1]

Layouts: batch-level, a vector of `5 K + 4` values, teacher-major
`[t0 f0..f4, t1 f0..f4, ..., student_ce, student_entropy, student_accuracy, progress]`;
per-example, an array (B, K, 9) whose row (b, k) holds teacher k's five features on example b
followed by the four shared ones. Every feature is clipped to its bounds (`observation_bounds`:
0 to 1 for confidences, accuracies and progress, 0 to `FEATURE_CAP` = 100 nats for the others)
so rounding never puts an observation outside the Gymnasium space.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

TEACHER_FEATURES = ("teacher_ce", "teacher_confidence", "teacher_entropy", "teacher_student_kl", "teacher_accuracy")
SHARED_FEATURES = ("student_ce", "student_entropy", "student_accuracy", "progress")
# Losses, entropies and KLs are capped (a finite Box; no policy needs to tell 100 nats from more).
FEATURE_CAP = 100.0
_TEACHER_HIGH = (FEATURE_CAP, 1.0, FEATURE_CAP, FEATURE_CAP, 1.0)
_SHARED_HIGH = (FEATURE_CAP, FEATURE_CAP, 1.0, 1.0)


def observation_size(num_teachers: int, per_example: bool = False) -> int:
    """Values per decision row: 5 K + 4 batch-level; K * 9 per example (one row per example)."""
    if per_example:
        return num_teachers * (len(TEACHER_FEATURES) + len(SHARED_FEATURES))
    return num_teachers * len(TEACHER_FEATURES) + len(SHARED_FEATURES)


def feature_names(teacher_names, per_example: bool = False) -> list[str]:
    """The name of every observation value, in order. Per batch (the flat `5 K + 4` vector):
    `TEACHER/feature` for each teacher in pool order, its five features in TEACHER_FEATURES order,
    then the four SHARED_FEATURES. Per example (`(B, K, 9)`): the names of the last axis (each
    row is one example and one teacher): TEACHER_FEATURES then SHARED_FEATURES."""
    if per_example:
        return list(TEACHER_FEATURES + SHARED_FEATURES)
    return [f"{teacher}/{feature}" for teacher in teacher_names for feature in TEACHER_FEATURES] + list(SHARED_FEATURES)


def observation_shape(num_teachers: int, per_example: bool, batch_examples: int) -> tuple[int, ...]:
    if per_example:
        return (batch_examples, num_teachers, len(TEACHER_FEATURES) + len(SHARED_FEATURES))
    return (observation_size(num_teachers),)


def observation_bounds(num_teachers: int, per_example: bool, batch_examples: int):
    """(low, high) float32 arrays of `observation_shape`: every feature is >= 0."""
    if per_example:
        row = np.asarray(_TEACHER_HIGH + _SHARED_HIGH, np.float32)
        high = np.broadcast_to(row, observation_shape(num_teachers, True, batch_examples)).copy()
    else:
        high = np.asarray(_TEACHER_HIGH * num_teachers + _SHARED_HIGH, np.float32)
    return np.zeros_like(high), high


@struct.dataclass
class TeacherTable:
    """What the observation and the fused target need from the teachers alone, per example: it does
    not depend on the student, so it is computed once per pool (`teacher_table`) and a decision
    takes a gather and a mean. `features` (K, N, 4): teacher_ce, teacher_confidence,
    teacher_entropy and teacher_accuracy (T = 1); `tempered` (K, N, C): softmax(z / T), the
    teachers' soft targets; `tempered_neg_entropy` (K, N): sum_c p log p of them (the KL's first
    term); `temperature`: the T they were computed at (static)."""

    features: jax.Array
    tempered: jax.Array
    tempered_neg_entropy: jax.Array
    temperature: float = struct.field(pytree_node=False, default=1.0)

    def rows(self, index) -> "TeacherTable":
        """The table of the examples `index` (B,): every array (K, B, ...)."""
        return self.replace(features=self.features[:, index], tempered=self.tempered[:, index],
                            tempered_neg_entropy=self.tempered_neg_entropy[:, index])


def teacher_table(teacher_logits, labels, temperature: float) -> TeacherTable:
    """The per-example `TeacherTable` of teacher logits (K, N, C) and labels (N,)."""
    logits = jnp.asarray(teacher_logits, jnp.float32)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(log_p)
    labels = jnp.asarray(labels)
    label_logit = jnp.take_along_axis(logits, labels[None, :, None], axis=-1)[..., 0]
    features = jnp.stack([
        -jnp.take_along_axis(log_p, labels[None, :, None], axis=-1)[..., 0],  # teacher_ce
        jnp.max(p, axis=-1),  # teacher_confidence
        -jnp.sum(p * log_p, axis=-1),  # teacher_entropy
        (label_logit >= jnp.max(logits, axis=-1)).astype(jnp.float32),  # teacher_accuracy (ties count)
    ], axis=-1)
    log_p_t = jax.nn.log_softmax(logits / temperature, axis=-1)
    p_t = jnp.exp(log_p_t)
    return TeacherTable(features, p_t, jnp.sum(p_t * log_p_t, axis=-1), float(temperature))


def table_observation(table: TeacherTable, labels, student_logits, progress, per_example: bool = False) -> jax.Array:
    """The observation of one batch (see the module docstring) from the batch's rows of the
    teacher table (`TeacherTable.rows`) and the student's logits (B, C).

    The student's tempered log-softmax is written exactly as the distillation loss writes it
    (`mtkd.distill.objective.soft_target_kl`), so where both are in one program XLA computes it
    once. Returns float32 (5 K + 4,) or, per example, (B, K, 9)."""
    student_logits = student_logits.astype(jnp.float32)
    log_q_t = jax.nn.log_softmax(student_logits / table.temperature, axis=-1)
    kl = table.tempered_neg_entropy - jnp.einsum("kbc,bc->kb", table.tempered, log_q_t)  # (K, B)
    log_q = jax.nn.log_softmax(student_logits, axis=-1)
    label_logit = jnp.take_along_axis(student_logits, labels[:, None], axis=-1)[:, 0]
    shared = jnp.stack([-jnp.take_along_axis(log_q, labels[:, None], axis=-1)[:, 0],  # student_ce
                        -jnp.sum(jnp.exp(log_q) * log_q, axis=-1),  # student_entropy
                        (label_logit >= jnp.max(student_logits, axis=-1)).astype(jnp.float32)])  # (3, B)
    f = jnp.moveaxis(table.features, -1, 0)  # (4, K, B)
    teacher = jnp.stack([f[0], f[1], f[2], kl, f[3]])  # (5, K, B), in TEACHER_FEATURES order
    progress = jnp.asarray(progress, jnp.float32)
    num_teachers = teacher.shape[1]
    if per_example:
        shared = jnp.concatenate([shared, jnp.broadcast_to(progress, labels.shape)[None]])  # (4, B)
        shared_rows = jnp.broadcast_to(shared.T[:, None, :], (labels.shape[0], num_teachers, shared.shape[0]))
        obs = jnp.concatenate([jnp.transpose(teacher, (2, 1, 0)), shared_rows], axis=-1)  # (B, K, 9)
    else:
        obs = jnp.concatenate([teacher.mean(axis=-1).T.reshape(-1), shared.mean(axis=-1), progress[None]])
    low, high = observation_bounds(num_teachers, per_example, labels.shape[0])
    return jnp.clip(obs.astype(jnp.float32), low, high)


def observation_features(teacher_logits, labels, student_logits, progress, temperature: float,
                         per_example: bool = False) -> jax.Array:
    """The observation of one batch from the teachers' logits (K, B, C), labels (B,) int, the
    student's logits (B, C) and progress (a scalar): `table_observation` of the batch's own
    teacher table. Returns float32 (5 K + 4,) or, per example, (B, K, 9)."""
    labels = jnp.asarray(labels)
    return table_observation(teacher_table(teacher_logits, labels, temperature), labels,
                             jnp.asarray(student_logits), progress, per_example)
