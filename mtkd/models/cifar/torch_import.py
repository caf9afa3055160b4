"""A PyTorch `state_dict` of a reference CIFAR network (CRD / mdistiller definitions) as the NNX
state of the zoo's network of the same name: every key checked, every tensor moved to the NNX
layout (`torch_names`). Needs no torch: the tensors arrive as NumPy arrays
(`mtkd.teachers.torch_checkpoint` reads the file)."""

from __future__ import annotations

from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.models.cifar.torch_names import TORCH_ONLY, from_torch_layout, torch_names, torch_shape


def state_from_torch(model: nnx.Module, arrays: Mapping[str, Any], arch: str) -> Any:
    """The `nnx.state` of `model` (abstract or not) with every parameter and BatchNorm statistic
    taken from `arrays` (state_dict key -> array). A missing key, an extra key or a wrong shape is
    refused in one line naming the key; torch's `num_batches_tracked` counters are skipped."""
    names = torch_names(model)
    given = {key: value for key, value in arrays.items() if not key.endswith(TORCH_ONLY)}
    missing = [key for key in names if key not in given]
    if missing:
        raise ConfigError(f"the state_dict is not a {arch}: it lacks {missing[0]!r}"
                          + (f" (and {len(missing) - 1} more keys)" if len(missing) > 1 else ""))
    extra = [key for key in given if key not in names]
    if extra:
        raise ConfigError(f"the state_dict is not a {arch}: it has {extra[0]!r}, which {arch} does not"
                          + (f" (and {len(extra) - 1} more keys)" if len(extra) > 1 else ""))
    state = nnx.state(model)
    flat = dict(nnx.to_flat_state(state))
    for key, path in names.items():
        value = np.asarray(given[key])
        variable = flat[path]
        expected = torch_shape(tuple(variable.shape), path)
        if tuple(value.shape) != expected:
            raise ConfigError(f"the state_dict's {key!r} has shape {tuple(value.shape)}; {arch} needs {expected}")
        if not np.issubdtype(value.dtype, np.floating):
            raise ConfigError(f"the state_dict's {key!r} holds {value.dtype} values, not floating point")
        flat[path] = variable.replace(jnp.asarray(from_torch_layout(value, path), variable.dtype))
    return nnx.from_flat_state(flat)


__all__ = ["state_from_torch"]
