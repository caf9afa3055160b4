"""Training a teacher pool from a spec and saving it (Orbax checkpoints plus `pool.json`), and
`ensure_pool`: a pool cache trained on first use. It trains with the trainer (`fit`), so it sits
above `mtkd.teachers`, which only loads and caches pools."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtkd.checkpoints import params_checksum, save_params
from mtkd.data import DatasetSplits, load_dataset
from mtkd.data.splits import index_checksum, validation_checksum
from mtkd.distill.fit import SplitArrays, fit, unstack
from mtkd.distributed import agree, barrier, is_writer
from mtkd.errors import ConfigError
from mtkd.fusion.strategies import StrategyContext, make_strategy
from mtkd.models import abstract_model
from mtkd.progress import stderr_line
from mtkd.interrupts import stop_point
from mtkd.teachers.leak import leak_message, pool_rows
from mtkd.run_checkpoints import CheckpointConfig, FinishedStrategies, RunCheckpoints
from mtkd.runs import CHECKPOINTS, claim_output_dir, replace_text
from mtkd.teachers.external import file_checksum, read_external_logits
from mtkd.teachers.defaults import default_pool_dir
from mtkd.teachers.pool import (POOL_FILE, POOL_FORMAT, TeacherPool, check_pool_matches_splits, load_pool,
                                teacher_accuracy)
from mtkd.teachers.spec import PoolSpec, TeacherSpec, TeacherTraining, load_pool_spec


def corrupt_labels(labels: np.ndarray, fraction: float, num_classes: int, seed: int) -> np.ndarray:
    """Replaces `fraction` of the labels by a different, random class (deterministic in seed)."""
    rng = np.random.default_rng([seed, 1])
    labels = labels.copy()
    chosen = rng.choice(labels.size, size=int(round(fraction * labels.size)), replace=False)
    labels[chosen] = (labels[chosen] + rng.integers(1, num_classes, size=chosen.size)) % num_classes
    return labels


def teacher_training_data(splits: DatasetSplits, training: TeacherTraining) -> tuple[np.ndarray, np.ndarray]:
    """The (possibly reduced and label-corrupted) training set a teacher sees."""
    x, y = splits.x_train, splits.y_train
    if training.data_fraction < 1.0:
        rng = np.random.default_rng([training.seed, 0])
        keep = np.sort(rng.choice(y.size, size=max(1, int(round(training.data_fraction * y.size))), replace=False))
        x, y = x[keep], y[keep]
    if training.label_noise > 0:
        y = corrupt_labels(y, training.label_noise, splits.num_classes, training.seed)
    if training.class_permutation is not None:
        y = np.asarray(training.class_permutation, dtype=y.dtype)[y]
    return x, y


def check_pool_spec(spec: PoolSpec, splits: DatasetSplits) -> None:
    """Fails before any training: models that cannot read the data, bad external files,
    class permutations of another class count."""
    for teacher in spec.teachers:
        permutation = teacher.training.class_permutation
        if permutation is not None and len(permutation) != splits.num_classes:
            raise ConfigError(f"teacher {teacher.name!r}: class_permutation lists {len(permutation)} classes; "
                              f"{splits.name} has {splits.num_classes}")
        if teacher.model is not None:
            abstract_model(teacher.model, splits.input_shape, splits.num_classes)
        else:
            read_external_logits(teacher.external, splits.num_train_full, splits.num_test, splits.num_classes,
                                 (splits.val_split, splits.num_val) if splits.val_split else None)


def train_pool(dataset: str, spec: PoolSpec, out_dir: str | Path, data_dir: str | None = None,
               val_fraction: float = 0.1, split_seed: int = 0, overwrite: bool = False,
               log: Callable[[str], None] | None = None, resume: bool = False,
               checkpoint: CheckpointConfig = CheckpointConfig(), announce: bool = True,
               val_indices: str | None = None, val_split: str | None = None) -> TeacherPool:
    """Trains (or, if `out_dir` already holds this very pool, finished, reuses) every teacher of
    `spec`. A pool whose training was interrupted is continued with `resume` (teachers already
    saved are kept, the one interrupted restarts from its checkpoint in `out_dir/checkpoints/`).

    In a multi-process run every process trains every teacher together (its one seed padded over
    all devices, `mtkd.devices`) and process 0 writes the pool; `out_dir` must be on a file system
    every process sees. `val_indices`: a file of the train split's rows to hold out for validation
    instead of the carve (`mtkd.data.splits.read_val_indices`); `val_split`: the data set's own
    validation split (the teachers then train on all of 'train')."""
    log = log or stderr_line
    splits = load_dataset(dataset, data_dir=data_dir, val_fraction=val_fraction, split_seed=split_seed,
                          val_indices=val_indices, val_split=val_split)
    check_pool_spec(spec, splits)
    # The user's own validation rows by their checksum (absent otherwise: older pools keep theirs).
    own = {"val_indices": index_checksum(splits.val_index)} if val_indices is not None else {}
    own.update({"val_split": val_split} if val_split is not None else {})
    signature = {"kind": "teacher-pool", "dataset": dataset, "val_fraction": val_fraction,
                 "split_seed": split_seed, **own, "spec": spec.to_dict()}
    out = Path(out_dir)
    if not overwrite and agree((out / POOL_FILE).is_file()):  # process 0's view, in every process
        claim_output_dir(out, signature, resume=True)  # a finished pool is a cache; a different one is refused
        log(f"reusing the teacher pool in {out}")
        return load_pool(out, splits)
    out = claim_output_dir(out, signature, overwrite=overwrite, resume=resume, announce=announce)
    checkpoints = RunCheckpoints(out / CHECKPOINTS, checkpoint, log, label=f"teacher pool {out.name}, teacher")
    finished = FinishedStrategies(out / CHECKPOINTS / FinishedStrategies.FILE)

    entries = []
    for index, teacher in enumerate(spec.teachers, start=1):
        started = time.perf_counter()
        kept = finished.rows(teacher.name)
        if kept is not None:
            entry = kept[0]
        elif teacher.model is not None:
            entry = _train_model_teacher(teacher, splits, out, checkpoints.loop(teacher.name))
        else:
            entry = _import_external_teacher(teacher, splits, out)
        log(f"teacher {index}/{len(spec.teachers)} {teacher.name:>12}: val {entry['val_accuracy']:.3f} "
            f"test {entry['test_accuracy']:.3f} " + ("(trained before the resume)" if kept is not None
                                                     else f"({time.perf_counter() - started:.1f}s)"))
        if kept is None:
            finished.add(teacher.name, [entry])
            checkpoints.remove_loops()
        entries.append(entry)
        if index < len(spec.teachers):
            stop_point(f"after teacher {teacher.name} of the pool in {out} (saved)")
    manifest = {"format": POOL_FORMAT, "dataset": dataset, "num_classes": splits.num_classes,
                "input_shape": list(splits.input_shape), "val_fraction": val_fraction,
                "split_seed": split_seed, **own, "val_index_checksum": validation_checksum(splits),
                "spec": spec.to_dict(), "teachers": entries}
    replace_text(out / POOL_FILE, json.dumps(manifest, indent=2) + "\n")  # appears once every teacher is saved
    checkpoints.remove()
    barrier(f"mtkd: pool written to {out}")  # the other processes read what process 0 wrote
    return load_pool(out, splits)


def _train_model_teacher(teacher: TeacherSpec, splits: DatasetSplits, out: Path, checkpoints=None) -> dict:
    x, y = teacher_training_data(splits, teacher.training)
    context = StrategyContext([], [])
    result = fit(teacher.model, splits.input_shape, splits.num_classes,
                 SplitArrays(jnp.asarray(x), jnp.asarray(y)),
                 SplitArrays(jnp.asarray(splits.x_val), jnp.asarray(splits.y_val)),
                 make_strategy("none", context), teacher.training.train_config(), [teacher.training.seed],
                 test=SplitArrays(jnp.asarray(splits.x_test), jnp.asarray(splits.y_test)), checkpoints=checkpoints)
    params = nnx.to_pure_dict(unstack(result.params, 0))
    relative = f"teachers/{teacher.name}"
    if is_writer():
        shutil.rmtree(out / relative, ignore_errors=True)  # a save a kill interrupted
        checksum = save_params(out / relative, params)
    else:
        checksum = params_checksum(params)  # the same parameters as process 0's
    return {"name": teacher.name, "kind": "model", "model": teacher.model.to_dict(),
            "training": teacher.to_dict()["training"], "dataset": splits.name,
            "num_classes": splits.num_classes, "val_accuracy": result.val_accuracy[0],
            "test_accuracy": result.test_accuracy[0], "best_epoch": result.best_epoch[0],
            "checksum": checksum, "path": relative}


def _import_external_teacher(teacher: TeacherSpec, splits: DatasetSplits, out: Path) -> dict:
    logits = read_external_logits(teacher.external, splits.num_train_full, splits.num_test, splits.num_classes,
                                  (splits.val_split, splits.num_val) if splits.val_split else None)
    relative = f"teachers/{teacher.name}.npz"
    if is_writer():
        (out / "teachers").mkdir(exist_ok=True)
        shutil.copyfile(teacher.external, out / relative)
    return {"name": teacher.name, "kind": "external", "source": str(teacher.external),
            "dataset": splits.name, "num_classes": splits.num_classes,
            "val_accuracy": teacher_accuracy(splits.external_val(logits), splits.y_val),
            "test_accuracy": teacher_accuracy(logits["test"], splits.y_test),
            "checksum": file_checksum(teacher.external), "path": relative}


def pool_for(splits: DatasetSplits, spec: str | None = "default", pool_dir: str | Path | None = None,
             data_dir: str | None = None, val_fraction: float = 0.1, split_seed: int = 0,
             val_indices: str | None = None, val_split: str | None = None,
             teacher_epochs: int | None = None) -> TeacherPool:
    """The teacher pool a run uses, checked against its splits: with `spec` (a preset or spec
    file), that pool, trained in `pool_dir` on first use and reused after; with `spec` None, the
    pool saved in `pool_dir`, as it is. Its teachers must have been trained on these splits'
    training part (the same validation rows). `teacher_epochs` trains every teacher of `spec`
    for that many epochs instead (a recipe tried out; its own default folder)."""
    if spec is None:
        pool = load_pool(pool_dir, splits)  # checks the pool's data set and classes
    else:
        if pool_dir is None:
            default = default_pool_dir(splits.name, spec)
            suffix = f"-val{validation_checksum(splits)}" if val_indices is not None or val_split is not None else ""
            suffix += f"-teacher-epochs{teacher_epochs}" if teacher_epochs is not None else ""
            pool_dir = default.with_name(default.name + suffix) if suffix else None  # another split's or length's cache
        pool = ensure_pool(splits.name, spec, out_dir=pool_dir, data_dir=data_dir, val_fraction=val_fraction,
                           split_seed=split_seed, val_indices=val_indices, val_split=val_split,
                           teacher_epochs=teacher_epochs)
    check_pool_matches_splits(pool, splits)
    warn_of_leaks(pool)
    return pool


def warn_of_leaks(pool: TeacherPool, log: Callable[[str], None] | None = None) -> None:
    """Says, before any training, which teachers look as if they saw the validation split."""
    message = leak_message(pool_rows(pool))
    if message:
        (log or stderr_line)("warning: " + message.replace("**", ""))


def ensure_pool(dataset: str = "mnist1d", spec: str = "default", out_dir: str | Path | None = None,
                data_dir: str | None = None, val_fraction: float = 0.1, split_seed: int = 0,
                val_indices: str | None = None, val_split: str | None = None,
                teacher_epochs: int | None = None) -> TeacherPool:
    """The pool of `spec` for `dataset`: reused if already trained in `out_dir`, else trained
    (every teacher for `teacher_epochs` epochs, if given)."""
    pool_spec = load_pool_spec(spec, dataset)
    if teacher_epochs is not None:
        pool_spec = pool_spec.with_epochs(teacher_epochs)
    out = Path(out_dir) if out_dir is not None else default_pool_dir(dataset, spec)
    # The cache's own directory: a training that was interrupted is continued.
    return train_pool(dataset, pool_spec, out, data_dir=data_dir, val_fraction=val_fraction, split_seed=split_seed,
                      resume=True, announce=False, val_indices=val_indices, val_split=val_split)
