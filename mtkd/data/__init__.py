"""Data sets for mtkd: TFDS array_record files read with NumPy, no TensorFlow needed.

Two data sets are embedded (generated locally, no network): `mnist1d` and `digits`. Any other
TFDS data set is read from a data directory where it was prepared as array_record
(`mtkd data prepare NAME`, which needs network and TensorFlow once).
"""

from mtkd.data.builders import EMBEDDED_DATASETS
from mtkd.data.loading import FullSplits, load_dataset, load_full_splits, prepare_dataset
from mtkd.data.paths import DATA_DIR_ENV, default_data_dir
from mtkd.data.splits import DatasetSplits, carve_validation, restrict_training, training_fraction

__all__ = [
    "DATA_DIR_ENV",
    "EMBEDDED_DATASETS",
    "DatasetSplits",
    "FullSplits",
    "carve_validation",
    "default_data_dir",
    "load_dataset",
    "load_full_splits",
    "prepare_dataset",
    "restrict_training",
    "training_fraction",
]
