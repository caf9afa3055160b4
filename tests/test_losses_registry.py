"""The LOSSES registry: names, objects, unknown names."""

import pytest

import mtkd.losses as losses
from mtkd.errors import UnknownNameError


def test_registry_names_map_to_functions():
    expected = {
        "kd": losses.kd, "dkd": losses.dkd, "hint": losses.hint,
        "attention_transfer": losses.attention_transfer, "fsp": losses.fsp,
        "rkd_distance": losses.rkd_distance, "rkd_angle": losses.rkd_angle,
        "darkrank": losses.darkrank, "masked_imitation": losses.masked_imitation, "dist": losses.dist,
    }
    assert losses.LOSSES.names() == sorted(expected)
    for name, fn in expected.items():
        assert losses.LOSSES.get(name) is fn


def test_registry_unknown_name():
    with pytest.raises(UnknownNameError, match="kd"):
        losses.LOSSES.get("crd")
