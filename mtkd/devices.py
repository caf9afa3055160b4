"""Placing the vmapped seeds of a run over this host's devices with `jax.sharding`.

The seeds axis of the training state is split over a one-axis `Mesh` of local devices
(`NamedSharding(mesh, P("seeds"))`); the data, teacher caches and everything else stay
unsharded and are replicated by `jax.jit`. Seeds are independent, so each device computes its own
seeds exactly as one device would. The number of devices used is the largest count, up to the
devices available (or `--devices N`), that divides the number of seeds evenly.
"""

from __future__ import annotations

import dataclasses

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mtkd.errors import ConfigError

AXIS = "seeds"


@dataclasses.dataclass(frozen=True)
class SeedPlacement:
    """Where a run's seeds go: `devices` devices (1: no sharding at all, today's single-device code)."""

    devices: int
    sharding: NamedSharding | None = None

    def place(self, tree):
        """Every leaf (leading axis = seeds) split over the devices; unchanged on one device."""
        return tree if self.sharding is None else jax.device_put(tree, self.sharding)


def seed_placement(num_seeds: int, devices: int | None = None) -> SeedPlacement:
    """The placement of `num_seeds` seeds on at most `devices` local devices (default: all)."""
    available = jax.local_devices()
    if devices is not None and (isinstance(devices, bool) or not isinstance(devices, int) or devices < 1):
        raise ConfigError(f"devices must be a whole number >= 1, got {devices!r}")
    if devices is not None and devices > len(available):
        raise ConfigError(f"{devices} devices asked for, but this host has {len(available)} "
                          f"({available[0].platform})")
    limit = min(devices or len(available), len(available), num_seeds)
    used = max(d for d in range(1, limit + 1) if num_seeds % d == 0)
    if used == 1:
        return SeedPlacement(1)
    mesh = Mesh(available[:used], (AXIS,))
    return SeedPlacement(used, NamedSharding(mesh, PartitionSpec(AXIS)))


__all__ = ["SeedPlacement", "seed_placement"]
