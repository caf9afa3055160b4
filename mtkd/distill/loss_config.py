"""A composite loss configuration: weighted loss terms, validated on construction.

Parsed from a list of dicts, as a TOML `[[losses]]` array gives it:

    [{"loss": "ce", "weight": 1.0},
     {"loss": "dkd", "weight": 1.0, "alpha": 1, "beta": 8, "temperature": 4},
     {"loss": "hint", "weight": 0.5, "student_layer": "hidden_1", "teacher_layer": "embedding"}]

Keys every term accepts: `loss` (a name in `mtkd.distill.terms.TERMS`), `weight` (>= 0,
default 1), `warmup` (a fraction of training in [0, 1]: the weight is scaled by
min(1, progress / warmup), progress being the fraction done at the start of the epoch, so the
term is off in the first epoch; DKD's published schedule is 20 of 240 epochs) and, for terms
that use teachers, `teachers` (a
list of teacher names; default: every teacher). Feature terms take `student_layer` and
`teacher_layer`; `teacher_layer` may map teacher names to layers (e.g. `{cnn = "conv_0",
resnet = "block_0"}`), and then only the mapped teachers take part. Every other key is an option
of the loss (see TERMS), checked here.
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from mtkd.distill.terms import REQUIRED, TERMS, TermKind
from mtkd.errors import ConfigError

COMMON_KEYS = ("loss", "weight", "warmup", "teachers")


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One weighted term. `options` holds every option of the loss, defaults filled in."""

    loss: str
    weight: float = 1.0
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    warmup: float = 0.0
    teachers: tuple[str, ...] | None = None

    def __post_init__(self):
        kind = TERMS.get(self.loss)  # UnknownNameError listing the known terms
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) \
                or not math.isfinite(self.weight) or self.weight < 0:
            raise ConfigError(f"loss term {self.loss!r}: weight must be a finite number >= 0, got {self.weight!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, (int, float)) or not 0 <= self.warmup <= 1:
            raise ConfigError(f"loss term {self.loss!r}: warmup must be a fraction of training in [0, 1], "
                              f"got {self.warmup!r}")
        unknown = sorted(set(self.options) - set(kind.options))
        if unknown:
            accepted = ", ".join(sorted({"weight", "warmup"} | ({"teachers"} if kind.uses_teachers else set())
                                        | set(kind.options)))
            raise ConfigError(f"loss term {self.loss!r} has no option(s) {', '.join(unknown)}; it accepts {accepted}")
        options = {name: self.options.get(name, default) for name, default in kind.options.items()}
        missing = sorted(name for name, value in options.items() if value is REQUIRED)
        if missing:
            raise ConfigError(f"loss term {self.loss!r} needs {', '.join(missing)}")
        try:
            kind.check(options)
            _check_layers(options)
        except ConfigError as error:
            raise ConfigError(f"loss term {self.loss!r}: {error}") from None
        if self.teachers is not None:
            if not kind.uses_teachers:
                raise ConfigError(f"loss term {self.loss!r} uses no teacher; it takes no `teachers` list")
            if isinstance(self.teachers, str) or not self.teachers or not all(isinstance(t, str) for t in self.teachers):
                raise ConfigError(f"loss term {self.loss!r}: teachers must be a non-empty list of teacher names, "
                                  f"got {self.teachers!r}")
            mapped = options.get("teacher_layer")
            if isinstance(mapped, Mapping) and set(self.teachers) - set(mapped):
                raise ConfigError(f"loss term {self.loss!r}: teachers {sorted(set(self.teachers) - set(mapped))} "
                                  f"have no entry in teacher_layer")
            object.__setattr__(self, "teachers", tuple(self.teachers))
        elif isinstance(options.get("teacher_layer"), Mapping):
            object.__setattr__(self, "teachers", tuple(options["teacher_layer"]))
        if isinstance(options.get("teacher_layer"), Mapping):
            options["teacher_layer"] = MappingProxyType(dict(options["teacher_layer"]))
        object.__setattr__(self, "weight", float(self.weight))
        object.__setattr__(self, "warmup", float(self.warmup))
        object.__setattr__(self, "options", MappingProxyType(options))

    @property
    def kind(self) -> TermKind:
        return TERMS.get(self.loss)

    def teacher_layer(self, teacher: str) -> str:
        """The layer of `teacher` this feature term reads."""
        layer = self.options["teacher_layer"]
        return layer[teacher] if isinstance(layer, Mapping) else layer

    def to_dict(self) -> dict[str, Any]:
        out = {"loss": self.loss, "weight": self.weight, **{k: dict(v) if isinstance(v, Mapping) else v
                                                             for k, v in self.options.items()}}
        if self.warmup:
            out["warmup"] = self.warmup
        if self.teachers is not None:
            out["teachers"] = list(self.teachers)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "LossTerm":
        if not isinstance(raw, Mapping) or "loss" not in raw:
            raise ConfigError(f"a loss term must be a table with a `loss` key, got {raw!r}")
        options = {k: v for k, v in raw.items() if k not in COMMON_KEYS}
        teachers = raw.get("teachers")
        return cls(str(raw["loss"]), raw.get("weight", 1.0), options, raw.get("warmup", 0.0),
                   tuple(teachers) if isinstance(teachers, (list, tuple)) else teachers)


def _check_layers(options: Mapping[str, Any]) -> None:
    if "student_layer" in options and not (isinstance(options["student_layer"], str) and options["student_layer"]):
        raise ConfigError(f"student_layer must be a layer name, got {options['student_layer']!r}")
    layer = options.get("teacher_layer")
    if layer is None:
        return
    if isinstance(layer, Mapping):
        if not layer or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in layer.items()):
            raise ConfigError(f"teacher_layer must be a layer name or a table teacher -> layer name, got {layer!r}")
    elif not (isinstance(layer, str) and layer):
        raise ConfigError(f"teacher_layer must be a layer name or a table teacher -> layer name, got {layer!r}")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The weighted sum of `terms` (see the module docstring). At least one term."""

    terms: tuple[LossTerm, ...]

    def __post_init__(self):
        terms = tuple(self.terms)
        if not terms:
            raise ConfigError("the loss configuration lists no loss terms")
        if not all(isinstance(t, LossTerm) for t in terms):
            raise ConfigError("LossConfig terms must be LossTerm objects; use LossConfig.from_dicts for dicts")
        object.__setattr__(self, "terms", terms)

    @classmethod
    def from_dicts(cls, raw: Sequence[Mapping[str, Any]]) -> "LossConfig":
        if isinstance(raw, Mapping) or isinstance(raw, str) or not isinstance(raw, Sequence):
            raise ConfigError(f"a loss configuration is a list of loss terms, got {type(raw).__name__}")
        return cls(tuple(LossTerm.from_dict(item) for item in raw))

    @property
    def uses_teachers(self) -> bool:
        return any(term.kind.uses_teachers and term.weight > 0 for term in self.terms)

    @property
    def uses_features(self) -> bool:
        return any(term.kind.source == "features" for term in self.terms)

    def to_dict(self) -> dict[str, Any]:
        """As a loss file holds it: {"losses": [terms]}."""
        return {"losses": self.to_dicts()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "LossConfig":
        unknown = sorted(set(raw) - {"losses", "description"})
        if unknown or "losses" not in raw:
            raise ConfigError("a loss configuration holds a `losses` list ([[losses]] tables)"
                              + (f"; unknown key(s): {', '.join(unknown)}" if unknown else ""))
        return cls.from_dicts(raw["losses"])

    def to_dicts(self) -> list[dict[str, Any]]:
        return [term.to_dict() for term in self.terms]


def loss_config_from(value: "LossConfig | Sequence[Mapping[str, Any]]") -> LossConfig:
    """A LossConfig as given, or parsed from a list of dicts."""
    return value if isinstance(value, LossConfig) else LossConfig.from_dicts(value)


__all__ = ["LossConfig", "LossTerm", "loss_config_from"]
