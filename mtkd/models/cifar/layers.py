"""Building blocks shared by the CIFAR-100 model zoo: convolutions padded as PyTorch pads them,
BatchNorm with PyTorch's defaults, the pooling layers the reference networks use, channel shuffle.

Everything is channels-last (NHWC)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.models.loop_conv import loop_friendly_conv

# He-normal on the fan-out (kernel area x output channels), the initialisation the reference
# networks give their convolutions (kaiming_normal_(mode="fan_out") or normal(0, sqrt(2 / n))).
CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


def conv(in_channels: int, out_channels: int, kernel: int, *, rngs: nnx.Rngs, stride: int = 1,
         groups: int = 1, bias: bool = False) -> nnx.Conv:
    """A square convolution padded by kernel // 2 on every side (PyTorch's `padding=1` for 3x3,
    0 for 1x1). Explicit rather than "SAME": with stride 2 on an even input "SAME" pads only the
    bottom/right edge, which shifts every window by one pixel against the reference. Its kernel
    gradient avoids XLA's slow path inside `lax.scan` on the CPU (`mtkd.models.loop_conv`)."""
    pad = kernel // 2
    return nnx.Conv(in_channels, out_channels, (kernel, kernel), strides=(stride, stride),
                    padding=((pad, pad), (pad, pad)), feature_group_count=groups, use_bias=bias,
                    kernel_init=CONV_INIT, conv_general_dilated=loop_friendly_conv, rngs=rngs)


def batch_norm(channels: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """BatchNorm with PyTorch's defaults: running averages decay by 0.9 (torch's momentum 0.1),
    epsilon 1e-5. Starts in training mode, as a torch module does; `model.eval()` switches it to
    the running statistics."""
    return nnx.BatchNorm(channels, momentum=0.9, epsilon=1e-5, rngs=rngs)


def global_avg_pool(x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, C). The references' AvgPool2d(8), avg_pool2d(x, 4) and
    AdaptiveAvgPool2d(1) all cover the whole map at 32x32 input."""
    return jnp.mean(x, axis=(1, 2))


def max_pool_2x2(x: jax.Array) -> jax.Array:
    return nnx.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")


def avg_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """PyTorch's AvgPool2d(3, stride=2, padding=1) with its default count_include_pad=True: the
    zero padding counts, every window sum is divided by 9 (flax's own default too)."""
    return nnx.avg_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), count_include_pad=True)


def channel_shuffle(x: jax.Array, groups: int) -> jax.Array:
    """ShuffleNet's shuffle on the last axis: channel g * (C / groups) + i moves to i * groups + g."""
    if groups == 1:
        return x
    *lead, c = x.shape
    return x.reshape(*lead, groups, c // groups).swapaxes(-1, -2).reshape(*lead, c)


def image_channels(arch: str, input_shape: tuple[int, ...]) -> int:
    """The channel count of an (H, W, C) image input; the zoo's networks are 2-D only."""
    if len(input_shape) != 3 or min(input_shape) <= 0:
        raise ConfigError(f"{arch} takes (height, width, channels) images such as (32, 32, 3), got {tuple(input_shape)}")
    return int(input_shape[-1])
