"""External teachers: logits computed elsewhere (any framework), stored as a `.npz`.

Format: a NumPy `.npz` with two float arrays, `train` of shape (N_train, C) and `test` of shape
(N_test, C): one row of logits per example of the data set's TFDS `train` and `test` splits,
in TFDS order (the order `mtkd data` reads them). The validation split is carved from `train`
by mtkd, so external teachers need no separate validation logits.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from mtkd.errors import CheckpointError


def read_external_logits(path: str | Path, num_train: int, num_test: int, num_classes: int,
                         val: tuple[str, int] | None = None) -> dict[str, np.ndarray]:
    """Loads and checks an external teacher file against the data set's split sizes and classes;
    `val` (split name, rows): the data set's own validation split, whose logits the file needs too."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"external teacher file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key], dtype=np.float32) for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        # NumPy reads a file that is no archive as a pickle, and says so: not the user's problem.
        reason = "not a NumPy .npz archive" if "pickled" in str(error) else str(error)
        raise CheckpointError(f"external teacher file {path} is not a readable .npz: {reason}") from None
    needed = {"train": num_train, "test": num_test, **({val[0]: val[1]} if val else {})}
    missing = sorted(set(needed) - set(arrays))
    if missing:
        raise CheckpointError(f"external teacher file {path} lacks array(s) {', '.join(missing)} "
                              f"(needs {', '.join(repr(s) for s in needed)} logits)")
    for split, rows in needed.items():
        logits = arrays[split]
        if logits.ndim != 2 or logits.shape != (rows, num_classes):
            raise CheckpointError(f"external teacher file {path}: '{split}' has shape {logits.shape}, the data set "
                                  f"needs ({rows}, {num_classes}) (rows = examples, columns = classes)")
        if not np.all(np.isfinite(logits)):
            raise CheckpointError(f"external teacher file {path}: '{split}' holds NaN or infinite logits")
    return {split: arrays[split] for split in needed}


def file_checksum(path: str | Path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
