"""masked_imitation and its mask builders against numpy loops; checks and jit behaviour."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtkd.errors import ConfigError
from mtkd.losses import attention_mask, box_mask, difference_mask, masked_imitation


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def features(seed=0, shape=(2, 4, 5, 3)):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), rng.normal(size=shape)


def np_masked(s, t, mask):
    b, h, w, c = s.shape
    num = 0.0
    for i, y, x, ch in np.ndindex(b, h, w, c):
        per_element = mask.ndim == 4 and mask.shape[-1] == c
        m = mask[i, y, x, ch] if per_element else mask.reshape(b, h, w)[i, y, x]
        num += m * (t[i, y, x, ch] - s[i, y, x, ch]) ** 2
    return num / mask.sum()


@pytest.mark.parametrize("mask_shape", [(2, 4, 5), (2, 4, 5, 1), (2, 4, 5, 3)])
def test_masked_imitation_matches_numpy(mask_shape):
    s, t = features()
    mask = np.random.default_rng(1).uniform(size=mask_shape)
    np.testing.assert_allclose(masked_imitation(s, t, mask), np_masked(s, t, mask), rtol=1e-10)
    np.testing.assert_allclose(jax.jit(masked_imitation)(s, t, mask), np_masked(s, t, mask),
                               rtol=1e-10)


def test_masked_imitation_all_zero_and_negative_masks():
    s, t = features()
    with pytest.raises(ConfigError, match="all zero"):
        masked_imitation(s, t, np.zeros((2, 4, 5)))
    with pytest.raises(ConfigError, match=">= 0"):
        masked_imitation(s, t, -np.ones((2, 4, 5)))
    # Under jit the mask is traced: documented result 0, with finite gradients.
    f = jax.jit(jax.value_and_grad(masked_imitation))
    value, grad = f(jnp.asarray(s), jnp.asarray(t), jnp.zeros((2, 4, 5)))
    assert float(value) == 0.0 and bool(jnp.all(grad == 0))


def test_masked_imitation_shape_errors():
    s, t = features()
    with pytest.raises(ConfigError, match="mask shape"):
        masked_imitation(s, t, np.ones((2, 5, 4)))
    with pytest.raises(ConfigError, match=r"\(2, 4, 5, 3\).*\(2, 4, 5, 2\)"):
        masked_imitation(s, t[..., :2], np.ones((2, 4, 5)))


def test_box_mask_matches_loops():
    boxes = np.array([[[0.0, 0.0, 2.0, 2.0], [3.2, 1.0, 4.9, 3.0]],
                      [[1.0, 2.0, 3.0, 3.6], [0.0, 0.0, 0.0, 0.0]]])  # second: padding
    h, w, bg = 4, 5, 0.25
    expected = np.full((2, h, w), bg)
    for b, y, x in np.ndindex(2, h, w):
        for x1, y1, x2, y2 in boxes[b]:
            if x2 > x1 and y2 > y1 and x1 <= x + 0.5 <= x2 and y1 <= y + 0.5 <= y2:
                expected[b, y, x] = 1.0
    np.testing.assert_allclose(box_mask(boxes, h, w, bg), expected)
    scaled = boxes / np.array([w, h, w, h])
    np.testing.assert_allclose(box_mask(scaled, h, w, bg, normalized=True), expected)
    assert int(np.sum(expected == 1.0)) > 0


def test_box_mask_bad_arguments():
    boxes = np.zeros((1, 1, 4))
    with pytest.raises(ConfigError, match="background_weight"):
        box_mask(boxes, 4, 4, background_weight=-0.1)
    with pytest.raises(ConfigError, match="height"):
        box_mask(boxes, 0, 4)
    with pytest.raises(ConfigError, match=r"\(B, N, 4\)"):
        box_mask(np.zeros((1, 4)), 4, 4)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 1.0])
def test_difference_mask_marks_largest_disagreements(fraction):
    s, t = features(2)
    mask = np.asarray(difference_mask(s, t, fraction))
    k = max(1, math.ceil(fraction * 20 - 1e-9))
    assert mask.shape == (2, 4, 5)
    for b in range(2):
        score = ((t[b] - s[b]) ** 2).sum(-1).ravel()
        chosen = np.flatnonzero(mask[b].ravel())
        assert len(chosen) == k
        assert set(chosen) == set(np.argsort(-score)[:k])


def test_difference_mask_bad_fraction():
    s, t = features()
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ConfigError, match="top_fraction"):
            difference_mask(s, t, bad)


def test_attention_mask_matches_numpy():
    t = features(3)[1]
    temp = 0.7
    b, h, w, c = t.shape
    expected = np.zeros_like(t)
    for i in range(b):
        sp = np.array([[np.mean(np.abs(t[i, y, x])) for x in range(w)] for y in range(h)]) / temp
        sp = h * w * np.exp(sp) / np.exp(sp).sum()
        ch = np.array([np.mean(np.abs(t[i, :, :, k])) for k in range(c)]) / temp
        ch = c * np.exp(ch) / np.exp(ch).sum()
        expected[i] = sp[:, :, None] * ch[None, None, :]
    mask = attention_mask(t, temp)
    np.testing.assert_allclose(mask, expected, rtol=1e-10)
    np.testing.assert_allclose(jnp.sum(mask), b * h * w * c, rtol=1e-10)
    with pytest.raises(ConfigError, match="temperature"):
        attention_mask(t, 0.0)
