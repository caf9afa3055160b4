"""How often a long run checkpoints; kept apart from `mtkd.run_checkpoints` (Orbax, JAX) so that
the command line can show and check it without importing either."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from mtkd.config_flags import DictConfig
from mtkd.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class CheckpointConfig(DictConfig):
    """every_epochs: save after every N epochs (None: by time only); every_seconds: save when S
    seconds have passed since the last save (None: by epochs only). Neither changes a result."""

    every_epochs: int | None = None
    every_seconds: float | None = 60.0

    def __post_init__(self):
        if self.every_epochs is not None and (isinstance(self.every_epochs, bool)
                                              or not isinstance(self.every_epochs, int) or self.every_epochs < 1):
            raise ConfigError(f"checkpoint every_epochs must be a whole number >= 1, got {self.every_epochs!r}")
        if self.every_seconds is not None and (isinstance(self.every_seconds, bool)
                                               or not isinstance(self.every_seconds, (int, float))
                                               or not math.isfinite(self.every_seconds) or self.every_seconds < 0):
            raise ConfigError(f"checkpoint every_seconds must be a number >= 0, got {self.every_seconds!r}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "CheckpointConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"[checkpoint] has unknown key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**raw)
