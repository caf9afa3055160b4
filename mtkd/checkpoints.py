"""Saving and restoring parameter trees with Orbax, guarded by a content checksum.

The checksum (SHA-256 over every leaf's path, dtype, shape and bytes) is stored beside the
checkpoint by the caller; `restore_params` recomputes it, so a flipped byte or a truncated
file is reported as a `CheckpointError` instead of silently producing wrong logits.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from mtkd.errors import CheckpointError


def _leaf_name(key_path) -> str:
    """A leaf's path as text, the same for list indices and the string keys Orbax stores them as."""
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in key_path)


def params_checksum(tree: Any) -> str:
    digest = hashlib.sha256()
    for path, leaf in sorted(jax.tree_util.tree_flatten_with_path(tree)[0], key=lambda item: jax.tree_util.keystr(item[0])):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(jax.tree_util.keystr(path).encode())
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return "sha256:" + digest.hexdigest()


def save_params(path: str | Path, tree: Any) -> str:
    """Saves a pytree of arrays at `path` (must not exist yet); returns its checksum."""
    path = Path(path).absolute()
    # This process alone (in a multi-process run, the writer saving what every process holds).
    alone = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(), active_processes={jax.process_index()})
    if jax.process_count() > 1:  # Orbax refuses arrays on one local device there; host arrays it takes
        tree = jax.tree.map(np.asarray, tree)
    checkpointer = ocp.StandardCheckpointer(multiprocessing_options=alone)
    checkpointer.save(path, tree)
    checkpointer.wait_until_finished()
    return params_checksum(tree)


def restore_params(path: str | Path, abstract_tree: Any, expected_checksum: str | None) -> Any:
    """Restores the tree saved at `path` into the structure of `abstract_tree` (shapes/dtypes)."""
    path = Path(path).absolute()
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} is missing")
    # On this process's first device: in a multi-process run each process restores its own copy
    # (the default target would be laid out over every process's devices).
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=here), abstract_tree)
    checkpointer = ocp.StandardCheckpointer()
    try:
        # Shapes are compared from the metadata first: a restore into the wrong shapes fails inside
        # Orbax's background tasks, which then log their errors long after ours is raised.
        stored = checkpointer.metadata(path).item_metadata.tree
        stored_shapes = {_leaf_name(k): tuple(v.shape) for k, v in jax.tree_util.tree_flatten_with_path(stored)[0]}
    except Exception as error:  # orbax raises many kinds for truncated or corrupt files
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: "
                              f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
    for key_path, want in jax.tree_util.tree_flatten_with_path(target)[0]:
        name = _leaf_name(key_path)
        if stored_shapes.get(name) != tuple(want.shape):
            found = "nothing" if name not in stored_shapes else f"shape {stored_shapes[name]}"
            raise CheckpointError(f"checkpoint {path} is corrupt or does not match the model: it holds {found} at {name}, "
                                  f"the model expects shape {tuple(want.shape)}")
    try:
        tree = checkpointer.restore(path, target)
    except Exception as error:  # orbax raises many kinds for truncated or corrupt files
        raise CheckpointError(f"checkpoint {path} is corrupt or does not match the model: "
                              f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
    if expected_checksum is not None and params_checksum(tree) != expected_checksum:
        raise CheckpointError(f"checkpoint {path} does not match its recorded checksum (corrupt or modified)")
    return tree
