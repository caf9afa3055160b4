"""Frozen teacher pools: specs, loading with cached outputs (training one: `mtkd.distill.pool_training`).

The names below are imported on first use (`mtkd.lazy_exports`), so that the command line can list
the presets without importing JAX.
"""

from mtkd.lazy_exports import lazy_exports

__getattr__, __dir__, _NAMES = lazy_exports(__name__, {
    "mtkd.teachers.defaults": ("default_pool_dir", "preset_names"),
    "mtkd.teachers.pool": ("TeacherPool", "load_pool"),
    "mtkd.teachers.spec": ("PoolSpec", "TeacherSpec", "load_pool_spec"),
})
__all__ = _NAMES
