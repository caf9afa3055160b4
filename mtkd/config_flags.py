"""Command-line flags generated from config dataclasses: one name per setting.

The field `credit_every` is the flag `--credit-every`, the config-file key `credit_every` and the
attribute `config.credit_every`: a flag is never spelled by hand, so the three cannot drift
apart. A field's help text is its `metadata["help"]`; the flag's default is None ("not given"), so
that the config's own default applies, and the help shows that default.
"""

from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import json
import types
import typing
from typing import Any, Mapping, Sequence

from mtkd.errors import ConfigError
from mtkd.typed_fields import check_fields


def setting(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING):
    """A dataclass field with a flag: its default (or default_factory) and its help text."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"help": help})


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _json_object(text: str, flag: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{flag} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object, got {text}")
    return value


def _is_mapping(hint: Any) -> bool:
    return typing.get_origin(hint) in (collections.abc.Mapping, dict) or hint in (collections.abc.Mapping, dict)


def _argument(hint: Any) -> dict[str, Any]:
    """argparse keywords for a field's type: bool, int, float, str (or one of those or None), or a
    mapping given as a JSON object."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if hint in (int, float, str):
        return {"type": hint}
    if _is_mapping(hint):  # parsed by `given_values`, so a bad one is a ConfigError like any other
        return {"type": str, "metavar": "JSON"}
    raise TypeError(f"no flag for a field of type {hint!r}")


def flag_fields(cls) -> list[dataclasses.Field]:
    """The fields of `cls` that have a flag: those with a help text."""
    return [field for field in dataclasses.fields(cls) if "help" in field.metadata]


def add_config_flags(group, configs: Sequence[tuple[str, type]], skip: tuple[str, ...] = ()) -> None:
    """One flag per field with a help text, over several configs ((label, dataclass) pairs); a
    field that several of them share (the same name is the same setting) gets one flag, and its
    help names each label's default where they differ."""
    seen: dict[str, list[tuple[str, type, dataclasses.Field]]] = {}
    for label, cls in configs:
        for field in flag_fields(cls):
            if field.name not in skip:
                seen.setdefault(field.name, []).append((label, cls, field))
    for name, owners in seen.items():
        label, cls, field = owners[0]
        defaults = {f"{_default(f)!s}": lab for lab, _, f in owners}
        if len(defaults) == 1:
            shown = next(iter(defaults))
        else:
            shown = ", ".join(f"{value} {lab}" for value, lab in defaults.items())
        group.add_argument(flag_name(name), dest=name, default=None,
                           help=f"{field.metadata['help']} (default: {shown})".replace("%", "%%"),
                           **_argument(typing.get_type_hints(cls)[name]))


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return json.dumps(field.default_factory())
    return "required"


def given_values(args: argparse.Namespace, cls, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of `cls` whose flags were given (the others keep the config's defaults); a
    mapping's JSON is parsed here."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in flag_fields(cls):
        value = getattr(args, field.name, None)
        if field.name in skip or value is None:
            continue
        values[field.name] = _json_object(value, flag_name(field.name)) if _is_mapping(hints[field.name]) else value
    return values


def _plain(value: Any) -> Any:
    """A field's value as plain data: a nested config by its own `to_dict`, tuples as lists."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


class DictConfig:
    """`to_dict()` and `from_dict()` for a frozen config dataclass: the keys are the field names,
    and an unknown key fails on construction, naming the known ones. A config whose file form
    differs (nested specs, flat keys) defines its own.

    Every field's value is checked against its annotation before the class's own
    `__post_init__` runs (`mtkd.typed_fields`): a string, a float or a bool where the field
    wants something else is refused in one line, whatever the value came from."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")

        def __post_init__(self):
            check_fields(self)
            validate = own or getattr(super(cls, self), "__post_init__", None)
            if validate is not None:
                validate(self) if own is not None else validate()

        cls.__post_init__ = __post_init__

    def to_dict(self) -> dict[str, Any]:
        return {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str | None = None):
        return config_from_values(cls, values, where or cls.__name__)


def config_from_values(cls, values: Mapping[str, Any], where: str):
    """`cls(**values)`; ConfigError names an unknown key and lists the known ones (as a typo in a
    config file would)."""
    known = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None
    except ConfigError as error:  # a value's check names the field; this names where it was given
        if str(error).startswith(where):
            raise
        raise type(error)(f"{where}: {error}") from None


__all__ = ["DictConfig", "add_config_flags", "config_from_values", "flag_fields", "flag_name", "given_values",
           "setting"]
