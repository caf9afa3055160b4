"""Frozen teacher pools: specs, training, loading with cached outputs."""

from mtkd.teachers.pool import TeacherPool, load_pool
from mtkd.teachers.spec import PoolSpec, TeacherSpec, load_pool_spec, preset_names
from mtkd.teachers.training import train_pool
from mtkd.teachers.defaults import default_pool_dir, ensure_pool

__all__ = ["TeacherPool", "load_pool", "PoolSpec", "TeacherSpec", "load_pool_spec", "preset_names",
           "train_pool", "default_pool_dir", "ensure_pool"]
