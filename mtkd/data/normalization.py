"""Per-channel input normalisation of the data sets whose published protocol fixes it.

CIFAR-100's is the CRD/mdistiller loaders' (`transforms.Normalize` after `ToTensor`): the
published teachers were trained on inputs normalised so, and their logits are only meaningful on
the same inputs. It is applied where the splits are read, so the teachers, their cached logits and
the students all see one array. Other data sets are read as they are ([0, 1] for images)."""

from __future__ import annotations

import numpy as np

# (mean, std) per RGB channel, of inputs scaled to [0, 1].
CHANNEL_STATISTICS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}


def normalise(name: str, x: np.ndarray) -> np.ndarray:
    """x (N, H, W, C) float32 in [0, 1], normalised by `name`'s channel statistics if it has any
    (`name` is the data set's base name: `cifar100` for `cifar100:3.0.2`)."""
    statistics = CHANNEL_STATISTICS.get(name)
    if statistics is None or x.ndim != 4 or x.shape[-1] != len(statistics[0]):
        return x
    mean, std = (np.asarray(s, np.float32) for s in statistics)
    return ((x - mean) / std).astype(np.float32)


__all__ = ["CHANNEL_STATISTICS", "normalise"]
