"""TFDS builders for the data sets shipped inside mtkd (generated locally, no network)."""

from __future__ import annotations

import tensorflow_datasets as tfds

from mtkd.data.builders.digits import Digits
from mtkd.data.embedded import EMBEDDED_DATASETS
from mtkd.data.builders.mnist1d import Mnist1d
from mtkd.registry import Registry

EMBEDDED_BUILDERS: Registry[type[tfds.core.GeneratorBasedBuilder]] = Registry("embedded data set")
EMBEDDED_BUILDERS.add(Mnist1d.name, Mnist1d)
EMBEDDED_BUILDERS.add(Digits.name, Digits)
assert set(EMBEDDED_DATASETS) == set(EMBEDDED_BUILDERS.names()), "every embedded data set has a builder"

__all__ = ["EMBEDDED_BUILDERS", "EMBEDDED_DATASETS", "Digits", "Mnist1d"]
