"""Entry point of the `mtkd` console script.

Each sub-command lives in its own module with a `register(subparsers)` function that adds its
parser and sets `func`, a callable taking the parsed namespace and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mtkd import __version__
from mtkd.errors import MtkdError

# Sub-command modules, in the order `mtkd --help` lists them.
COMMAND_MODULES = (
    "mtkd.cli.data_command",
    "mtkd.cli.teachers_command",
    "mtkd.cli.distill_command",
    "mtkd.cli.select_command",
    "mtkd.cli.quickstart_command",
    "mtkd.cli.ablate_command",
    "mtkd.cli.bench_command",
    "mtkd.cli.compare_command",
)


# Settings read from the environment (each command's own options are under `mtkd COMMAND --help`).
ENVIRONMENT_HELP = """environment:
  MTKD_DATA_DIR           prepared data sets (default ~/.cache/mtkd/tensorflow_datasets)
  MTKD_POOL_DIR           default teacher pools (default ~/.cache/mtkd/pools)
  MTKD_COMPILATION_CACHE  JAX's compiled programs kept between runs: off, or a directory
                          (default ~/.cache/mtkd/jax_cache)
  MTKD_TEACHER_CACHE      teacher logits kept between runs: off, or a directory
                          (default ~/.cache/mtkd/teacher_logits)
  MTKD_PLUGINS            modules to import first (comma-separated), as --plugin does
  MTKD_TRACKERS           wandb and/or mlflow (comma-separated): each finished row sent there too
  MTKD_PROGRESS           lines: plain progress lines on a terminal instead of bars
                          (docs/extending.md)"""


class UserError(Exception):
    """A problem with the user's input: reported as one line, exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtkd",
        description="Multi-teacher knowledge distillation with a learned teacher selector.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mtkd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:  # a sub-command not written yet
                continue
            raise
        module.register(subparsers)
    for command in _all_commands(subparsers):  # every command, sub-commands included
        command.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                             help="import MODULE first, so that the models, strategies, losses, policies or "
                                  "rewards it registers can be named (repeatable; also MTKD_PLUGINS and the "
                                  "'mtkd.plugins' entry points; docs/extending.md)")
    return parser


def _all_commands(subparsers) -> list[argparse.ArgumentParser]:
    """The parsers that run something: each command's, or its actions' where it has some."""
    found = []
    for command in dict.fromkeys(subparsers.choices.values()):
        actions = [action for action in command._actions if isinstance(action, argparse._SubParsersAction)]
        found += _all_commands(actions[0]) if actions else [command]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # --help and bad flags end here, before JAX is imported
    from mtkd.interrupts import RunStopped, handling_stops
    from mtkd.plugins import load_plugins

    try:
        # From here a signal never interrupts Python mid-way (an XLA compilation included): the run
        # stops at its next epoch boundary, after a checkpoint (`mtkd.interrupts`).
        with handling_stops():
            from mtkd.compilation_cache import enable_compilation_cache

            enable_compilation_cache()
            load_plugins(args.plugin)  # before any name is resolved
            importlib.import_module("mtkd.selector_strategy")  # `rl` among the fusion strategies, for every command
            return int(args.func(args) or 0)
    except (UserError, MtkdError) as error:
        print(f"mtkd: error: {error}", file=sys.stderr)
        return 2
    except RunStopped as stop:
        print(f"mtkd: {stop}", file=sys.stderr)
        return stop.exit_code
    except OSError as error:  # the machine's, not the user's input: a full disk, a folder gone mid-run
        print(f"mtkd: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
