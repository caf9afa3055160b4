"""A loaded, frozen teacher pool and its cached outputs.

Teachers are never trained here. Their logits on each split are computed once (inputs are not
augmented) and kept, in memory and on disk for the next run (`mtkd.teachers.output_cache`);
teachers that share an architecture and its options are stacked and run under one `jax.vmap`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtkd.checkpoints import restore_params
from mtkd.data import DatasetSplits
from mtkd.data.splits import carve_validation, index_checksum, validation_checksum
from mtkd.errors import CheckpointError, ConfigError, DatasetError
from mtkd.fusion.strategies import StrategyContext
from mtkd.models import ModelSpec, abstract_model
from mtkd.models.apply import apply_model, predict
from mtkd.teachers.external import file_checksum, read_external_logits
from mtkd.teachers.output_cache import cached_outputs, outputs_key

POOL_FILE = "pool.json"
POOL_FORMAT = "mtkd-pool/1"
SPLITS = ("train", "val", "test")
PREDICT_BATCH = 1024  # examples per forward pass of the teachers


def teacher_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


class TeacherPool:
    """Frozen teachers of one data set. `logits(splits)` -> {"train"|"val"|"test": (K, N, C)}."""

    def __init__(self, directory: Path, manifest: Mapping[str, Any], splits: DatasetSplits):
        self.directory = directory
        self.manifest = dict(manifest)
        self.dataset = manifest["dataset"]
        self.num_classes = int(manifest["num_classes"])
        self.entries = list(manifest["teachers"])
        self.names = [entry["name"] for entry in self.entries]
        self.val_accuracy = [float(entry["val_accuracy"]) for entry in self.entries]
        self.test_accuracy = [float(entry["test_accuracy"]) for entry in self.entries]
        self._check_against(splits)
        # The sizes the accuracies above were read on (the leak check's standard errors).
        self.num_val, self.num_test = splits.num_val, splits.num_test
        self._models: dict[str, tuple[Any, Any]] = {}  # name -> (graphdef, params)
        self._external: dict[str, dict[str, np.ndarray]] = {}
        for entry in self.entries:
            if entry["kind"] == "model":
                self._models[entry["name"]] = self._restore_model(entry, splits)
            else:
                self._external[entry["name"]] = self._read_external(entry, splits)
        self._logits_cache: dict[tuple, dict[str, jax.Array]] = {}
        self._features_cache: dict[tuple, dict[str, list[jax.Array]]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def model_params(self, name: str):
        """A model teacher's frozen parameters (an nnx.State); KeyError for an external teacher."""
        return self._models[name][1]

    def _check_against(self, splits: DatasetSplits) -> None:
        if self.num_classes != splits.num_classes:
            raise DatasetError(f"teacher pool {self.directory} predicts {self.num_classes} classes but data set "
                               f"{splits.name!r} has {splits.num_classes}")
        if self.dataset != splits.name:
            raise DatasetError(f"teacher pool {self.directory} was trained on {self.dataset!r}, not {splits.name!r}")
        for entry in self.entries:
            if int(entry.get("num_classes", self.num_classes)) != splits.num_classes:
                raise DatasetError(f"teacher {entry['name']!r} predicts {entry['num_classes']} classes but data set "
                                   f"{splits.name!r} has {splits.num_classes}")

    def _restore_model(self, entry: Mapping[str, Any], splits: DatasetSplits):
        spec = ModelSpec.from_dict(entry["model"])
        graphdef, abstract_state = nnx.split(abstract_model(spec, splits.input_shape, splits.num_classes))
        pure = restore_params(self.directory / entry["path"], nnx.to_pure_dict(abstract_state), entry["checksum"])
        nnx.replace_by_pure_dict(abstract_state, pure)
        return graphdef, abstract_state

    def _read_external(self, entry: Mapping[str, Any], splits: DatasetSplits) -> dict[str, np.ndarray]:
        path = self.directory / entry["path"]
        if path.is_file() and file_checksum(path) != entry["checksum"]:
            raise CheckpointError(f"external teacher file {path} does not match its recorded checksum")
        return read_external_logits(path, splits.num_train_full, splits.num_test, splits.num_classes,
                                    (splits.val_split, splits.num_val) if splits.val_split else None)

    def logits(self, splits: DatasetSplits) -> dict[str, jax.Array]:
        """Teacher logits on the train, val and test splits: each (K, N_split, C), pool order."""
        key = _splits_key(splits)
        if key not in self._logits_cache:
            inputs = {split: splits.split(split)[0] for split in SPLITS}
            disk_key = outputs_key(self.entries, inputs, {"train": splits.train_index, "val": splits.val_index},
                                   {"predict_batch": PREDICT_BATCH, **({"val_split": splits.val_split}
                                                                       if splits.val_split else {})})
            shapes = {split: (len(self), len(inputs[split]), self.num_classes) for split in SPLITS}
            stored = cached_outputs(disk_key, shapes, lambda: self._compute_logits(splits))
            self._logits_cache[key] = {split: jnp.asarray(stored[split]) for split in SPLITS}
        return self._logits_cache[key]

    def _compute_logits(self, splits: DatasetSplits) -> dict[str, np.ndarray]:
        per_teacher: dict[str, dict[str, np.ndarray]] = {}
        for group in self._architecture_groups():
            stacked = self._group_outputs(group, splits, layer=None)
            for i, name in enumerate(group):
                per_teacher[name] = {split: stacked[split][i] for split in SPLITS}
        for name, logits in self._external.items():
            per_teacher[name] = {"train": logits["train"][splits.train_index],
                                 "val": splits.external_val(logits), "test": logits["test"]}
        return {split: np.stack([np.asarray(per_teacher[name][split]) for name in self.names]) for split in SPLITS}

    def features(self, splits: DatasetSplits, layer: str) -> dict[str, list[jax.Array]]:
        """A named intermediate feature of every model teacher, per split: lists in pool order
        (shapes differ across architectures). External teachers have none."""
        if self._external:
            raise CheckpointError(f"external teachers ({', '.join(self._external)}) provide logits only, no features")
        key = (_splits_key(splits), layer)
        if key not in self._features_cache:
            per_teacher = {}
            for group in self._architecture_groups():
                stacked = self._group_outputs(group, splits, layer=layer)
                for i, name in enumerate(group):
                    per_teacher[name] = {split: stacked[split][i] for split in SPLITS}
            self._features_cache[key] = {split: [per_teacher[n][split] for n in self.names] for split in SPLITS}
        return self._features_cache[key]

    def _architecture_groups(self) -> list[list[str]]:
        groups: dict[str, list[str]] = {}
        for entry in self.entries:
            if entry["kind"] == "model":
                groups.setdefault(ModelSpec.from_dict(entry["model"]).key(), []).append(entry["name"])
        return list(groups.values())

    def _group_outputs(self, names: list[str], splits: DatasetSplits, layer: str | None) -> dict[str, jax.Array]:
        """Outputs of teachers sharing one architecture, stacked and computed under one vmap."""
        graphdef = self._models[names[0]][0]
        params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[self._models[n][1] for n in names])
        if layer is None:
            run = jax.jit(jax.vmap(lambda p, x: predict(graphdef, p, x, PREDICT_BATCH), in_axes=(0, None)))
        else:
            def features(p, x):
                out = apply_model(graphdef, p, x)[1]
                if layer not in out:
                    raise CheckpointError(f"teacher model has no feature {layer!r}; it has {', '.join(sorted(out))}")
                return out[layer]
            run = jax.jit(jax.vmap(features, in_axes=(0, None)))
        return {split: run(params, jnp.asarray(splits.split(split)[0])) for split in SPLITS}

    def strategy_context(self, options: Mapping[str, Any] | None = None) -> StrategyContext:
        return StrategyContext(tuple(self.names), tuple(self.val_accuracy), dict(options or {}))


def _splits_key(splits: DatasetSplits) -> tuple:
    """Identifies which examples each split holds (a restricted training split is a new key)."""
    return (splits.name, hash(splits.train_index.tobytes()), hash(splits.val_index.tobytes()), splits.val_split,
            splits.num_test)


def load_pool(directory: str | Path, splits: DatasetSplits) -> TeacherPool:
    """Loads the pool saved in `directory` for the data set `splits` (checks classes and checksums)."""
    directory = Path(directory)
    manifest_path = directory / POOL_FILE
    if not manifest_path.is_file():
        raise CheckpointError(f"{directory} holds no teacher pool ({POOL_FILE} is missing); "
                              f"train one with `mtkd teachers train`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as error:
        raise CheckpointError(f"{manifest_path} is not valid JSON: {error}") from None
    if manifest.get("format") != POOL_FORMAT:
        raise CheckpointError(f"{manifest_path} has format {manifest.get('format')!r}, expected {POOL_FORMAT!r}")
    return TeacherPool(directory, manifest, splits)


def check_pool_matches_splits(pool: "TeacherPool", splits: DatasetSplits) -> None:
    """Teachers were trained on the pool's training split: a different validation split would
    put examples the teachers learned from into the student's validation set. Pools record a
    checksum of their validation rows (`val_index_checksum`); older ones, their val_fraction and
    split_seed, from which the same rows are carved again."""
    manifest = pool.manifest
    expected = manifest.get("val_index_checksum")
    if expected is None:
        carved = carve_validation(splits.num_train_full, float(manifest["val_fraction"]), int(manifest["split_seed"]))
        expected = index_checksum(carved[1])
    if validation_checksum(splits) != expected:
        raise ConfigError(f"teacher pool {pool.directory} was trained with another validation split (val_fraction "
                          f"{manifest['val_fraction']}, split_seed {manifest['split_seed']}"
                          f"{', val_indices ' + manifest['val_indices'] if manifest.get('val_indices') else ''}"
                          f"{', val_split ' + manifest['val_split'] if manifest.get('val_split') else ''}); "
                          f"use the same, or train a pool for this one")