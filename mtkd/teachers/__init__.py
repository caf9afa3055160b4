"""Frozen teacher pools: specs, loading with cached outputs (training one: `mtkd.distill.pool_training`).

The names below are imported on first use (`mtkd.lazy_exports`), so that the command line can list
the presets without importing JAX.
"""

from mtkd.lazy_exports import lazy_exports

_EXPORTS = {
    "PoolSpec": "mtkd.teachers.spec",
    "TeacherPool": "mtkd.teachers.pool",
    "TeacherSpec": "mtkd.teachers.spec",
    "default_pool_dir": "mtkd.teachers.defaults",
    "load_pool": "mtkd.teachers.pool",
    "load_pool_spec": "mtkd.teachers.spec",
    "preset_names": "mtkd.teachers.defaults",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
