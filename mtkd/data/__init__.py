"""Data sets for mtkd: TFDS array_record files read with NumPy, no TensorFlow needed.

Two data sets are embedded (generated locally, no network): `mnist1d` and `digits`. Any other
TFDS data set is read from a data directory where it was prepared as array_record
(`mtkd data prepare NAME`, which needs network and TensorFlow once). The names below are imported
on first use (`mtkd.lazy_exports`): importing `mtkd.data` does not import TFDS.
"""

from mtkd.lazy_exports import lazy_exports

__getattr__, __dir__, _NAMES = lazy_exports(__name__, {
    "mtkd.data.embedded": ("EMBEDDED_DATASETS",),
    "mtkd.data.loading": ("FullSplits", "load_dataset", "load_full_splits", "prepare_dataset"),
    "mtkd.data.paths": ("DATA_DIR_ENV", "default_data_dir"),
    "mtkd.data.splits": ("DatasetSplits", "carve_validation", "restrict_training", "training_fraction"),
})
__all__ = _NAMES
