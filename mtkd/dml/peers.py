"""The peers of a mutual-learning run, grouped by architecture into stacks run under one vmap.

Parameters and optimizer states are a tuple over stacks; within stack g every leaf has a
leading peer axis of size G_g (and, outside the vmap over seeds, a seed axis before it).
Peer k is always named by its position in the user's list; `PeerStacks` maps it to its stack.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.distill.fit import init_students
from mtkd.models.architectures import parameters_only_model
from mtkd.distill.steps import apply_model, evaluate
from mtkd.errors import ConfigError
from mtkd.models import ModelSpec

# A large odd stride (2^32 / golden ratio) keeps the peers of nearby seeds apart.
_PEER_SEED_STRIDE = 0x9E3779B1


def peer_seed(seed: int, peer: int) -> int:
    """The initialisation seed of peer `peer` in the run of `seed`. Peer 0 gets `seed` itself,
    so it starts exactly like `fit`'s student of that seed; the independent baseline uses the
    same seeds, so both runs start every peer from the same weights."""
    return (int(seed) + int(peer) * _PEER_SEED_STRIDE) % 2**32


def peer_spec_from(value: ModelSpec | Mapping[str, Any] | str) -> ModelSpec:
    """A peer from a config entry: a ModelSpec, `{"arch": ..., "options": {...}}`, or an arch name."""
    if isinstance(value, ModelSpec):
        return value
    if isinstance(value, str):
        return ModelSpec(value)
    if isinstance(value, Mapping) and "arch" in value:
        return ModelSpec.from_dict(value)
    raise ConfigError(f"a peer is an architecture name or a table with 'arch' (and 'options'), got {value!r}")


@dataclasses.dataclass(frozen=True)
class PeerStacks:
    """K peers grouped into stacks of one architecture: `groups[g]` lists the peer indices of
    stack g (in the user's order) and `graphdefs[g]` its model graph."""

    specs: tuple[ModelSpec, ...]
    groups: tuple[tuple[int, ...], ...]
    graphdefs: tuple[Any, ...]

    @property
    def num_peers(self) -> int:
        return len(self.specs)

    def names(self, strategy: str) -> list[str]:
        return [f"{strategy}/peer{k}:{spec.arch}" for k, spec in enumerate(self.specs)]

    def slot(self, peer: int) -> tuple[int, int]:
        """(stack, position in the stack) of peer `peer`."""
        for g, group in enumerate(self.groups):
            if peer in group:
                return g, group.index(peer)
        raise IndexError(peer)

    def to_peer_order(self, per_stack: Sequence[jax.Array], axis: int = 0) -> jax.Array:
        """Joins per-stack arrays (peer axis `axis`, size G_g) into one in peer order (size K)."""
        order = [k for group in self.groups for k in group]
        return jnp.take(jnp.concatenate(per_stack, axis=axis), jnp.asarray(np.argsort(order)), axis=axis)

    def of_stack(self, per_peer: jax.Array, g: int, axis: int = 0) -> jax.Array:
        """The entries of stack g's peers out of an array in peer order (peer axis `axis`)."""
        return jnp.take(per_peer, jnp.asarray(self.groups[g]), axis=axis)

    def peer(self, stacked: Sequence[Any], peer: int, axis: int = 0) -> Any:
        """One peer's pytree (parameters, optimizer state, ...) out of the per-stack tuple."""
        g, j = self.slot(peer)
        return jax.tree.map(lambda leaf: jnp.take(leaf, j, axis=axis), stacked[g])

    def with_peer(self, stacked: Sequence[Any], peer: int, value: Any) -> tuple:
        """The per-stack tuple with peer `peer`'s pytree replaced (peer axis first)."""
        g, j = self.slot(peer)
        stacked = list(stacked)
        stacked[g] = jax.tree.map(lambda leaf, new: leaf.at[j].set(new), stacked[g], value)
        return tuple(stacked)

    def logits(self, params: Sequence[Any], x: jax.Array) -> jax.Array:
        """Every peer's logits on a batch x, each stack under one vmap: (K, B, C)."""
        return self.to_peer_order([jax.vmap(lambda p, g=graphdef: apply_model(g, p, x)[0])(stack)
                                   for graphdef, stack in zip(self.graphdefs, params)])

    def evaluate(self, params: Sequence[Any], x, y, batch_size: int):
        """(accuracy (K,), mean cross-entropy (K,)) of every peer on (x, y)."""
        per_stack = [jax.vmap(lambda p, g=graphdef: evaluate(g, p, x, y, batch_size))(stack)
                     for graphdef, stack in zip(self.graphdefs, params)]
        return tuple(self.to_peer_order([result[i] for result in per_stack]) for i in range(2))


def init_peers(peers: Sequence[ModelSpec], input_shape, num_classes: int, seeds: Sequence[int]):
    """Groups the peers by architecture and initialises them for every seed.

    Returns `(PeerStacks, params)`, params a tuple over stacks with leaves (S, G_g, ...); peer k
    of seed s starts from `peer_seed(s, k)`.
    """
    groups: dict[str, list[int]] = {}
    for k, spec in enumerate(peers):
        groups.setdefault(spec.key(), []).append(k)
    graphdefs, params = [], []
    for group in groups.values():
        parameters_only_model(peers[group[0]], input_shape, num_classes, "deep mutual learning")
        graphdef, stacked = init_students(peers[group[0]], input_shape, num_classes,
                                          [peer_seed(s, k) for s in seeds for k in group])
        graphdefs.append(graphdef)
        params.append(jax.tree.map(lambda leaf: leaf.reshape((len(seeds), len(group)) + leaf.shape[1:]), stacked))
    stacks = PeerStacks(tuple(peers), tuple(tuple(g) for g in groups.values()), tuple(graphdefs))
    return stacks, tuple(params)
