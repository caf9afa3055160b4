"""A probe problem whose right answer is known: good teachers and one misleading teacher.

Inputs are Gaussian clusters, one per class. The training labels carry `label_noise` (a fraction
replaced by another class) while the good teachers know the true class, so distilling from them
beats the hard labels; the misleading teacher is a good teacher's logits rolled by one class, so
it is confidently wrong everywhere. A working selector learns to keep the good ones and skip it.
Validation labels are clean.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ProbeArrays(NamedTuple):
    """teacher_logits_train (K, N, C), teacher_logits_val (K, N_val, C), x (N, F), y (N,) noisy,
    x_val, y_val (clean); teachers 0..K-2 are good, K-1 is misleading."""

    teacher_logits_train: np.ndarray
    teacher_logits_val: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def probe_arrays(seed: int = 0, num_train: int = 512, num_val: int = 128, num_classes: int = 4,
                 num_features: int = 10, num_good: int = 2, label_noise: float = 0.3,
                 teacher_margin: float = 5.0) -> ProbeArrays:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(num_classes, num_features))
    true_train = rng.integers(0, num_classes, num_train)
    y_val = rng.integers(0, num_classes, num_val)
    x_train = centers[true_train] + rng.normal(size=(num_train, num_features))
    x_val = centers[y_val] + rng.normal(size=(num_val, num_features))
    flipped = rng.random(num_train) < label_noise
    y_train = np.where(flipped, (true_train + rng.integers(1, num_classes, num_train)) % num_classes, true_train)

    def good(labels):
        return np.eye(num_classes)[labels] * teacher_margin + rng.normal(size=(labels.size, num_classes))

    def pool(labels):
        teachers = [good(labels) for _ in range(num_good)]
        return np.stack(teachers + [np.roll(good(labels), 1, axis=-1)]).astype(np.float32)

    return ProbeArrays(pool(true_train), pool(y_val), x_train.astype(np.float32), y_train.astype(np.int32),
                       x_val.astype(np.float32), y_val.astype(np.int32))
