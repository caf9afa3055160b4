"""Augmentation inside the step (`mtkd.augment`), the multi-step learning-rate schedule and the
CIFAR-100 input normalisation, against NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mtkd.augment import AUGMENTATIONS, crop_flip
from mtkd.data.normalization import CHANNEL_STATISTICS, normalise
from mtkd.errors import MtkdError
from mtkd.optimizers import milestone_schedule, training_optimizer
from mtkd.train_config import TrainConfig


def test_crop_flip_is_a_padded_window_then_a_mirror_per_example():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6, 5, 3)).astype(np.float32)
    key = jax.random.key(3)
    out = np.asarray(crop_flip(key, jnp.asarray(x), padding=2))
    # The same draws, then a slow loop in NumPy.
    offset_key, flip_key = jax.random.split(key)
    offsets = np.asarray(jax.random.randint(offset_key, (16, 2), 0, 5))
    flips = np.asarray(jax.random.bernoulli(flip_key, 0.5, (16,)))
    for i in range(16):
        padded = np.zeros((10, 9, 3), np.float32)
        padded[2:8, 2:7] = x[i]
        window = padded[offsets[i, 0]:offsets[i, 0] + 6, offsets[i, 1]:offsets[i, 1] + 5]
        np.testing.assert_array_equal(out[i], window[:, ::-1] if flips[i] else window)
    assert 0 < flips.sum() < 16 and len({tuple(o) for o in offsets}) > 1
    np.testing.assert_array_equal(np.asarray(crop_flip(key, jnp.asarray(x), padding=2)), out)  # deterministic
    assert AUGMENTATIONS.get("crop_flip") is crop_flip


def test_milestones_multiply_the_rate_from_the_first_step_of_their_epoch():
    """PyTorch's MultiStepLR([2, 3], gamma=0.1) stepped per epoch, 4 updates per epoch."""
    schedule = milestone_schedule(0.05, (2, 3), 0.1, 4)
    got = [float(schedule(step)) for step in range(16)]
    want = [0.05] * 8 + [0.005] * 4 + [0.0005] * 4
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert milestone_schedule(0.05, (), 0.1, 4) == 0.05


def test_the_training_optimizer_is_torch_sgd_with_the_schedule():
    """w -= lr_t * buffer, buffer = 0.9 buffer + grad + wd * w, checked by hand for 3 updates."""
    config = TrainConfig(epochs=3, learning_rate=0.1, optimizer="sgd", weight_decay=0.01, lr_milestones="1",
                         lr_decay=0.5)
    optimizer = training_optimizer(config, steps_per_epoch=2)
    w = jnp.asarray([1.0, -2.0])
    state = optimizer.init(w)
    w_ref, buffer = np.asarray([1.0, -2.0]), np.zeros(2)
    for step, grad in enumerate([np.asarray([0.3, 0.1]), np.asarray([-0.2, 0.4]), np.asarray([0.5, 0.5])]):
        updates, state = optimizer.update(jnp.asarray(grad, jnp.float32), state, w)
        w = optax.apply_updates(w, updates)
        buffer = 0.9 * buffer + grad + 0.01 * w_ref
        w_ref = w_ref - (0.1 if step < 2 else 0.05) * buffer
    np.testing.assert_allclose(np.asarray(w), w_ref, rtol=1e-6)


@pytest.mark.parametrize("changes, message", [
    ({"lr_milestones": "150,x"}, "lr_milestones must be whole epochs"),
    ({"lr_milestones": "180,150"}, "lr_milestones must be increasing"),
    ({"lr_milestones": "0"}, "lr_milestones must be increasing epochs >= 1"),
    ({"lr_decay": 0.0}, "lr_decay must be in"),
    ({"augment": "cutout"}, "unknown augmentation 'cutout'"),
])
def test_bad_schedule_or_augmentation_is_refused(changes, message):
    with pytest.raises(MtkdError, match=message):
        TrainConfig(**changes)


def test_milestones_past_the_last_epoch_are_allowed_and_left_out_of_old_signatures():
    config = TrainConfig(epochs=1, lr_milestones="150,180,210")  # a recipe shortened with --epochs
    assert config.milestones() == (150, 180, 210)
    assert "lr_milestones" in config.signature()
    assert set(TrainConfig().signature()) == set(TrainConfig().to_dict()) - {"lr_milestones", "lr_decay", "augment", "vmap_chunk"}


def test_cifar100_inputs_are_normalised_by_the_reference_constants():
    x = np.random.default_rng(0).uniform(size=(2, 4, 4, 3)).astype(np.float32)
    mean, std = CHANNEL_STATISTICS["cifar100"]
    np.testing.assert_allclose(normalise("cifar100", x), (x - np.asarray(mean)) / np.asarray(std), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(normalise("cifar10", x), x)  # only data sets whose protocol fixes it
    np.testing.assert_array_equal(normalise("cifar100", x[..., :2]), x[..., :2])  # not 3-channel images
