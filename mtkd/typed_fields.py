"""Strict type checks of config values against their annotations, before any work.

TOML, YAML and JSON give a string, a float or a bool wherever a user writes one, and Python
accepts most of them quietly: `int("6")` works, `tuple("64")` is ('6', '4'), `6.5` reaches
`range` deep inside a run. Every config dataclass is checked here on construction instead, so a
wrong type is one line naming the key, the value and what was expected.

The rules are the strict ones a researcher expects: no string where a number or a list is
expected, no float where an int is, no bool where a number is. An int is a valid float (TOML
writes `temperature = 8`), and is kept as written so that a run's signature does not change.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import math
import pathlib
import types
import typing
from typing import Any

from mtkd.errors import ConfigError


def describe(hint: Any) -> str:
    """A type annotation in a user's words: "a whole number", "a list of whole numbers", ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = list(dict.fromkeys(describe(arg) for arg in args if arg is not type(None)))  # once each
        text = " or ".join(options)
        return f"{text} (or nothing)" if type(None) in args else text
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin in (tuple, list, collections.abc.Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)}: " + ", ".join(describe(arg) for arg in args)
        return f"a list of {_plural(describe(args[0]))}" if args else "a list"
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        return "a table"
    return _NAMES.get(hint, getattr(hint, "__name__", str(hint)))


_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
          pathlib.Path: "a path", type(None): "nothing", Any: "anything"}


def _plural(text: str) -> str:
    for singular, plural in (("a whole number", "whole numbers"), ("a number", "numbers"), ("a string", "strings"),
                             ("a table", "tables"), ("true or false", "true/false values")):
        if text == singular:
            return plural
    return text


def conforms(value: Any, hint: Any) -> bool:
    """Whether `value` is of type `hint`, strictly (see the module's docstring)."""
    if hint is Any or hint is typing.Any or isinstance(hint, (str, typing.TypeVar)):
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is pathlib.Path:
        return isinstance(value, (str, pathlib.PurePath))
    if origin in (tuple, list, collections.abc.Sequence) or hint in (tuple, list, collections.abc.Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return False
        if not args:
            return True
        if origin is tuple and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(conforms(v, a) for v, a in zip(value, args))
        return all(conforms(item, args[0]) for item in value)
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        if not isinstance(value, collections.abc.Mapping):
            return False
        if len(args) == 2:
            return all(conforms(k, args[0]) and conforms(v, args[1]) for k, v in value.items())
        return True
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this checker does not read (a Callable, a Protocol): not checked


def check_value(value: Any, hint: Any, where: str) -> None:
    """ConfigError "WHERE = VALUE: expected ..." unless `value` conforms to `hint`; a float must
    also be finite."""
    if not conforms(value, hint):
        raise ConfigError(f"{where} = {_shown(value)}: expected {describe(hint)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} = {value!r}: expected a finite number")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_fields(instance: Any, where: str | None = None, skip: tuple[str, ...] = ()) -> None:
    """Every field of a dataclass instance against its annotation (`check_value`), named
    `WHERE FIELD` (WHERE defaults to the class's name), but those in `skip`."""
    hints = _hints(type(instance))
    where = where or type(instance).__name__
    for field in dataclasses.fields(instance):
        if field.name not in skip:
            check_value(getattr(instance, field.name), hints[field.name], f"{where} {field.name}")


def check_arguments(function: Any, values: typing.Mapping[str, Any], where: str) -> None:
    """Keyword values against a function's annotated parameters (a model's options against its
    constructor), each named `WHERE NAME`; unannotated parameters are not checked."""
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):  # an annotation that does not resolve: leave it to the function
        hints = {}
    for name, value in values.items():
        if name in hints and name != "return":
            check_value(value, hints[name], f"{where} {name}")


__all__ = ["check_arguments", "check_fields", "check_value", "conforms", "describe"]
