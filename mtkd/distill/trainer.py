"""The one trainer skeleton: `fit`, the composite fit, BYOT and DML are adapters of it.

A method says what one seed does: its epoch (one `lax.scan` over batches), how its parameters are
evaluated, and which state it starts from. The skeleton does everything around that, once:

- pads the seeds to fill the devices (`mtkd.devices`) and places the state on them;
- vmaps the epoch and the evaluation over seeds and jits them, the state donated, in chunks of
  students that fit the device's memory (`mtkd.distill.seed_map`);
- runs the epoch loop (`mtkd.distill.seed_loop.run_epochs`: validation, the best epoch of each
  seed, the metrics file, the NaN stop, checkpoints and resume);
- evaluates each seed's chosen parameters on the test split once, at the end, in one call.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.devices import SeedPlacement, seed_placement
from mtkd.distill.seed_loop import LoopResult, epoch_keys, run_epochs
from mtkd.distill.seed_map import fitted_program
from mtkd.distributed import to_host
from mtkd.run_checkpoints import EpochCheckpoints


def _student_params(state):
    return state.params


@dataclasses.dataclass(frozen=True)
class Method:
    """One seed's training, for `train_seeds` to vmap.

    epoch(state, key, *data, progress, *seed_data) -> (state, metrics with a scalar "loss");
    `data` is shared by every seed (the training arrays, teacher caches), `seed_data` has a leading
    seed axis (one mask row per seed, padded like the seeds). evaluate(params, x, y) -> {"accuracy":
    the selection criterion, other values to record}; each is recorded as "val_NAME" per epoch and
    returned per seed for the test split. params_of(state) is what is evaluated and kept.

    Several models per seed (DML's peers): `evaluate` gives an accuracy per model,
    `accuracy_shape` is that shape and `keep_best` (over all seeds) keeps each model's best epoch.
    """

    epoch: Callable[..., tuple[Any, Mapping[str, Any]]]
    evaluate: Callable[[Any, Any, Any], Mapping[str, Any]]
    data: tuple = ()
    seed_data: tuple = ()
    params_of: Callable[[Any], Any] = _student_params
    keep_best: Callable | None = None
    accuracy_shape: tuple[int, ...] = ()


@dataclasses.dataclass
class Trained:
    """The loop's result (the seeds asked for only) and, with a test split, each evaluated value
    of the chosen parameters per seed (host arrays, leading axis = seeds)."""

    seeds: list[int]
    loop: LoopResult
    test: dict[str, np.ndarray] | None


def train_seeds(
    seeds: Sequence[int],
    build: Callable[[list[int], SeedPlacement], tuple[Method, Any]],
    epochs: int,
    val: tuple[Any, Any],
    test: tuple[Any, Any] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    metrics_path: str | Path | None = None,
    checkpoints: EpochCheckpoints | None = None,
    devices: int | None = None,
    vmap_chunk: int = 0,
    log: Callable[[str], None] | None = None,
) -> Trained:
    """Trains one model (or one group of peers) per seed, all seeds at once.

    build(padded seeds, placement) -> (method, initial state stacked over the padded seeds). The
    seeds are split over up to `devices` local devices (default: all); copies of the last seed pad
    them to fill the devices, and are dropped from every result. `val` and `test` are (x, y).

    `vmap_chunk`: at most this many students side by side per device, the rest in turn inside the
    same program; 0: as many as fit a share of the device's memory (`mtkd.distill.seed_map`), said on
    `log` when that is fewer than all.
    """
    asked = [int(s) for s in seeds]
    placement = seed_placement(len(asked), devices)
    padded = placement.pad(asked)
    method, state = build(padded, placement)
    # On one device the state is committed like the epoch's outputs, so epoch 2 reuses epoch 1's executable.
    state = placement.place(state) if placement.devices > 1 else jax.device_put(state, jax.local_devices()[0])

    shared = (None,) * len(method.data)
    # Each chosen by compiling for the first call's arguments; the calls then reuse those executables.
    first_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(epoch_keys(padded), 1)
    jitted_epoch = fitted_program(method.epoch, (0, 0, *shared, None, *(0,) * len(method.seed_data)),
                                  (state, first_keys, *method.data, jnp.float32(0.0), *method.seed_data), vmap_chunk,
                                  placement.devices, log, donate_argnums=(0,))
    evaluate = fitted_program(method.evaluate, (0, None, None), (method.params_of(state), *val), vmap_chunk,
                              placement.devices, log, "students' evaluations")

    def run_epoch(state, keys, progress):
        return jitted_epoch(state, keys, *method.data, progress, *method.seed_data)

    def validate(params):
        return {f"val_{name}": value for name, value in evaluate(params, *val).items()}

    loop = run_epochs(state, run_epoch, validate, method.params_of, epochs, padded, on_epoch, metrics_path,
                      checkpoints, keep_best_fn=method.keep_best,
                      accuracy_shape=(len(padded), *method.accuracy_shape) if method.accuracy_shape else None,
                      keep=len(asked))
    tested = None
    if test is not None:  # once, with each seed's chosen parameters
        tested = {name: np.asarray(value) for name, value in to_host(evaluate(loop.best_params, *test)).items()}
    return Trained(asked, loop, tested)


__all__ = ["Method", "Trained", "train_seeds"]
