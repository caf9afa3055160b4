"""Typed views of an ablation config's `[dml]` and `[byot]` sections, checked before any training.

Each section is read into a frozen dataclass whose construction refuses unknown keys (naming the
known ones) and bad values, so a typo in the fifth strategy's section fails before the first
strategy trains.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from mtkd.errors import ConfigError
from mtkd.models import ModelSpec
from mtkd.typed_fields import check_fields


def _refuse_unknown(section: str, raw: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"ablation config [{section}] has unknown key(s): {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")


def _positive_number(section: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"ablation config [{section}] {name} must be a finite number > 0, got {value!r}")
    return float(value)


UPDATES = ("sequential", "simultaneous")


@dataclasses.dataclass(frozen=True)
class DmlSection:
    """`[dml]`: peers (a count of copies of the student, or a list of peer models), update
    ("sequential", the paper's, or "simultaneous") and the peer-to-peer temperature."""

    peers: int | tuple[ModelSpec, ...] = 2
    update: str = "sequential"
    temperature: float = 1.0

    def __post_init__(self):
        check_fields(self, "ablation config [dml]", skip=("peers",))  # peers: checked below, with its own words
        if isinstance(self.peers, bool) or (isinstance(self.peers, int) and self.peers < 2) or (
                isinstance(self.peers, tuple) and len(self.peers) < 2):
            raise ConfigError(f"ablation config [dml] peers must be at least 2 (a count or a list of models), "
                              f"got {self.peers!r}")
        if self.update not in UPDATES:
            raise ConfigError(f"ablation config [dml] update must be one of {', '.join(UPDATES)}, got {self.update!r}")
        _positive_number("dml", "temperature", self.temperature)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "DmlSection":
        _refuse_unknown("dml", raw, {f.name for f in dataclasses.fields(cls)})
        peers = raw.get("peers", 2)
        if isinstance(peers, (list, tuple)):
            from mtkd.dml.peers import peer_spec_from  # the peers' own parser: names or {arch, options}
            peers = tuple(peer_spec_from(p) for p in peers)
        elif isinstance(peers, bool) or not isinstance(peers, int):
            raise ConfigError(f"ablation config [dml] peers must be a count or a list of models, got {peers!r}")
        return cls(peers, raw.get("update", "sequential"), raw.get("temperature", 1.0))

    def to_dict(self) -> dict[str, Any]:
        peers = self.peers if isinstance(self.peers, int) else [spec.to_dict() for spec in self.peers]
        return {"peers": peers, "update": self.update, "temperature": self.temperature}

    def peer_specs(self, student: ModelSpec) -> list[ModelSpec]:
        return [student] * self.peers if isinstance(self.peers, int) else list(self.peers)


BYOT_LOSS_KEYS = ("kd_weight", "temperature", "feature_weight")


@dataclasses.dataclass(frozen=True)
class ByotSection:
    """`[byot]`: the BYOT loss's kd_weight, temperature and feature_weight, and the `byot`
    architecture's own options (channels, blocks, kernel_size), checked against the model."""

    kd_weight: float = 0.3
    temperature: float = 3.0
    feature_weight: float = 0.03
    model: ModelSpec = ModelSpec("byot")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "ByotSection":
        from mtkd.distill.byot import ByotConfig  # checks the loss values
        if "alpha" in raw:
            raise ConfigError("ablation config [byot]: 'alpha' is now 'kd_weight' (the weight of the KL term)")
        loss = {k: raw[k] for k in BYOT_LOSS_KEYS if k in raw}
        options = {k: v for k, v in raw.items() if k not in BYOT_LOSS_KEYS}
        try:
            model = ModelSpec("byot", options)
        except ConfigError as error:
            raise ConfigError(f"ablation config [byot]: {error} (or the loss keys {', '.join(BYOT_LOSS_KEYS)})") from None
        checked = ByotConfig(**loss)
        return cls(checked.kd_weight, checked.temperature, checked.feature_weight, model)

    def to_dict(self) -> dict[str, Any]:
        """As a `[byot]` table: the loss's keys and the architecture's options side by side."""
        return {"kd_weight": self.kd_weight, "temperature": self.temperature, "feature_weight": self.feature_weight,
                **self.model.to_dict()["options"]}

    def run_options(self) -> dict[str, Any]:
        """The keyword arguments of `mtkd.distill.byot.run_byot`."""
        return {"kd_weight": self.kd_weight, "temperature": self.temperature, "feature_weight": self.feature_weight,
                **self.model.options}
