"""`ModelSpec`, the serialisable description of one network, and `MODELS`, the registry of
architectures (this module was `models/registry.py`; renamed so it no longer shares a name with
`mtkd/registry.py`, the generic `Registry` type)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Mapping

import jax
from flax import nnx

from mtkd.errors import ConfigError
from mtkd.registry import Registry
from mtkd.typed_fields import check_arguments

MODELS: Registry[type[nnx.Module]] = Registry("model")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """An architecture name plus its keyword options, e.g. `ModelSpec("mlp", {"widths": [100, 100]})`.

    Options are validated against the model's constructor when the spec is made, so a typo in a
    pool file fails before any training starts.
    """

    arch: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.arch, str):
            raise ConfigError(f"a model's arch must be an architecture name, got {self.arch!r}")
        model_class = MODELS.get(self.arch)  # raises UnknownNameError for an unknown architecture
        if not isinstance(self.options, Mapping):
            raise ConfigError(f"model {self.arch!r}: options must be a table, got {self.options!r}")
        accepted = set(inspect.signature(model_class.__init__).parameters) - {
            "self", "input_shape", "num_classes", "rngs"}
        unknown = sorted(set(self.options) - accepted)
        if unknown:
            raise ConfigError(
                f"model {self.arch!r} has no option(s) {', '.join(unknown)}; "
                f"it accepts {', '.join(sorted(accepted))}")
        # Strictly typed against the constructor: `widths = "64"` would otherwise build layers 6 and 4.
        check_arguments(model_class.__init__, self.options, f"model {self.arch!r} option")
        object.__setattr__(self, "options", dict(self.options))

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "options": _jsonable(self.options)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelSpec":
        unknown = sorted(set(data) - {"arch", "options"})
        if unknown or "arch" not in data:
            raise ConfigError(f"a model is {{arch, options}}; got key(s) {', '.join(sorted(data))}")
        return cls(arch=data["arch"], options=dict(data.get("options", {})))

    def key(self) -> str:
        """A stable string identifying the architecture and options (teachers that share it stack)."""
        import json

        return json.dumps(self.to_dict(), sort_keys=True)


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}


def abstract_model(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nnx.Module:
    """The model with shapes and dtypes only (`nnx.eval_shape`): its graph definition, its
    parameters' structure, a check that it can read such inputs; nothing is allocated. Every
    path that trains or loads a model goes through here, so a model that cannot read the data is
    refused here, before any work."""
    return nnx.eval_shape(lambda: build_model(spec, input_shape, num_classes, nnx.Rngs(0)))


def parameters_only_model(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int, method: str) -> nnx.Module:
    """`abstract_model` for the trainers whose state is parameters alone (deep mutual learning,
    BYOT, feature losses, the joint selector's environment): a model with BatchNorm running
    statistics is refused there in one line, before any work, rather than trained wrongly
    (statistics never updated, evaluation on batch statistics). `fit` (fusion strategies, single
    teachers, best_subset, the population selector, teacher training) carries them."""
    model = abstract_model(spec, input_shape, num_classes)
    if jax.tree.leaves(nnx.state(model, nnx.BatchStat)):
        raise ConfigError(f"model {spec.arch!r} keeps BatchNorm running statistics, which {method} does not carry; "
                          f"it trains under the fusion strategies, single teachers, best_subset and rl")
    return model


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int, rngs: nnx.Rngs) -> nnx.Module:
    """Instantiates `spec` for inputs of `input_shape` (per example) and `num_classes` outputs."""
    model_class = MODELS.get(spec.arch)
    return model_class(tuple(input_shape), int(num_classes), rngs=rngs, **spec.options)
