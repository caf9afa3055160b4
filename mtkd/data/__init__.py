"""Data sets for mtkd: TFDS array_record files read with NumPy, no TensorFlow needed.

Two data sets are embedded (generated locally, no network): `mnist1d` and `digits`. Any other
TFDS data set is read from a data directory where it was prepared as array_record
(`mtkd data prepare NAME`, which needs network and TensorFlow once). The names below are imported
on first use (`mtkd.lazy_exports`): importing `mtkd.data` does not import TFDS.
"""

from mtkd.lazy_exports import lazy_exports

_EXPORTS = {
    "DATA_DIR_ENV": "mtkd.data.paths",
    "EMBEDDED_DATASETS": "mtkd.data.embedded",
    "DatasetSplits": "mtkd.data.splits",
    "FullSplits": "mtkd.data.loading",
    "carve_validation": "mtkd.data.splits",
    "default_data_dir": "mtkd.data.paths",
    "load_dataset": "mtkd.data.loading",
    "load_full_splits": "mtkd.data.loading",
    "prepare_dataset": "mtkd.data.loading",
    "restrict_training": "mtkd.data.splits",
    "training_fraction": "mtkd.data.splits",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
