"""Frozen teacher pools: specs, loading with cached outputs (training one: `mtkd.distill.pool_training`)."""

from mtkd.teachers.pool import TeacherPool, load_pool
from mtkd.teachers.spec import PoolSpec, TeacherSpec, load_pool_spec, preset_names
from mtkd.teachers.defaults import default_pool_dir

__all__ = ["TeacherPool", "load_pool", "PoolSpec", "TeacherSpec", "load_pool_spec", "preset_names",
           "default_pool_dir"]
