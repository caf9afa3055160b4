"""Package attributes imported on first use (PEP 562), so that importing a package, or one light
module inside it, does not import JAX, Flax, Orbax or TFDS.

The command line reads a few names (config dataclasses, data set and preset names) to build its
flags and help; with eager package imports `mtkd --help` took seconds. A package lists its public
names and the module each comes from; `from package import NAME` and `package.NAME` work as before.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Callable, Mapping, Sequence


def lazy_exports(package: str, modules: Mapping[str, Sequence[str]]) -> tuple[Callable[[str], object],
                                                                                Callable[[], list], list[str]]:
    """(__getattr__, __dir__, __all__) for `package`, given {module: the names it exports}: a name
    is imported from its module the first time it is read, then kept on the package."""
    exports = {name: module for module, names in modules.items() for name in names}
    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    class Package(types.ModuleType):
        def __setattr__(self, name: str, value):
            # Importing a submodule binds it on its package; where an export has the submodule's
            # name (`mtkd.envs.rollout`, the function of `envs/rollout.py`) the export wins, as it did
            # when the package imported everything eagerly.
            if name in exports and isinstance(value, types.ModuleType) and value.__name__ == f"{package}.{name}":
                value = getattr(value, name)
            super().__setattr__(name, value)

    sys.modules[package].__class__ = Package
    return __getattr__, __dir__, sorted(exports)


__all__ = ["lazy_exports"]
