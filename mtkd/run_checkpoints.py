"""Checkpoints of a long run at epoch boundaries, so that a killed run resumes exactly.

`EpochCheckpoints` wraps an Orbax `CheckpointManager` in one directory: each checkpoint holds a
pytree of arrays (everything the rest of the run depends on: the training state of every
vmapped seed, the best parameters so far, ...) and a JSON record (the metrics history and any
other plain state). Orbax writes each checkpoint under a temporary name and renames it when
complete, and only the newest two are kept. A checkpoint that cannot be read back (a torn or
corrupted write) is reported and the one before it is used.

When to save is `CheckpointConfig`: every N epochs and/or every S seconds (default 60 s, so
checkpointing costs a few milliseconds per minute of training).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp

from mtkd.distributed import agree, agree_number, is_writer
from mtkd.interrupts import RunStopped, requested
from mtkd.checkpoint_config import CheckpointConfig  # noqa: F401  (its home is light: the CLI reads it)
from mtkd.runs import CHECKPOINTS, claim_output_dir, finished_before, replace_text

KEEP = 2


def _is_key(leaf) -> bool:
    return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _to_storable(tree):
    """Typed PRNG keys become their raw key data (Orbax stores plain arrays)."""
    return jax.tree.map(lambda leaf: jax.random.key_data(leaf) if _is_key(leaf) else leaf, tree)


def _from_storable(tree, template):
    return jax.tree.map(lambda stored, like: jax.random.wrap_key_data(stored, impl=jax.random.key_impl(like))
                        if _is_key(like) else stored, tree, template)


class EpochCheckpoints:
    """Checkpoints of one loop in `directory`; `log` tells the user about fallbacks."""

    def __init__(self, directory: str | Path, config: CheckpointConfig = CheckpointConfig(),
                 log: Callable[[str], None] | None = None, label: str | None = None):
        self.directory = Path(directory).absolute()
        self.label = label or self.directory.name  # the loop's name in messages (a strategy, a teacher)
        self.config = config
        self.log = log or (lambda line: None)
        self._last_save = time.monotonic()
        self._manager = None
        self._extras: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]] = {}

    def attach(self, name: str, get: Callable[[], Any], put: Callable[[Any], None]) -> None:
        """Plain JSON-able state of the caller's (e.g. a list of records) saved with every checkpoint."""
        self._extras[name] = (get, put)

    def _open(self) -> ocp.CheckpointManager:
        if self._manager is None:
            if is_writer():  # Orbax's own multi-host saves wait for the primary process's folder
                self.directory.mkdir(parents=True, exist_ok=True)
            # Synchronous saves: a checkpoint is complete on disk before training goes on.
            options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, enable_async_checkpointing=False, create=True)
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        return self._manager

    def due(self, epoch: int) -> bool:
        by_epochs = self.config.every_epochs is not None and epoch % self.config.every_epochs == 0
        by_time = (self.config.every_seconds is not None
                   and time.monotonic() - self._last_save >= self.config.every_seconds)
        return by_epochs or by_time

    def decide(self, epoch: int) -> int:
        """What to do at this epoch boundary, process 0's word on every process: a stop signal's
        number (> 0: save, then `stop`), -1 (a checkpoint is due) or 0 (go on)."""
        return agree_number(requested() or (-1 if self.due(epoch) else 0))

    def stop(self, decision: int, epoch: int, of: int, unit: str = "epoch") -> None:
        """After the checkpoint of a `decide` that asked for a stop: raises `RunStopped`."""
        if decision > 0:
            raise RunStopped(decision, f"at {unit} {epoch} of {of} of {self.label}")

    def save(self, epoch: int, arrays: Any, record: Mapping[str, Any]) -> None:
        record = {**record, **{name: get() for name, (get, _) in self._extras.items()}}
        manager = self._open()
        manager.save(epoch, args=ocp.args.Composite(arrays=ocp.args.StandardSave(_to_storable(arrays)),
                                                    record=ocp.args.JsonSave(record)), force=True)
        manager.wait_until_finished()
        self._last_save = time.monotonic()

    def restore(self, template: Any) -> tuple[int, Any, dict] | None:
        """(epoch, arrays shaped like `template`, record) of the newest readable checkpoint, or
        None if there is none. Unreadable ones are reported and deleted (the run saves those
        epochs again)."""
        if not self.directory.is_dir():
            return None
        manager = self._open()
        # Restored where the template lives (its sharding over devices too), so a resumed run
        # computes on the same devices as the run it continues.
        abstract = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(
            leaf.shape, leaf.dtype, sharding=leaf.sharding if isinstance(leaf, jax.Array) else None),
            _to_storable(template))
        found, unreadable = None, []
        for step in sorted(manager.all_steps(), reverse=True):
            try:
                restored = manager.restore(step, args=ocp.args.Composite(
                    arrays=ocp.args.StandardRestore(abstract), record=ocp.args.JsonRestore()))
                arrays, record = restored["arrays"], dict(restored["record"])
                if any(np.shape(a) != np.shape(b) for a, b in zip(jax.tree.leaves(arrays), jax.tree.leaves(abstract))):
                    raise ValueError("shapes differ from the run's")
            except Exception as error:  # Orbax raises many kinds for torn or corrupt files
                self.log(f"checkpoint of epoch {step} in {self.directory} is unreadable "
                         f"({type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}); "
                         f"using the one before it")
                unreadable.append(step)
                continue
            found = step, arrays, record
            break
        if unreadable:
            self._manager.close()
            self._manager = None
            for step in unreadable if is_writer() else ():
                shutil.rmtree(self.directory / str(step), ignore_errors=True)
        if found is None:
            return None
        step, arrays, record = found
        for name, (_, put) in self._extras.items():
            put(record.pop(name))
        return int(step), _from_storable(arrays, template), record

    def part(self, name: str) -> "EpochCheckpoints":
        """The checkpoints of a sub-loop (e.g. one peer of several trained in turn), in a subfolder;
        a loop that has parts does not save checkpoints of its own."""
        return EpochCheckpoints(self.directory / name, self.config, self.log, f"{self.label}/{name}")

    def remove(self) -> None:
        """Drops the checkpoints once the loop's results are written (they are not needed for them)."""
        if self._manager is not None:
            self._manager.close()
            self._manager = None
        if is_writer():
            shutil.rmtree(self.directory, ignore_errors=True)


class RunCheckpoints:
    """The checkpoints of one command's run (`OUT/checkpoints/`): one `EpochCheckpoints` per loop."""

    def __init__(self, root: str | Path, config: CheckpointConfig = CheckpointConfig(),
                 log: Callable[[str], None] | None = None, label: str = ""):
        self.root = Path(root)
        self.config = config
        self.log = log
        self.label = label  # the run's part these loops belong to ("" for the run itself)

    def _folder(self, name: str) -> Path:
        return self.root / name.replace(":", "_").replace("/", "_")  # strategy names as folder names

    def loop(self, name: str) -> EpochCheckpoints:
        return EpochCheckpoints(self._folder(name), self.config, self.log, self._named(name))

    def part(self, name: str) -> "RunCheckpoints":
        """The checkpoints of one step of this run that has loops of its own, in a subfolder."""
        return RunCheckpoints(self._folder(name), self.config, self.log, self._named(name))

    def _named(self, name: str) -> str:
        return f"{self.label}/{name}" if self.label else name

    def remove_loops(self) -> None:
        """Drops every loop's checkpoints (plain files under `root`, such as the finished list, stay)."""
        if self.root.is_dir():
            for path in self.root.iterdir():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)

    def remove(self) -> None:
        if is_writer():
            shutil.rmtree(self.root, ignore_errors=True)


def start_run(out: str | Path, signature: dict, *, overwrite: bool, resume: bool, config: CheckpointConfig,
              log: Callable[[str], None]) -> tuple[Path, "RunCheckpoints | None"]:
    """Claims `out` for the run `signature` (`mtkd.runs.claim_output_dir`) and returns it with the
    run's checkpoints; None instead of checkpoints when a resumed run had already finished."""
    out = claim_output_dir(out, signature, overwrite=overwrite, resume=resume)
    # In a multi-process run the others follow process 0's verdict.
    if agree(finished_before(out, log=log) if is_writer() else False):
        return out, None
    return out, RunCheckpoints(out / CHECKPOINTS, config, log)


class FinishedStrategies:
    """Which strategies of a multi-strategy run are done, with their `results.json` rows: a JSON
    file rewritten whole after each one (so a resume skips them and keeps their rows as they were)."""

    FILE = "finished.json"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._rows: dict[str, list] = {}
        if self.path.is_file():
            try:
                self._rows = dict(json.loads(self.path.read_text()))
            except ValueError:  # a write is atomic, so this is damage from outside: rerun those strategies
                self._rows = {}

    def rows(self, name: str) -> list | None:
        return self._rows.get(name)

    def add(self, name: str, rows: list) -> None:
        self._rows[name] = rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        replace_text(self.path, json.dumps(self._rows, indent=1) + "\n")


__all__ = ["CHECKPOINTS", "start_run", "CheckpointConfig", "EpochCheckpoints", "FinishedStrategies", "RunCheckpoints"]
