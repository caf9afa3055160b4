"""The epoch loop's on-device buffer: reading the scalars every epoch or in blocks gives the same
results, lines and callbacks; a non-finite loss still stops the run at its own epoch."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from conftest import metrics_without_times
import pytest

from mtkd.distill.seed_loop import run_epochs
from mtkd.errors import TrainingDivergedError

SEEDS = [0, 1, 2]


def toy_epoch(nan_at=None):
    """A state per seed that moves by a key-dependent step; its 'validation accuracy' rises and
    falls, so the best epoch is not the last."""
    def run_epoch(state, keys, progress):
        step = jax.vmap(lambda key: jax.random.uniform(key))(keys)
        state = state + step
        loss = jnp.cos(state) + progress
        if nan_at is not None:
            loss = jnp.where(jnp.isclose(progress, (nan_at - 1) / 12), jnp.nan, loss)
        return state, {"loss": loss, "step": step}

    return run_epoch


def validate(params):
    return {"val_accuracy": jnp.sin(params), "val_loss": params ** 2}


def run(tmp_path, sync_every, nan_at=None):
    seen = []
    path = tmp_path / f"metrics_{sync_every}.jsonl"
    result = run_epochs(jnp.zeros(3), toy_epoch(nan_at), validate, lambda s: s, 12, SEEDS,
                        on_epoch=lambda record: seen.append(record["epoch"]), metrics_path=path,
                        sync_every=sync_every)
    return result, seen, metrics_without_times(path)


def test_buffered_reads_change_nothing(tmp_path):
    reference, seen, lines = run(tmp_path, 1)
    # An independent account of the best epochs, from the history: the first maximum per seed.
    accuracy = np.array([record["val_accuracy"] for record in reference.history])
    assert reference.best_epoch == (accuracy.argmax(axis=0) + 1).tolist()
    assert len(set(reference.best_epoch)) > 1 and max(reference.best_epoch) < 12
    for sync_every in (3, 5, 12, 50):
        result, order, text = run(tmp_path, sync_every)
        assert result.history == reference.history and result.best_epoch == reference.best_epoch
        assert result.val_accuracy == reference.val_accuracy
        np.testing.assert_array_equal(result.best_params, reference.best_params)
        assert order == seen == list(range(1, 13)) and text == lines


def test_a_nan_is_named_by_its_epoch_when_reads_are_buffered(tmp_path):
    with pytest.raises(TrainingDivergedError, match="at epoch 5 "):
        run(tmp_path, 10, nan_at=5)
    written = [json.loads(line)["epoch"] for line in (tmp_path / "metrics_10.jsonl").read_text().splitlines()]
    assert written == [1, 2, 3, 4]  # the epochs before it, as a loop reading every epoch writes them
