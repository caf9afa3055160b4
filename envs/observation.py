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


def observation_features(teacher_logits, labels, student_logits, progress, temperature: float,
                         per_example: bool = False) -> jax.Array:
    """The observation of one batch (see the module docstring for the features).

    teacher_logits (K, B, C); labels (B,) int; student_logits (B, C); progress scalar.
    Returns float32 (5 K + 4,) or, per example, (B, K, 9).
    """
    # This runs per batch inside the student's training scan, so it is written for speed on CPU:
    # the student rides along as teacher K, classes go first (sums over them are then plain
    # vector adds), and every quantity comes from one max and two exps. With s = z - max(z) (the
    # arg-max class has s = 0) and S = sum exp(s): p_max = 1 / S, CE = log S - s[y],
    # entropy = log S - sum(exp(s) s) / S, correct <=> s[y] = 0 (ties count as correct), and
    # KL(p_t^T || p_s^T) = sum exp(s_t / T) (s_t - s_s) / (T S_t^T) + log S_s^T - log S_t^T.
    logits = jnp.concatenate([teacher_logits, student_logits[None]]).astype(jnp.float32)
    logits = jnp.moveaxis(logits, -1, 0)  # (C, K+1, B)
    shifted = logits - jnp.max(logits, axis=0)
    shifted_t = shifted / temperature  # max(z / T) = max(z) / T: this is s at temperature T
    exp, exp_t = jnp.exp(shifted), jnp.exp(shifted_t)
    is_label = jnp.arange(logits.shape[0])[:, None, None] == labels[None, None, :]
    total, total_t = exp.sum(axis=0), exp_t.sum(axis=0)  # (K+1, B)
    label_shifted = jnp.where(is_label, shifted, 0.0).sum(axis=0)
    log_total, log_total_t = jnp.log(total), jnp.log(total_t)
    ce = log_total - label_shifted
    entropy = log_total - (exp * shifted).sum(axis=0) / total
    correct = (label_shifted >= 0).astype(jnp.float32)
    kl = ((exp_t[:, :-1] * (shifted_t[:, :-1] - shifted_t[:, -1:])).sum(axis=0) / total_t[:-1]
          + log_total_t[-1:] - log_total_t[:-1])
    teacher = jnp.stack([ce[:-1], 1.0 / total[:-1], entropy[:-1], kl, correct[:-1]])  # (5, K, B)
    shared = jnp.stack([ce[-1], entropy[-1], correct[-1]])  # (3, B)
    progress = jnp.asarray(progress, jnp.float32)
    num_teachers = teacher_logits.shape[0]
    if per_example:
        shared = jnp.concatenate([shared, jnp.broadcast_to(progress, labels.shape)[None]])  # (4, B)
        shared_rows = jnp.broadcast_to(shared.T[:, None, :], (labels.shape[0], num_teachers, shared.shape[0]))
        obs = jnp.concatenate([jnp.transpose(teacher, (2, 1, 0)), shared_rows], axis=-1)  # (B, K, 9)
    else:
        obs = jnp.concatenate([teacher.mean(axis=-1).T.reshape(-1), shared.mean(axis=-1), progress[None]])
    low, high = observation_bounds(num_teachers, per_example, labels.shape[0])
    return jnp.clip(obs.astype(jnp.float32), low, high)
