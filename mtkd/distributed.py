"""Multi-process runs with JAX's own multi-controller runtime (`jax.distributed`).

Every process runs the same command. `start` joins them (an explicit coordinator, or what
`jax.distributed.initialize()` detects on its own, such as SLURM); after that `jax.devices()`
lists every process's devices and `mtkd.devices.seed_placement` splits the seeds over all of them.
Arrays split over processes are read back with `to_host` (an all-gather), and only the writer,
process 0, writes files (`is_writer`); checkpoints are saved by every process through Orbax, which
coordinates multi-host saves itself. A process that dies stops sending heartbeats and the others
abort after `heartbeat_seconds`, with the runtime's message naming the dead task, instead of
waiting for it forever.
"""

from __future__ import annotations

import dataclasses
import re

import jax
import numpy as np

from mtkd.config_flags import DictConfig
from mtkd.errors import ConfigError

HEARTBEAT_SECONDS = 20  # JAX's default is 100 s: a dead peer should stop the others within a minute
_ADDRESS = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


@dataclasses.dataclass(frozen=True)
class DistributedConfig(DictConfig):
    """coordinator_address HOST:PORT, num_processes and process_id start an explicit multi-process
    run (all three, or none); `auto` lets `jax.distributed.initialize()` read them from the
    cluster's environment (SLURM, ...). Neither: a single-process run."""

    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    auto: bool = False
    heartbeat_seconds: int = HEARTBEAT_SECONDS

    def __post_init__(self):
        given = [self.coordinator_address is not None, self.num_processes is not None, self.process_id is not None]
        if any(given) and not all(given):
            raise ConfigError("--coordinator-address, --num-processes and --process-id go together")
        if all(given) and self.auto:
            raise ConfigError("--distributed-auto detects the processes itself: drop --coordinator-address, "
                              "--num-processes and --process-id, or drop --distributed-auto")
        if self.coordinator_address is not None and not _ADDRESS.match(self.coordinator_address):
            raise ConfigError(f"--coordinator-address must be HOST:PORT, got {self.coordinator_address!r}")
        if self.num_processes is not None and self.num_processes < 1:
            raise ConfigError(f"--num-processes must be >= 1, got {self.num_processes}")
        if self.process_id is not None and not 0 <= self.process_id < self.num_processes:
            raise ConfigError(f"--process-id must be in [0, {self.num_processes}), got {self.process_id}")
        if self.heartbeat_seconds < 1:
            raise ConfigError(f"heartbeat_seconds must be >= 1, got {self.heartbeat_seconds}")

    @property
    def enabled(self) -> bool:
        return self.auto or self.coordinator_address is not None


def start(config: DistributedConfig) -> None:
    """Joins the other processes of the run (nothing for a single-process config). Call it before
    any other JAX work."""
    if not config.enabled:
        return
    # Cross-process collectives on the CPU (the all-gathers of `to_host`) need a CPU collectives
    # backend; GPUs and TPUs bring their own.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    explicit = {} if config.auto else {"coordinator_address": config.coordinator_address,
                                       "num_processes": config.num_processes, "process_id": config.process_id}
    jax.distributed.initialize(**explicit, heartbeat_timeout_seconds=config.heartbeat_seconds)


def process_count() -> int:
    return jax.process_count()


def is_writer() -> bool:
    """Whether this process writes files (results, metrics, plots, run folders): process 0 only."""
    return jax.process_index() == 0


def to_host(tree):
    """Every array leaf as numpy, gathered from all processes where it is split over them."""
    def leaf_to_host(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return np.asarray(leaf)

    return jax.tree.map(leaf_to_host, tree)


def agree(value: bool) -> bool:
    """Process 0's `value` on every process (decisions that must match everywhere, such as whether a
    checkpoint is due by the clock)."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.asarray(value)))


def agree_number(value: int) -> int:
    """Process 0's whole number on every process (a choice among several, such as "save a
    checkpoint" or "stop on a signal")."""
    if jax.process_count() == 1:
        return int(value)
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.asarray(value, dtype=np.int32)))


def barrier(name: str) -> None:
    """Waits until every process reaches the barrier `name` (e.g. the writer has created a folder)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


__all__ = ["DistributedConfig", "HEARTBEAT_SECONDS", "agree", "barrier", "is_writer", "process_count", "start",
           "to_host"]
