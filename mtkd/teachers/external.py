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


def read_external_logits(path: str | Path, num_train: int, num_test: int, num_classes: int) -> dict[str, np.ndarray]:
    """Loads and checks an external teacher file against the data set's split sizes and classes."""
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
    missing = sorted({"train", "test"} - set(arrays))
    if missing:
        raise CheckpointError(f"external teacher file {path} lacks array(s) {', '.join(missing)} "
                              f"(needs 'train' and 'test' logits)")
    for split, rows in (("train", num_train), ("test", num_test)):
        logits = arrays[split]
        if logits.ndim != 2 or logits.shape != (rows, num_classes):
            raise CheckpointError(f"external teacher file {path}: '{split}' has shape {logits.shape}, the data set "
                                  f"needs ({rows}, {num_classes}) (rows = examples, columns = classes)")
        if not np.all(np.isfinite(logits)):
            raise CheckpointError(f"external teacher file {path}: '{split}' holds NaN or infinite logits")
    return {"train": arrays["train"], "test": arrays["test"]}


def file_checksum(path: str | Path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
