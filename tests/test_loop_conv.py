"""`mtkd.models.loop_conv`: the CPU convolution whose kernel gradient is a product of patches,
against JAX's own gradient of `lax.conv_general_dilated`, for the shapes the CIFAR zoo uses
(3x3 and 1x1, strides 1 and 2, grouped and depthwise), and inside `lax.scan`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from mtkd.models.loop_conv import NHWC, loop_friendly_conv


@pytest.mark.parametrize("cin, cout, size, stride, pad, groups", [
    (6, 8, 3, 1, 1, 1), (6, 8, 3, 2, 1, 1), (8, 8, 3, 1, 1, 8), (8, 12, 1, 1, 0, 4), (4, 6, 1, 2, 0, 1)])
def test_gradients_equal_jax_own(cin, cout, size, stride, pad, groups):
    rng = np.random.default_rng(cin * 100 + cout + groups)
    x = jnp.asarray(rng.normal(size=(3, 9, 10, cin)).astype(np.float32))
    kernel = jnp.asarray(rng.normal(size=(size, size, cin // groups, cout)).astype(np.float32))
    padding = ((pad, pad), (pad, pad))
    out = lax.conv_general_dilated(x, kernel, (stride, stride), padding, dimension_numbers=NHWC,
                                   feature_group_count=groups)
    cotangent = jnp.asarray(rng.normal(size=out.shape).astype(np.float32))

    def objective(conv):
        return lambda x, k: (conv(x, k, (stride, stride), padding, dimension_numbers=NHWC,
                                  feature_group_count=groups) * cotangent).sum()

    want = jax.grad(objective(lax.conv_general_dilated), argnums=(0, 1))(x, kernel)
    got = jax.grad(objective(loop_friendly_conv), argnums=(0, 1))(x, kernel)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))  # the input's: lax's own
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(loop_friendly_conv(x, kernel, (stride, stride), padding,
                                                                dimension_numbers=NHWC, feature_group_count=groups)),
                                  np.asarray(out))


def test_sgd_steps_inside_scan_match_the_plain_convolution():
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.normal(size=(3, 4, 8, 8, 5)).astype(np.float32))
    kernel = jnp.asarray(rng.normal(size=(3, 3, 5, 7)).astype(np.float32)) * 0.1

    def run(conv):
        def step(k, x):
            loss = lambda k: (conv(x, k, (1, 1), ((1, 1), (1, 1)), dimension_numbers=NHWC) ** 2).mean()
            return k - 0.1 * jax.grad(loss)(k), None
        return jax.jit(lambda k: lax.scan(step, k, xs)[0])(kernel)

    np.testing.assert_allclose(np.asarray(run(loop_friendly_conv)), np.asarray(run(lax.conv_general_dilated)),
                               rtol=1e-5, atol=1e-6)
