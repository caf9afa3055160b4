"""Plugins: a throw-away package, installed into a folder of its own with pip, registers a fusion
strategy through the `mtkd.plugins` entry points; the `mtkd` command then runs it by name. The
same module named by --plugin and by MTKD_PLUGINS works alike; a module that cannot be imported is
one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from mtkd.cli.main import main

PLUGIN = '''
"""A fusion strategy of one's own: all the weight on the pool's first teacher."""
import jax.numpy as jnp

from mtkd.fusion import STRATEGIES
from mtkd.fusion.strategies import FusionStrategy, no_argument


@STRATEGIES.register("first_only")
def first_only(context, argument):
    no_argument("first_only", argument)
    weights = jnp.zeros(context.num_teachers).at[0].set(1.0)
    return FusionStrategy("first_only", lambda batch: jnp.broadcast_to(weights, (batch.labels.shape[0],
                                                                                  context.num_teachers)))
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "mtkd-first-only"
version = "0.0.1"

[project.entry-points."mtkd.plugins"]
first_only = "mtkd_first_only"
'''


def mtkd(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtkd.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, "JAX_PLATFORMS": "cpu", **env}, timeout=600)


def test_a_plugin_package_registers_a_strategy_the_command_runs(data_dir, tiny_pool_dir, tmp_path):
    source = tmp_path / "source"
    (source / "mtkd_first_only").mkdir(parents=True)
    (source / "mtkd_first_only" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (source / "pyproject.toml").write_text(PYPROJECT)
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                              "--no-build-isolation", "--target", str(site), str(source)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    run = ["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--seeds", "2", "--epochs", "2",
           "--student-options", '{"widths": [8]}']
    # Installed: found through its entry point, with no flag.
    done = mtkd(run + ["--strategy", "first_only", "--strategy", "single:mlp_a", "--out", str(tmp_path / "entry")],
                PYTHONPATH=str(site))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((tmp_path / "entry" / "results.json").read_text())["rows"]
    # All the weight on the first teacher is `single:` of the first teacher, number for number.
    assert rows[0]["test_accuracy"] == rows[1]["test_accuracy"] and rows[0]["val_accuracy"] == rows[1]["val_accuracy"]
    # The plain module, named by --plugin or MTKD_PLUGINS (no entry point).
    modules = str(source)
    for extra, env in ((["--plugin", "mtkd_first_only"], {}), ([], {"MTKD_PLUGINS": "mtkd_first_only"})):
        out = tmp_path / f"out{len(extra)}"
        done = mtkd(run + ["--strategy", "first_only", *extra, "--out", str(out)], PYTHONPATH=modules, **env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads((out / "results.json").read_text())["rows"][0]["test_accuracy"] == rows[0]["test_accuracy"]
    # Without it the name is unknown, as any typo is.
    done = mtkd(run + ["--strategy", "first_only", "--out", str(tmp_path / "none")])
    assert done.returncode == 2 and "unknown fusion strategy 'first_only'" in done.stderr


def test_a_plugin_that_cannot_be_imported_is_one_line(tmp_path, capsys):
    assert main(["data", "info", "mnist1d", "--plugin", "no_such_module_xyz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "plugin 'no_such_module_xyz'" in err[0] and "cannot be imported" in err[0]


def test_version(capsys):
    from mtkd import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"mtkd {__version__}"
