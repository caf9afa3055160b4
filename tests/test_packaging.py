"""The declared minimum Python (`requires-python` in pyproject.toml) is the one the code is
written for: every module parses with that version's grammar, and the suite runs on at least it."""

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def declared_minimum() -> tuple[int, int]:
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r"\s*>=\s*(\d+)\.(\d+)\s*", spec)
    assert match, f"requires-python should be a plain minimum such as '>=3.11', got {spec!r}"
    return int(match.group(1)), int(match.group(2))


def test_every_module_parses_with_the_declared_minimum_grammar():
    minimum = declared_minimum()
    files = [path for folder in ("mtkd", "envs", "agents", "experiments", "tests") for path in (ROOT / folder).rglob("*.py")]
    assert len(files) > 100
    for path in files:
        ast.parse(path.read_text(), filename=str(path), feature_version=minimum)


def test_the_suite_runs_on_at_least_the_declared_minimum():
    assert sys.version_info[:2] >= declared_minimum()
    # tomllib (3.11) is what the config readers use: the minimum cannot be lower.
    assert declared_minimum() >= (3, 11)
