"""Training K peers by deep mutual learning (docs/methods.md, Deep mutual learning and self-distillation), several seeds at once, and
the baseline of the same peers trained alone.

An adapter of the trainer skeleton (`mtkd.distill.trainer`), as `fit` is: one epoch is one jitted
`lax.scan`, vmapped over seeds (and, within a seed, over the peers of each architecture); each
peer of each seed keeps the parameters of its best validation epoch, and the test split is
evaluated once, at the end.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.data import DatasetSplits
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.optimizers import training_optimizer
from mtkd.distill.steps import StudentState, keep_best
from mtkd.distill.trainer import Method, train_seeds
from mtkd.dml.loss import dml_loss
from mtkd.dml.peers import PeerStacks, init_peers, peer_seed
from mtkd.dml.result import DMLResult
from mtkd.dml.updates import make_dml_epoch, update_scheme
from mtkd.errors import ConfigError
from mtkd.fusion.soft_targets import fuse_soft_targets
from mtkd.fusion.strategies import StrategyContext, make_strategy
from mtkd.models import ModelSpec
from mtkd.progress import epoch_reporter, stderr_line


def _check_peers_and_seeds(peers, seeds, minimum: int) -> None:
    if len(peers) < minimum:
        raise ConfigError("deep mutual learning needs at least 2 peers" if minimum == 2 else "no peers given")
    if not seeds:
        raise ConfigError("no seeds given")


def _per_peer(record: dict) -> str:
    per_peer = np.mean(np.asarray(record["val_accuracy"]), axis=0)  # (K,): mean over seeds
    return f"mean val accuracy per peer {' '.join(f'{v:.3f}' for v in per_peer)}"


def run_dml(splits: DatasetSplits, peers: Sequence[ModelSpec], config: TrainConfig, seeds: Sequence[int], *,
            pool=None, with_teachers: bool = False, update: str = "sequential", temperature: float = 1.0,
            metrics_path: str | Path | None = None, log: Callable[[str], None] | None = None,
            checkpoints=None, devices: int | None = None) -> DMLResult:
    """Deep mutual learning of `peers` (K >= 2, any mix of architectures) for every seed.

    Strategy `dml` (peers only) or, with `with_teachers`, `dml+teachers` (each peer also distils
    from the uniform average of `pool`'s cached teachers at config.temperature, weight 1 -
    config.alpha; formulas in `mtkd.dml.loss`). `temperature` softens the peer-to-peer KL only
    (1 in the paper). `update` is "sequential" (the paper) or "simultaneous" (cheaper: one
    forward and backward pass per stack per batch). All peers of a seed see the same batches.
    The epoch loop is `run_epochs`'s (so `checkpoints` make it resumable); seeds are split over up
    to `devices` local devices as in `fit`.
    """
    peers, seeds = list(peers), [int(s) for s in seeds]
    _check_peers_and_seeds(peers, seeds, minimum=2)
    make_step = update_scheme(update)
    if not temperature > 0:
        raise ConfigError(f"DML temperature must be > 0, got {temperature}")
    if with_teachers and pool is None:
        raise ConfigError("strategy 'dml+teachers' needs a teacher pool (--teachers DIR)")
    strategy = "dml+teachers" if with_teachers else "dml"
    log = log or stderr_line
    started = time.perf_counter()

    config.refuse_augmentation("deep mutual learning")
    loss_fn = functools.partial(dml_loss, temperature=temperature, alpha=config.alpha,
                                teacher_temperature=config.temperature)
    teacher_target = None
    if with_teachers:
        train_logits = pool.logits(splits)["train"]  # (K_teachers, N, C)
        # The fused target never changes: fuse it once for the whole training set, (N, C).
        teacher_target = fuse_soft_targets(train_logits, jnp.ones(train_logits.shape[0]), config.temperature)[0]
    train_x, train_y = jnp.asarray(splits.x_train), jnp.asarray(splits.y_train)
    batch_size = min(config.batch_size, int(train_x.shape[0]))
    optimizer = training_optimizer(config, int(train_x.shape[0]) // batch_size)
    stacks = init_peers(peers, splits.input_shape, splits.num_classes, seeds[:1])[0]  # the layout, not the weights
    peer_epoch = make_dml_epoch(make_step(stacks, optimizer, loss_fn, temperature), batch_size)

    def epoch(states, key, x, y, target, progress):
        states, losses = peer_epoch(states, key, x, y, target)
        return states, {"loss": losses}

    def evaluation(params, x, y):
        accuracy, loss = stacks.evaluate(params, x, y, config.eval_batch_size)
        return {"accuracy": accuracy, "loss": loss}

    def build(seeds, placement):
        params = init_peers(peers, splits.input_shape, splits.num_classes, seeds)[1]
        # The peers of a seed stay together on its device: only the seeds axis is split.
        states = tuple(StudentState(p, jax.vmap(jax.vmap(optimizer.init))(p)) for p in params)
        return Method(epoch, evaluation, (train_x, train_y, teacher_target),
                      params_of=lambda states: tuple(state.params for state in states),
                      keep_best=jax.vmap(functools.partial(_keep_best_peers, stacks)),
                      accuracy_shape=(len(peers),)), states

    # The same batch-order keys as `fit` (`epoch_keys`), so peer 0 sees the batches of `fit`'s student.
    trained = train_seeds(seeds, build, config.epochs, (jnp.asarray(splits.x_val), jnp.asarray(splits.y_val)),
                          (jnp.asarray(splits.x_test), jnp.asarray(splits.y_test)),
                          epoch_reporter(strategy, config.epochs, log, _per_peer),
                          metrics_path, checkpoints, devices, config.vmap_chunk, log)
    loop = trained.loop
    return DMLResult(
        strategy, stacks.names(strategy), trained.seeds, np.asarray(loop.best_epoch).T.tolist(),
        np.asarray(loop.val_accuracy).T.tolist(), trained.test["accuracy"].T.tolist(),
        time.perf_counter() - started, [stacks.graphdefs[stacks.slot(k)[0]] for k in range(len(peers))],
        [stacks.peer(loop.best_params, k, axis=1) for k in range(len(peers))], loop.history,
        {"update": update, "temperature": float(temperature)})


def _keep_best_peers(stacks: PeerStacks, best_params, best_accuracy, params, accuracy):
    """`keep_best` for every peer of one seed: accuracies (K,), parameters a tuple over stacks."""
    chosen, improved = [], []
    for g in range(len(stacks.groups)):
        kept, _, better = jax.vmap(keep_best)(best_params[g], stacks.of_stack(best_accuracy, g),
                                              params[g], stacks.of_stack(accuracy, g))
        chosen.append(kept)
        improved.append(better)
    improved = stacks.to_peer_order(improved)
    return tuple(chosen), jnp.maximum(best_accuracy, accuracy), improved


def run_independent_peers(splits: DatasetSplits, peers: Sequence[ModelSpec], config: TrainConfig,
                          seeds: Sequence[int], *, metrics_path: str | Path | None = None,
                          log: Callable[[str], None] | None = None, checkpoints=None) -> DMLResult:
    """The baseline: each peer trained alone (`fit`, strategy none), strategy `independent`.

    Peer k of seed s starts from the same weights as in `run_dml` (`peer_seed`); the metrics
    file gets each peer's epochs in turn, each record tagged with its peer.
    """
    peers, seeds = list(peers), [int(s) for s in seeds]
    _check_peers_and_seeds(peers, seeds, minimum=1)
    log = log or stderr_line
    started = time.perf_counter()
    strategy = "independent"
    names = [f"{strategy}/peer{k}:{spec.arch}" for k, spec in enumerate(peers)]
    train = SplitArrays(jnp.asarray(splits.x_train), jnp.asarray(splits.y_train))
    val = SplitArrays(jnp.asarray(splits.x_val), jnp.asarray(splits.y_val))
    test = SplitArrays(jnp.asarray(splits.x_test), jnp.asarray(splits.y_test))
    alone = make_strategy("none", StrategyContext((), ()))
    fits = []
    for k, spec in enumerate(peers):
        on_epoch = epoch_reporter(names[k], config.epochs, log,
                                  lambda record: f"mean val accuracy {np.mean(record['val_accuracy']):.3f}")

        fits.append(fit(spec, splits.input_shape, splits.num_classes, train, val, alone, config,
                        [peer_seed(s, k) for s in seeds], test=test, on_epoch=on_epoch,
                        checkpoints=checkpoints.part(f"peer{k}") if checkpoints is not None else None))
    if metrics_path is not None:  # each peer's epochs in turn, written once all are done (so a resume never repeats one)
        Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
        Path(metrics_path).write_text("".join(json.dumps({"peer": name, **record}) + "\n"
                                              for name, result in zip(names, fits) for record in result.history))

    # One record per epoch with [S][K] lists, the layout of `run_dml`'s history.
    history = [{"epoch": records[0]["epoch"],
                **{field: np.asarray([r[field] for r in records]).T.tolist()
                   for field in ("train_loss", "val_accuracy", "val_loss")}}
               for records in zip(*(result.history for result in fits))]
    return DMLResult(strategy, names, seeds, [r.best_epoch for r in fits], [r.val_accuracy for r in fits],
                     [r.test_accuracy for r in fits], time.perf_counter() - started,
                     [r.graphdef for r in fits], [r.params for r in fits], history)
