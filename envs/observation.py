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


def _entropy(log_probs):
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


def observation_features(teacher_logits, labels, student_logits, progress, temperature: float,
                         per_example: bool = False) -> jax.Array:
    """The observation of one batch (see the module docstring for the features).

    teacher_logits (K, B, C); labels (B,) int; student_logits (B, C); progress scalar.
    Returns float32 (5 K + 4,) or, per example, (B, K, 9).
    """
    log_teacher = jax.nn.log_softmax(teacher_logits, axis=-1)  # (K, B, C)
    log_student = jax.nn.log_softmax(student_logits, axis=-1)  # (B, C)
    label_index = labels[None, :, None]
    teacher_ce = -jnp.take_along_axis(log_teacher, label_index, axis=-1)[..., 0]
    log_teacher_t = jax.nn.log_softmax(teacher_logits / temperature, axis=-1)
    log_student_t = jax.nn.log_softmax(student_logits / temperature, axis=-1)
    kl = jnp.sum(jnp.exp(log_teacher_t) * (log_teacher_t - log_student_t[None]), axis=-1)
    teacher = jnp.stack([
        teacher_ce,
        jnp.exp(jnp.max(log_teacher, axis=-1)),
        _entropy(log_teacher),
        kl,
        (jnp.argmax(teacher_logits, axis=-1) == labels[None]).astype(jnp.float32),
    ], axis=-1)  # (K, B, 5)
    shared = jnp.stack([
        -jnp.take_along_axis(log_student, labels[:, None], axis=-1)[:, 0],
        _entropy(log_student),
        (jnp.argmax(student_logits, axis=-1) == labels).astype(jnp.float32),
        jnp.broadcast_to(jnp.asarray(progress, jnp.float32), labels.shape),
    ], axis=-1)  # (B, 4)
    num_teachers = teacher_logits.shape[0]
    if per_example:
        shared_rows = jnp.broadcast_to(shared[:, None, :], (labels.shape[0], num_teachers, shared.shape[-1]))
        obs = jnp.concatenate([jnp.transpose(teacher, (1, 0, 2)), shared_rows], axis=-1)
    else:
        obs = jnp.concatenate([teacher.mean(axis=1).reshape(-1), shared.mean(axis=0)])
    low, high = observation_bounds(num_teachers, per_example, labels.shape[0])
    return jnp.clip(obs.astype(jnp.float32), low, high)
