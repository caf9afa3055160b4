"""Layers import one way: every module's imports (static ones and `importlib.import_module("...")`
with a literal name) are parsed, and none may reach a higher layer; nor may two packages import
each other, directly or round a longer cycle. docs/architecture.md describes the layers."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Bottom up. A module belongs to the layer of the longest prefix that names it (or a package above it).
LAYERS = [
    ("foundations", ["mtkd", "mtkd.errors", "mtkd.seeds", "mtkd.registry", "mtkd.config_files", "mtkd.checkpoints",
                     "mtkd.run_checkpoints", "mtkd.runs", "mtkd.distributed", "mtkd.devices", "mtkd.progress", "mtkd.compilation_cache", "mtkd.cache_dirs", "mtkd.timing", "mtkd.machine",
                     "mtkd.train_config", "mtkd.optimizers", "mtkd.augment", "mtkd.data", "mtkd.models", "mtkd.losses",
                     "mtkd.typed_fields", "mtkd.interrupts", "mtkd.config_flags", "mtkd.checkpoint_config"]),
    ("fusion", ["mtkd.fusion"]),
    ("teachers", ["mtkd.teachers"]),
    ("trainer", ["mtkd.distill", "mtkd.dml"]),
    ("envs", ["mtkd.envs"]),
    ("agents", ["mtkd.agents"]),
    ("application", ["mtkd.api", "mtkd.cli", "mtkd.ablation", "mtkd.bench", "mtkd.image_bench", "mtkd.torch_peer", "mtkd.selector_strategy"]),
]
PREFIXES = {prefix: (rank, name) for rank, (name, prefixes) in enumerate(LAYERS) for prefix in prefixes}


def owner(module: str) -> str | None:
    """The longest prefix of LAYERS that `module` is or lies under (None: not ours)."""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        if prefix in PREFIXES:
            return prefix
    return None


def module_name(path: Path) -> str:
    """The installed name: the repository's envs/ and agents/ are mtkd.envs and mtkd.agents."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] in ("envs", "agents"):
        parts = ("mtkd", *parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str) -> list[tuple[str, int]]:
    """(module imported, line) for every absolute import and literal `import_module` call."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from mtkd import agents` imports mtkd.agents: name it so that its layer is seen.
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.args[0].value, node.lineno))
    return found


def import_graph() -> dict[str, list[tuple[str, int]]]:
    graph = {}
    for package in ("mtkd", "envs", "agents"):
        for path in sorted((ROOT / package).rglob("*.py")):
            graph[module_name(path)] = imports_of(path.read_text())
    return graph


def upward_imports(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    problems = []
    for module, imports in graph.items():
        here = owner(module)
        for imported, line in imports:
            there = owner(imported)
            if here is None or there is None:
                continue
            if PREFIXES[there][0] > PREFIXES[here][0]:
                problems.append(f"{module}:{line} ({PREFIXES[here][1]}) imports {imported} ({PREFIXES[there][1]})")
    return problems


def package_cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Cycles between packages (the owners of LAYERS), each as the packages in order."""
    edges: dict[str, set[str]] = {}
    for module, imports in graph.items():
        here = owner(module)
        for imported, _ in imports:
            there = owner(imported)
            if here and there and here != there and not here.startswith(there + "."):
                edges.setdefault(here, set()).add(there)
    cycles, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if owner(m) is None] == []


def test_no_module_imports_a_higher_layer():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle_between_packages():
    assert package_cycles(import_graph()) == []


def test_the_checks_catch_an_upward_import_and_a_cycle_on_a_synthetic_graph():
    graph = {
        "mtkd.fusion.uniform": imports_of("from mtkd.models import build_model\nimport numpy"),
        "mtkd.teachers.pool": imports_of("import importlib\nimportlib.import_module('mtkd.distill.fit')"),
        "mtkd.distill.fit": imports_of("from mtkd.teachers.pool import TeacherPool"),
        "mtkd.envs.core": imports_of("def f():\n    from mtkd.agents.policies import make_policy\n"),
    }
    assert upward_imports(graph) == [
        "mtkd.teachers.pool:2 (teachers) imports mtkd.distill.fit (trainer)",
        "mtkd.envs.core:2 (envs) imports mtkd.agents.policies.make_policy (agents)"]
    assert package_cycles(graph) == [["mtkd.distill", "mtkd.teachers", "mtkd.distill"]]
    assert upward_imports({"mtkd.cli.main": imports_of("from mtkd import agents\nfrom mtkd.envs import core")}) == []
    assert upward_imports({"mtkd.fusion.x": imports_of("from mtkd import envs")}) == [
        "mtkd.fusion.x:1 (fusion) imports mtkd.envs (envs)"]


def test_the_command_line_parser_imports_no_heavy_library():
    """`mtkd --help` and a bad flag answer without JAX, Flax, Orbax, optax or TFDS (they took
    seconds to import); the commands import them when they run."""
    import subprocess
    import sys

    code = ("import sys; from mtkd.cli.main import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('jax', 'flax', 'orbax', 'optax', 'tensorflow_datasets') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
