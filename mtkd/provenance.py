"""Where a result came from: the code (mtkd's version, its git commit), the libraries, the
machine, and when. Written into every run.json and results.json, so that a number found in a
folder a year later still says what produced it.
"""

from __future__ import annotations

import datetime
import functools
import socket
import subprocess
from pathlib import Path
from typing import Any

# The libraries whose versions change numbers or files (beside Python's own).
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "tensorflow-datasets", "gymnasium",
             "torch")


def now() -> str:
    """The current time in UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@functools.cache
def git_state() -> dict[str, Any] | None:
    """{"commit", "dirty"} of the git checkout mtkd runs from (an editable install), or None where
    it was installed from a wheel or git is missing."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


@functools.cache
def _static() -> dict[str, Any]:
    import mtkd
    from mtkd.machine import describe_machine, versions

    machine = describe_machine()  # backend, devices and host (CPU, cores, memory)
    machine.pop("versions", None)
    machine.pop("device_memory", None)  # peak use so far: it changes during the run
    return {"mtkd": mtkd.__version__, "git": git_state(), "versions": versions(LIBRARIES),
            "hostname": socket.gethostname(), "machine": machine}


def provenance(**times: str | None) -> dict[str, Any]:
    """The code, libraries and machine of this process, with the times given (`started=...`,
    `finished=...`)."""
    return {**_static(), **{name: value for name, value in times.items() if value is not None}}


__all__ = ["LIBRARIES", "git_state", "now", "provenance"]
