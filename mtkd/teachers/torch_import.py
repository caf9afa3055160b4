"""`mtkd teachers import`: PyTorch checkpoints of the reference CIFAR networks (CRD / mdistiller
definitions, the community's published teachers) as an mtkd teacher pool.

Each checkpoint is a state_dict, raw or under a `model` / `state_dict` key as the published files
store it. Every file is read and checked (architecture, keys, shapes) before the output folder is
claimed; the pool then holds each teacher's parameters and BatchNorm statistics (Orbax, with
checksums) and its validation and test accuracy in inference mode, like a pool mtkd trained.
torch is needed to read the files only (`pip install 'mtkd[torch]'`)."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtkd.checkpoints import save_params
from mtkd.data import load_dataset
from mtkd.data.splits import validation_checksum
from mtkd.errors import ConfigError
from mtkd.models import ModelSpec, abstract_model
from mtkd.models.apply import predict
from mtkd.models.cifar.torch_import import state_from_torch
from mtkd.models.cifar.torch_names import torch_names
from mtkd.progress import stderr_line
from mtkd.runs import claim_output_dir, replace_text
from mtkd.teachers.external import file_checksum
from mtkd.teachers.pool import POOL_FILE, POOL_FORMAT, PREDICT_BATCH, TeacherPool, load_pool, teacher_accuracy

INSTALL_HINT = "pip install 'mtkd[torch]'"
WRAPPER_KEYS = ("model", "state_dict")  # where published checkpoints keep the state_dict


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch checkpoint file as NumPy arrays (read with `weights_only`: no code
    in the file runs)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--torch {path} does not exist")
    try:
        torch = importlib.import_module("torch")
    except ModuleNotFoundError:
        raise ConfigError(f"reading PyTorch checkpoints needs torch, which is not installed: {INSTALL_HINT}") from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and torch's own errors alike
        raise ConfigError(f"--torch {path} is not a PyTorch checkpoint torch.load can read safely: "
                          f"{str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}") from None
    for key in WRAPPER_KEYS:
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not data or not all(hasattr(v, "detach") for v in data.values()):
        raise ConfigError(f"--torch {path} holds no state_dict (a mapping of names to tensors, raw or under "
                          f"{' or '.join(repr(k) for k in WRAPPER_KEYS)})")
    # DataParallel checkpoints prefix every key with "module.".
    if all(key.startswith("module.") for key in data):
        data = {key[len("module."):]: value for key, value in data.items()}
    return {key: value.detach().cpu().float().numpy() if value.is_floating_point() else value.detach().cpu().numpy()
            for key, value in data.items()}


def teacher_names(archs: Sequence[str], names: Sequence[str] | None) -> list[str]:
    """The given names, or each architecture's name (numbered where one repeats)."""
    if names:
        if len(names) != len(archs):
            raise ConfigError(f"--name given {len(names)} times for {len(archs)} teachers; give it once per --torch or not at all")
        if len(set(names)) != len(names):
            raise ConfigError(f"teacher names listed twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
        return list(names)
    counts: dict[str, int] = {}
    out = []
    for arch in archs:
        counts[arch] = counts.get(arch, 0) + 1
        out.append(arch if archs.count(arch) == 1 else f"{arch}_{counts[arch]}")
    return out


def import_torch_teachers(dataset: str, archs: Sequence[str], files: Sequence[str | Path], out: str | Path,
                          names: Sequence[str] | None = None, data_dir: str | None = None, val_fraction: float = 0.1,
                          split_seed: int = 0, overwrite: bool = False,
                          log: Callable[[str], None] | None = None) -> TeacherPool:
    """Converts `files[i]` (a state_dict of the reference `archs[i]`) into the teacher pool `out`
    for `dataset`; returns the loaded pool."""
    log = log or stderr_line
    if not archs or len(archs) != len(files):
        raise ConfigError(f"give one --arch per --torch file (got {len(archs)} --arch and {len(files)} --torch)")
    labels = teacher_names(list(archs), names)
    for arch in archs:
        model = abstract_model(ModelSpec(arch), (32, 32, 3), 100)  # an unknown name fails here
        try:
            torch_names(model)
        except TypeError:
            raise ConfigError(f"--arch {arch}: only the CIFAR zoo's architectures import from PyTorch "
                              f"(mtkd.models.cifar.ARCHITECTURES)") from None
    splits = load_dataset(dataset, data_dir=data_dir, val_fraction=val_fraction, split_seed=split_seed)
    teachers = []
    for label, arch, path in zip(labels, archs, files):  # every file read and checked before --out is claimed
        spec = ModelSpec(arch)
        model = abstract_model(spec, splits.input_shape, splits.num_classes)
        try:
            state = state_from_torch(model, read_state_dict(path), arch)
        except ConfigError as error:
            raise ConfigError(f"--torch {path}: {error}") from None
        teachers.append((label, spec, Path(path), nnx.graphdef(model), state))
    signature = {"kind": "teacher-import", "dataset": dataset, "val_fraction": val_fraction, "split_seed": split_seed,
                 "teachers": [{"name": label, "arch": spec.arch, "checksum": file_checksum(path)}
                              for label, spec, path, _, _ in teachers]}
    out = claim_output_dir(out, signature, overwrite=overwrite)
    entries = []
    for label, spec, path, graphdef, state in teachers:
        accuracy = {}
        for split, (x, y) in {"val": (splits.x_val, splits.y_val), "test": (splits.x_test, splits.y_test)}.items():
            logits = predict(graphdef, state, jnp.asarray(x), min(PREDICT_BATCH, max(1, len(x)))) if len(x) else None
            accuracy[split] = teacher_accuracy(np.asarray(logits), y) if logits is not None else float("nan")
        relative = f"teachers/{label}"
        shutil.rmtree(out / relative, ignore_errors=True)
        checksum = save_params(out / relative, nnx.to_pure_dict(state))
        entries.append({"name": label, "kind": "model", "model": spec.to_dict(),
                        "training": {"imported_from": str(path), "checksum": signature["teachers"][len(entries)]["checksum"]},
                        "dataset": dataset, "num_classes": splits.num_classes, "val_accuracy": accuracy["val"],
                        "test_accuracy": accuracy["test"], "best_epoch": 0, "checksum": checksum, "path": relative})
        log(f"teacher {label:>12} ({spec.arch} from {path.name}): val {accuracy['val']:.3f} test {accuracy['test']:.3f}")
    manifest: dict[str, Any] = {"format": POOL_FORMAT, "dataset": dataset, "num_classes": splits.num_classes,
                                "input_shape": list(splits.input_shape), "val_fraction": val_fraction,
                                "split_seed": split_seed, "val_index_checksum": validation_checksum(splits),
                                "spec": {"name": Path(out).name, "imported": signature["teachers"]},
                                "teachers": entries}
    replace_text(out / POOL_FILE, json.dumps(manifest, indent=2) + "\n")
    return load_pool(out, splits)


__all__ = ["import_torch_teachers", "read_state_dict", "teacher_names"]
