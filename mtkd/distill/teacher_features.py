"""Teachers' intermediate features for a composite loss, checked and cached by the pool.

Layers are checked against each teacher's model before anything runs, so a typo names the
teacher, its architecture and the layers it has. The arrays come from `TeacherPool.features`,
which computes them once per split and caches them like the logits.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from mtkd.data import DatasetSplits
from mtkd.distill.composition import CompositeLoss, model_feature_shapes
from mtkd.errors import ConfigError
from mtkd.models import ModelSpec
from mtkd.teachers.pool import SPLITS, TeacherPool


def pool_feature_shapes(pool: TeacherPool, splits: DatasetSplits) -> list[dict[str, tuple]]:
    """Per teacher (pool order): {layer: per-example shape}; external teachers have none."""
    return [model_feature_shapes(ModelSpec.from_dict(entry["model"]), splits.input_shape, splits.num_classes)
            if entry["kind"] == "model" else {} for entry in pool.entries]


def check_teacher_layers(loss: CompositeLoss, pool: TeacherPool, splits: DatasetSplits) -> None:
    """ConfigError naming the teacher, its architecture and its layers for a layer it lacks."""
    shapes = pool_feature_shapes(pool, splits)
    for layer, indices in loss.feature_layers().items():
        for k in indices:
            entry = pool.entries[k]
            if entry["kind"] != "model":
                raise ConfigError(f"teacher {entry['name']!r} is external (logits only) and has no feature "
                                  f"{layer!r}; list the other teachers in the term's `teachers`")
            if layer not in shapes[k]:
                raise ConfigError(f"teacher {entry['name']!r} ({entry['model']['arch']}) has no feature {layer!r}; "
                                  f"it has {', '.join(sorted(shapes[k]))}")


def _subpool(pool: TeacherPool, indices, splits: DatasetSplits) -> TeacherPool:
    """The same pool restricted to some teachers (a teacher without the layer would fail the
    whole-pool `features` call)."""
    manifest = {**pool.manifest, "teachers": [pool.entries[k] for k in indices]}
    return TeacherPool(pool.directory, manifest, splits)


def pool_features(pool: TeacherPool, splits: DatasetSplits, loss: CompositeLoss) -> dict[str, dict[str, tuple]]:
    """{split: {layer: K-tuple of (N_split, ...) arrays, None for teachers not read there}}."""
    check_teacher_layers(loss, pool, splits)
    out: dict[str, dict[str, Any]] = {split: {} for split in SPLITS}
    subpools: dict[tuple, TeacherPool] = {}
    for layer, indices in loss.feature_layers().items():
        if len(indices) == len(pool.names):
            source, positions = pool, list(range(len(pool.names)))
        else:
            source = subpools.setdefault(tuple(indices), _subpool(pool, indices, splits))
            positions = list(indices)
        arrays = source.features(splits, layer)
        for split in SPLITS:
            per_teacher: list = [None] * len(pool.names)
            for position, k in enumerate(positions):
                per_teacher[k] = arrays[split][position]
            out[split][layer] = tuple(per_teacher)
    return out


def pool_heads(pool: TeacherPool, loss: CompositeLoss) -> tuple | None:
    """The frozen classifier heads ({"kernel", "bias"} of each model's `head` layer, which reads
    its `embedding`) of the teachers a `head` term reads, None for the others; None if no term
    reads a head. An external teacher has only its cached logits, so no head: refused by name."""
    needed = loss.head_teachers()
    if not needed:
        return None
    heads: list = [None] * len(pool.names)
    for k in needed:
        entry = pool.entries[k]
        if entry["kind"] != "model":
            raise ConfigError(f"teacher {entry['name']!r} is external (logits only): ca_mkd_feature weights each "
                              f"teacher by its classifier head, which an external teacher does not have; list "
                              f"the other teachers in the term's `teachers`")
        params = pool.model_params(entry["name"])
        if "head" not in params:
            raise ConfigError(f"teacher {entry['name']!r} ({entry['model']['arch']}) has no `head` layer for "
                              f"ca_mkd_feature to read")
        heads[k] = {"kernel": jnp.asarray(params["head"]["kernel"][...]), "bias": jnp.asarray(params["head"]["bias"][...])}
    return tuple(heads)


__all__ = ["check_teacher_layers", "model_feature_shapes", "pool_feature_shapes", "pool_features", "pool_heads"]
