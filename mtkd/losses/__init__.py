"""Distillation losses: pure jax.numpy functions returning a scalar averaged over the batch.

`LOSSES` maps a loss name to its function. Invalid hyper-parameters or shapes raise
`mtkd.errors.ConfigError`. See docs/methods.md (Distillation objective, Distillation losses) for the formulas.
"""

from mtkd.losses.attention import attention_map, attention_transfer
from mtkd.losses.darkrank import darkrank
from mtkd.losses.dist import dist
from mtkd.losses.dkd import dkd, nckd, tckd
from mtkd.losses.fsp import fsp, fsp_matrix
from mtkd.losses.hint import hint
from mtkd.losses.kd import kd, kd_per_example
from mtkd.losses.masked_imitation import masked_imitation
from mtkd.losses.masks import attention_mask, box_mask, difference_mask
from mtkd.losses.rkd import rkd_angle, rkd_distance
from mtkd.registry import Registry

LOSSES = Registry("loss")
for _name, _fn in (
    ("kd", kd),
    ("dkd", dkd),
    ("hint", hint),
    ("attention_transfer", attention_transfer),
    ("fsp", fsp),
    ("rkd_distance", rkd_distance),
    ("rkd_angle", rkd_angle),
    ("darkrank", darkrank),
    ("masked_imitation", masked_imitation),
    ("dist", dist),
):
    LOSSES.add(_name, _fn)
del _name, _fn

__all__ = [
    "LOSSES",
    "attention_map",
    "attention_mask",
    "attention_transfer",
    "box_mask",
    "darkrank",
    "difference_mask",
    "dist",
    "dkd",
    "fsp",
    "fsp_matrix",
    "hint",
    "kd",
    "kd_per_example",
    "masked_imitation",
    "nckd",
    "rkd_angle",
    "rkd_distance",
    "tckd",
]
