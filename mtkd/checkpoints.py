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
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, tree)
    checkpointer.wait_until_finished()
    return params_checksum(tree)


def restore_params(path: str | Path, abstract_tree: Any, expected_checksum: str | None) -> Any:
    """Restores the tree saved at `path` into the structure of `abstract_tree` (shapes/dtypes)."""
    path = Path(path).absolute()
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} is missing")
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype), abstract_tree)
    try:
        tree = ocp.StandardCheckpointer().restore(path, target)
    except Exception as error:  # orbax raises many kinds for truncated or corrupt files
        raise CheckpointError(f"checkpoint {path} is corrupt or does not match the model: "
                              f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
    # Orbax may hand back arrays in their stored shapes whatever the target says: compare them.
    for (key_path, leaf), want in zip(jax.tree_util.tree_flatten_with_path(tree)[0], jax.tree.leaves(target)):
        if tuple(np.shape(leaf)) != tuple(want.shape):
            raise CheckpointError(f"checkpoint {path} does not match the model: {jax.tree_util.keystr(key_path)} has "
                                  f"shape {tuple(np.shape(leaf))}, the model expects {tuple(want.shape)}")
    if expected_checksum is not None and params_checksum(tree) != expected_checksum:
        raise CheckpointError(f"checkpoint {path} does not match its recorded checksum (corrupt or modified)")
    return tree
