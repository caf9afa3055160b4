"""`mtkd.machine`: the machine description that `mtkd bench` writes beside its numbers."""

import json
import os
from pathlib import Path

import jax
import pytest

from mtkd.machine import describe_machine, device_memory, versions


class FakeDevice:
    platform, device_kind = "gpu", "NVIDIA H100 80GB HBM3"

    def __init__(self, stats):
        self.stats = stats

    def memory_stats(self):
        return self.stats


def test_this_machine_as_jax_and_the_kernel_see_it():
    machine = describe_machine()
    json.dumps(machine)  # it goes into bench.json
    devices = jax.local_devices()
    assert machine["backend"] == devices[0].platform == jax.default_backend()
    assert machine["device_kind"] == devices[0].device_kind and machine["device_count"] == len(devices)
    assert machine["host"]["cores_usable"] == len(os.sched_getaffinity(0)) <= machine["host"]["cores"]
    assert machine["versions"]["jax"] == jax.__version__
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        pytest.skip("no /proc/meminfo to check the host's memory against")
    total_kib = int(next(line for line in meminfo.read_text().splitlines() if line.startswith("MemTotal")).split()[1])
    assert machine["host"]["memory_bytes"] == total_kib * 1024
    assert machine["host"]["cpu"] in Path("/proc/cpuinfo").read_text()


def test_device_memory_from_the_backend_statistics():
    stats = {"bytes_limit": 79 * 2**30, "peak_bytes_in_use": 3 * 2**30, "bytes_in_use": 2**30}
    assert device_memory(FakeDevice(stats)) == {"bytes_limit": 79 * 2**30, "peak_bytes_in_use": 3 * 2**30}
    assert device_memory(FakeDevice(None)) == {"bytes_limit": None, "peak_bytes_in_use": None}  # XLA:CPU
    described = describe_machine([FakeDevice(stats), FakeDevice(stats)])
    assert described["device_kind"] == "NVIDIA H100 80GB HBM3" and described["device_count"] == 2
    assert described["device_memory"]["bytes_limit"] == 79 * 2**30


def test_versions_skip_what_is_not_installed():
    found = versions(("numpy", "surely-not-an-installed-package"))
    assert set(found) == {"python", "numpy"}
    import numpy
    assert found["numpy"] == numpy.__version__
