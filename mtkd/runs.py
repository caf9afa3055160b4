"""Output directories: refuse to mix two different runs in one directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mtkd.errors import OutputExistsError

RUN_FILE = "run.json"


def claim_output_dir(out: str | Path, signature: dict[str, Any], overwrite: bool = False) -> Path:
    """Makes `out` ready for the run described by `signature` (a JSON-able dict).

    An empty or missing directory, or one holding the same run, is used as is. One holding a
    different run (or unknown files) is refused unless `overwrite`, in which case it is
    emptied. Call this before any training, so a refusal loses nothing.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        previous = _read_signature(out)
        if previous != _normalise(signature):
            if not overwrite:
                what = "a different run" if previous is not None else "files of another program"
                raise OutputExistsError(f"output directory {out} already holds {what}; "
                                        f"choose another --out or pass --overwrite")
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_FILE).write_text(json.dumps(_normalise(signature), indent=2, sort_keys=True) + "\n")
    return out


def _normalise(signature: dict[str, Any]) -> Any:
    return json.loads(json.dumps(signature, sort_keys=True, default=str))


def _read_signature(out: Path) -> Any:
    try:
        return json.loads((out / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
