"""What a benchmark ran on, written beside its numbers: the accelerator (kind, count, memory), the
host (CPU model, cores this process may use, memory) and the library versions. Times only mean
something next to the machine that gave them; ratios carry over better, but not exactly.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any, Sequence

PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "torch")


def device_memory(device) -> dict[str, int | None]:
    """An accelerator's memory limit and peak use so far, in bytes (None where the backend keeps no
    such statistics, as XLA:CPU does not)."""
    stats = device.memory_stats() or {}
    return {"bytes_limit": stats.get("bytes_limit"), "peak_bytes_in_use": stats.get("peak_bytes_in_use")}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; a container may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of `packages` (those that are installed)."""
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def describe_machine(devices: Sequence[Any] | None = None) -> dict[str, Any]:
    """The machine as a JSON-able dict; `devices` defaults to JAX's local devices."""
    if devices is None:
        import jax

        devices = jax.local_devices()
    first = devices[0]
    return {
        "backend": first.platform, "device_kind": first.device_kind, "device_count": len(devices),
        "device_memory": device_memory(first),
        "host": {"cpu": cpu_model(), "architecture": platform.machine(), "cores_usable": usable_cores(),
                 "cores": os.cpu_count(), "memory_bytes": host_memory_bytes(), "system": sys.platform},
        "versions": versions(),
    }


__all__ = ["describe_machine", "device_memory", "versions"]
