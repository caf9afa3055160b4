"""Plugins: a researcher's own models, fusion strategies, loss terms, selector policies and rewards,
registered in mtkd's registries by a module that mtkd imports before it resolves any name.

Three ways to name such a module, all imported in this order:
- installed packages declare it in the entry-point group `mtkd.plugins`
  (`[project.entry-points."mtkd.plugins"] mine = "my_package.mtkd_plugin"`);
- the environment variable `MTKD_PLUGINS` lists modules, separated by commas;
- `--plugin MODULE` on any command, repeatable.

A plugin module registers on import, e.g. `@mtkd.fusion.STRATEGIES.register("mine")`; see
docs/extending.md for one worked example per registry.
"""

from __future__ import annotations

import importlib
import os
from importlib import metadata

from mtkd.errors import ConfigError

ENTRY_POINT_GROUP = "mtkd.plugins"
ENVIRONMENT = "MTKD_PLUGINS"


def plugin_modules(flags: list[str] | None = None) -> list[str]:
    """Module names from the entry points, MTKD_PLUGINS and the --plugin flags, each once."""
    named = [entry.value for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    named += [name.strip() for name in os.environ.get(ENVIRONMENT, "").split(",") if name.strip()]
    named += list(flags or [])
    return list(dict.fromkeys(named))


def load_plugins(flags: list[str] | None = None) -> list[str]:
    """Imports every plugin module (see the module docstring); a module that cannot be imported
    is one ConfigError naming it and where it was named. Returns the modules imported."""
    modules = plugin_modules(flags)
    for name in modules:
        module = name.split(":", 1)[0]  # an entry point may name an attribute too; the module registers
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ConfigError(f"plugin {name!r} (from --plugin, {ENVIRONMENT} or the {ENTRY_POINT_GROUP!r} entry "
                              f"points) cannot be imported: {error}") from None
    return modules


__all__ = ["ENTRY_POINT_GROUP", "ENVIRONMENT", "load_plugins", "plugin_modules"]
