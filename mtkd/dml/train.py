"""Training K peers by deep mutual learning (METHODS.md section 3), several seeds at once, and
the baseline of the same peers trained alone.

As in `mtkd.distill.fit`: one epoch is one jitted `lax.scan`, vmapped over seeds; the Python
loop over epochs reads back a few numbers per epoch; each peer of each seed keeps the
parameters of its best validation epoch, and the test split is evaluated once, at the end.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.data import DatasetSplits
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.distill.optimizers import make_optimizer
from mtkd.distill.steps import StudentState, keep_best
from mtkd.dml.loss import dml_loss
from mtkd.dml.peers import PeerStacks, init_peers, peer_seed
from mtkd.dml.result import DMLResult
from mtkd.dml.updates import make_dml_epoch, update_scheme
from mtkd.errors import ConfigError, TrainingDivergedError
from mtkd.fusion.soft_targets import fuse_soft_targets
from mtkd.fusion.strategies import StrategyContext, make_strategy
from mtkd.models import ModelSpec


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _check_peers_and_seeds(peers, seeds, minimum: int) -> None:
    if len(peers) < minimum:
        raise ConfigError("deep mutual learning needs at least 2 peers" if minimum == 2 else "no peers given")
    if not seeds:
        raise ConfigError("no seeds given")


def _log_progress(log, strategy: str, epochs: int, epoch: int, val_accuracy) -> None:
    if epoch % max(1, epochs // 5) == 0 or epoch == epochs:
        per_peer = np.mean(np.asarray(val_accuracy), axis=0)  # (K,): mean over seeds
        log(f"  {strategy}: epoch {epoch}/{epochs}, mean val accuracy per peer "
            f"{' '.join(f'{v:.3f}' for v in per_peer)}")


def _open_metrics(metrics_path):
    if not metrics_path:
        return None
    Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
    return open(metrics_path, "w")


def run_dml(splits: DatasetSplits, peers: Sequence[ModelSpec], config: TrainConfig, seeds: Sequence[int], *,
            pool=None, with_teachers: bool = False, update: str = "sequential", temperature: float = 1.0,
            metrics_path: str | Path | None = None, log: Callable[[str], None] | None = None) -> DMLResult:
    """Deep mutual learning of `peers` (K >= 2, any mix of architectures) for every seed.

    Strategy `dml` (peers only) or, with `with_teachers`, `dml+teachers` (each peer also distils
    from the uniform average of `pool`'s cached teachers at config.temperature, weight 1 -
    config.alpha; formulas in `mtkd.dml.loss`). `temperature` softens the peer-to-peer KL only
    (1 in the paper). `update` is "sequential" (the paper) or "simultaneous" (cheaper: one
    forward and backward pass per stack per batch). All peers of a seed see the same batches.
    """
    peers, seeds = list(peers), [int(s) for s in seeds]
    _check_peers_and_seeds(peers, seeds, minimum=2)
    make_step = update_scheme(update)
    if not temperature > 0:
        raise ConfigError(f"DML temperature must be > 0, got {temperature}")
    if with_teachers and pool is None:
        raise ConfigError("strategy 'dml+teachers' needs a teacher pool (--teachers DIR)")
    strategy = "dml+teachers" if with_teachers else "dml"
    log = log or _stderr
    started = time.perf_counter()

    stacks, params = init_peers(peers, splits.input_shape, splits.num_classes, seeds)
    optimizer = make_optimizer(config.optimizer, config.learning_rate, config.weight_decay)
    loss_fn = functools.partial(dml_loss, temperature=temperature, alpha=config.alpha,
                                teacher_temperature=config.temperature)
    teacher_target = None
    if with_teachers:
        train_logits = pool.logits(splits)["train"]  # (K_teachers, N, C)
        # The fused target never changes: fuse it once for the whole training set, (N, C).
        teacher_target = fuse_soft_targets(train_logits, jnp.ones(train_logits.shape[0]), config.temperature)[0]
    train_x, train_y = jnp.asarray(splits.x_train), jnp.asarray(splits.y_train)
    batch_size = min(config.batch_size, int(train_x.shape[0]))
    epoch_fn = make_dml_epoch(make_step(stacks, optimizer, loss_fn, temperature), batch_size)

    run_epoch = jax.jit(jax.vmap(epoch_fn, in_axes=(0, 0, None, None, None)), donate_argnums=(0,))
    run_eval = jax.jit(jax.vmap(lambda p, x, y: stacks.evaluate(p, x, y, config.eval_batch_size),
                                in_axes=(0, None, None)))
    run_keep_best = jax.jit(jax.vmap(functools.partial(_keep_best_peers, stacks)))

    states = tuple(StudentState(p, jax.vmap(jax.vmap(optimizer.init))(p)) for p in params)
    best_params = jax.tree.map(jnp.copy, params)
    best_accuracy = jnp.full((len(seeds), len(peers)), -1.0)
    best_epoch = np.zeros((len(seeds), len(peers)), dtype=int)
    # The same batch-order keys as `fit`, so peer 0 sees the batches of `fit`'s student.
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 1))(jnp.asarray(seeds, dtype=jnp.uint32))
    names = stacks.names(strategy)
    history = []
    metrics_file = _open_metrics(metrics_path)
    try:
        for epoch in range(1, config.epochs + 1):
            epoch_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, epoch)
            states, losses = run_epoch(states, epoch_keys, train_x, train_y, teacher_target)
            current = tuple(state.params for state in states)
            val_accuracy, val_loss = run_eval(current, jnp.asarray(splits.x_val), jnp.asarray(splits.y_val))
            best_params, best_accuracy, improved = run_keep_best(best_params, best_accuracy, current, val_accuracy)
            losses = np.asarray(losses)  # (S, K)
            if not np.all(np.isfinite(losses)):
                s, k = np.argwhere(~np.isfinite(losses))[0]
                raise TrainingDivergedError(f"{strategy} training loss became {losses[s, k]} at epoch {epoch} "
                                            f"(seed {seeds[s]}, {names[k]}); lower the learning rate")
            best_epoch = np.where(np.asarray(improved), epoch, best_epoch)
            record = {"epoch": epoch, "train_loss": losses.tolist(),
                      "val_accuracy": np.asarray(val_accuracy).tolist(), "val_loss": np.asarray(val_loss).tolist()}
            history.append(record)
            if metrics_file:
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
            _log_progress(log, strategy, config.epochs, epoch, val_accuracy)
    finally:
        if metrics_file:
            metrics_file.close()

    test_accuracy = np.asarray(run_eval(best_params, jnp.asarray(splits.x_test), jnp.asarray(splits.y_test))[0])
    return DMLResult(
        strategy, names, seeds, best_epoch.T.tolist(), np.asarray(best_accuracy).T.tolist(), test_accuracy.T.tolist(),
        time.perf_counter() - started, [stacks.graphdefs[stacks.slot(k)[0]] for k in range(len(peers))],
        [stacks.peer(best_params, k, axis=1) for k in range(len(peers))], history,
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
                          log: Callable[[str], None] | None = None) -> DMLResult:
    """The baseline: each peer trained alone (`fit`, strategy none), strategy `independent`.

    Peer k of seed s starts from the same weights as in `run_dml` (`peer_seed`); the metrics
    file gets each peer's epochs in turn, each record tagged with its peer.
    """
    peers, seeds = list(peers), [int(s) for s in seeds]
    _check_peers_and_seeds(peers, seeds, minimum=1)
    log = log or _stderr
    started = time.perf_counter()
    strategy = "independent"
    names = [f"{strategy}/peer{k}:{spec.arch}" for k, spec in enumerate(peers)]
    train = SplitArrays(jnp.asarray(splits.x_train), jnp.asarray(splits.y_train))
    val = SplitArrays(jnp.asarray(splits.x_val), jnp.asarray(splits.y_val))
    test = SplitArrays(jnp.asarray(splits.x_test), jnp.asarray(splits.y_test))
    alone = make_strategy("none", StrategyContext((), ()))
    fits = []
    metrics_file = _open_metrics(metrics_path)
    try:
        for k, spec in enumerate(peers):
            def on_epoch(record, name=names[k]):
                if metrics_file:
                    metrics_file.write(json.dumps({"peer": name, **record}) + "\n")
                    metrics_file.flush()
                if record["epoch"] % max(1, config.epochs // 5) == 0 or record["epoch"] == config.epochs:
                    log(f"  {name}: epoch {record['epoch']}/{config.epochs}, mean val accuracy "
                        f"{np.mean(record['val_accuracy']):.3f}")

            fits.append(fit(spec, splits.input_shape, splits.num_classes, train, val, alone, config,
                            [peer_seed(s, k) for s in seeds], test=test, on_epoch=on_epoch))
    finally:
        if metrics_file:
            metrics_file.close()

    # One record per epoch with [S][K] lists, the layout of `run_dml`'s history.
    history = [{"epoch": records[0]["epoch"],
                **{field: np.asarray([r[field] for r in records]).T.tolist()
                   for field in ("train_loss", "val_accuracy", "val_loss")}}
               for records in zip(*(result.history for result in fits))]
    return DMLResult(strategy, names, seeds, [r.best_epoch for r in fits], [r.val_accuracy for r in fits],
                     [r.test_accuracy for r in fits], time.perf_counter() - started,
                     [r.graphdef for r in fits], [r.params for r in fits], history)
