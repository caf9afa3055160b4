"""Placing the vmapped seeds of a run over this host's devices with `jax.sharding`.

The seeds axis of the training state is split over a one-axis `Mesh` of local devices
(`NamedSharding(mesh, P("seeds"))`); the data, teacher caches and everything else stay
unsharded and are replicated by `jax.jit`. Seeds are independent, so each device computes its own
seeds exactly as one device would.

How many devices: as few as give the smallest number of seeds per device, up to the devices
available (or `--devices N`). 8 seeds on 4 devices: 2 each; 6 seeds on 4 devices: 3 devices of
2; 5 seeds on 4 devices: 3 devices of 2, one slot of padding. Where the seeds do not fill the
devices evenly, the seed list is padded with copies of its last seed (`SeedPlacement.pad`); the
copies are trained like any seed and dropped from every result (`take_seeds`). The trainers
then report only the seeds asked for, and `results.json` records the padding (`padded_seeds`).

In a multi-process run (`mtkd.distributed`) the mesh spans every process's devices (all of them,
so that each process holds its share of the seeds), padded the same way; leaves are assembled
from each process's own copy of the host values (`jax.make_array_from_callback`: every process
builds the same initial state).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mtkd.distributed import to_host
from mtkd.errors import ConfigError

AXIS = "seeds"


@dataclasses.dataclass(frozen=True)
class SeedPlacement:
    """Where a run's seeds go: `devices` devices (1: no sharding at all, today's single-device code)."""

    devices: int
    sharding: NamedSharding | None = None
    padding: int = 0  # seed slots added so that every device holds as many seeds; dropped from results

    def pad(self, values: Sequence) -> list:
        """A per-seed list (seeds, or one mask row per seed) with `padding` copies of its last entry
        appended: the seed axis every placed array has."""
        values = list(values)
        return values + values[-1:] * self.padding

    def describe(self, num_seeds: int) -> str:
        """One line for the run's log."""
        where = f"{self.devices} device{'s' if self.devices > 1 else ''}"
        if not self.padding:
            return f"{num_seeds} seeds on {where}"
        copies = "a copy" if self.padding == 1 else f"{self.padding} copies"
        return (f"{num_seeds} seeds on {where}: padded with {copies} of the last seed, trained and dropped, "
                f"so that each device holds {(num_seeds + self.padding) // self.devices}")

    def place(self, tree):
        """Every leaf (leading axis = seeds) split over the devices; unchanged on one device."""
        if self.sharding is None:
            return tree
        if self.sharding.is_fully_addressable:
            return jax.device_put(tree, self.sharding)
        return jax.tree.map(lambda leaf: _global_array(leaf, self.sharding), tree)


    def place_axes(self, tree, axes):
        """`place` for a tree whose `axes` (a prefix of it, 0 or None per part, as vmap's in_axes)
        say which parts carry the seeds axis: those are split, the others (None: shared by every
        seed, such as an environment's clock) replicated on every device."""
        if self.sharding is None:
            return tree
        replicated = NamedSharding(self.sharding.mesh, PartitionSpec())

        def put(axis, part):
            if axis is None and replicated.is_fully_addressable:
                return jax.tree.map(lambda leaf: jax.device_put(leaf, replicated), part)
            if axis is None:  # every process's own copy of the same values
                return jax.tree.map(lambda leaf: _global_array(leaf, replicated), part)
            return self.place(part)

        return jax.tree.map(put, axes, tree, is_leaf=lambda node: node is None or isinstance(node, int))


def _global_array(leaf, sharding: NamedSharding):
    """One leaf of a multi-process state: this process's shards cut from its own host copy."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(_global_array(jax.random.key_data(leaf), sharding),
                                        impl=jax.random.key_impl(leaf))
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def divisor_placement(count: int, devices: int | None = None) -> SeedPlacement:
    """For an axis that cannot be padded, such as the episodic selector's environments (all of them
    feed one policy gradient): the most local devices, up to `devices`, that split `count` evenly."""
    available = jax.local_devices()[:devices or None]
    used = max(d for d in range(1, min(len(available), count) + 1) if count % d == 0)
    if used == 1:
        return SeedPlacement(1)
    return SeedPlacement(used, NamedSharding(Mesh(available[:used], (AXIS,)), PartitionSpec(AXIS)))


def take_seeds(tree, count: int):
    """The first `count` entries of every leaf's seed axis: a padded run's results without the
    padding. A leaf split over several processes is gathered to the host first."""
    def first(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            leaf = to_host(leaf)
        return leaf[:count]

    return jax.tree.map(first, tree)


def seed_placement(num_seeds: int, devices: int | None = None) -> SeedPlacement:
    """The placement of `num_seeds` seeds on at most `devices` local devices (default: all); over
    every process's devices in a multi-process run. See the module's docstring for the padding."""
    if jax.process_count() > 1:
        return _global_placement(num_seeds, devices)
    available = jax.local_devices()
    if devices is not None and (isinstance(devices, bool) or not isinstance(devices, int) or devices < 1):
        raise ConfigError(f"devices must be a whole number >= 1, got {devices!r}")
    if devices is not None and devices > len(available):
        raise ConfigError(f"{devices} devices asked for, but this host has {len(available)} "
                          f"({available[0].platform})")
    limit = min(devices or len(available), len(available), num_seeds)
    per_device = -(-num_seeds // limit)  # the least any split can reach
    used = -(-num_seeds // per_device)  # the fewest devices that reach it: the least padding
    if used == 1:
        return SeedPlacement(1)
    mesh = Mesh(available[:used], (AXIS,))
    return SeedPlacement(used, NamedSharding(mesh, PartitionSpec(AXIS)), used * per_device - num_seeds)


def _global_placement(num_seeds: int, devices: int | None) -> SeedPlacement:
    available = jax.devices()
    if devices is not None and devices != len(available):
        raise ConfigError(f"a multi-process run uses every process's devices ({len(available)}), "
                          f"so --devices must be left out or {len(available)}, got {devices}")
    mesh = Mesh(np.asarray(available), (AXIS,))
    return SeedPlacement(len(available), NamedSharding(mesh, PartitionSpec(AXIS)), -num_seeds % len(available))


__all__ = ["SeedPlacement", "divisor_placement", "seed_placement", "take_seeds"]
