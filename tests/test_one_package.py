"""One top-level package: pyproject's package list names every package folder of the repository,
with envs/ and agents/ installed as mtkd.envs and mtkd.agents, and nothing else at the top."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _installed_name(folder: Path) -> str:
    parts = folder.relative_to(ROOT).parts
    return ".".join(("mtkd", *parts) if parts[0] in ("envs", "agents") else parts)


def test_the_package_list_names_every_package_folder_under_mtkd():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {_installed_name(init.parent) for top in ("mtkd", "envs", "agents")
               for init in (ROOT / top).rglob("__init__.py")}
    assert set(setuptools["packages"]) == folders
    assert {name.split(".")[0] for name in setuptools["packages"]} == {"mtkd"}
    assert setuptools["package-dir"] == {"mtkd.envs": "envs", "mtkd.agents": "agents"}


def test_envs_and_agents_are_not_top_level_modules_once_installed(tmp_path):
    """Run from an empty folder, so that the repository root is not on the path: the generic
    names stay free for a researcher's own folders, and the gymnasium id works both ways."""
    import subprocess
    import sys

    code = ("import importlib.util, gymnasium\n"
            "assert importlib.util.find_spec('envs') is None and importlib.util.find_spec('agents') is None\n"
            "assert 'mtkd/TeacherSelection-v0' not in gymnasium.registry\n"
            "import mtkd.envs, mtkd.agents\n"
            "spec = gymnasium.spec('mtkd/TeacherSelection-v0')\n"
            "print(spec.entry_point, mtkd.envs.__name__, mtkd.agents.make_policy.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["mtkd.envs.gym_env:TeacherSelectionEnv", "mtkd.envs", "mtkd.agents.policies"]
    # gymnasium's `module:id` form imports mtkd.envs itself: the environment's own check of its
    # params answers, not gymnasium's "no registered env".
    code = ("import gymnasium\n"
            "try:\n"
            "    gymnasium.make('mtkd.envs:mtkd/TeacherSelection-v0', params='not params')\n"
            "except Exception as error:\n"
            "    print(type(error).__module__, error)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.startswith("mtkd.errors params must be an mtkd.envs.EnvParams"), out.stdout
