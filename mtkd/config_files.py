"""Reading a TOML or YAML configuration file into a plain mapping."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from mtkd.errors import ConfigError

CONFIG_SUFFIXES = (".toml", ".yaml", ".yml")


def read_config_file(path: str | Path, what: str) -> dict[str, Any]:
    """The file's top-level table (TOML by suffix, else YAML); ConfigError, naming `what`, if it
    is missing, unreadable or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    text = path.read_text()
    try:
        raw = tomllib.loads(text) if path.suffix.lower() == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{what} {path} is not valid: {error}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must hold a table of keys, not {type(raw).__name__}")
    return raw
