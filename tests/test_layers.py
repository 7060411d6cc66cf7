"""Imports point down the layers (README "Layers"), and every inference module imports without
torch, TensorRT, CUDA, Ray or matplotlib (Polygraphy's dependency test, in a clean subprocess).

The layer test reads every `import` of rtseg/ with `ast` (function-level imports included: a
lazy import is still a dependency; `if TYPE_CHECKING:` blocks are not), so it needs no import.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rtseg

ROOT = Path(rtseg.__file__).resolve().parent

# Lowest first. A module may import its own package and anything on a lower row; on its own row
# only what SIDEWAYS allows. Top-level packages and modules of rtseg/ are named by their first part.
LAYERS: list[tuple[str, ...]] = [
    ("__init__", "errors", "core"),
    ("models", "data", "postprocess", "onnxtools"),
    ("runtime", "video", "viz", "train", "export"),
    ("pipeline", "engine"),
    ("loading",),
    ("assembly", "segmenter", "interop"),  # a run configured and opened | frames | models in and out
    ("bench", "batch", "evaluation", "api"),  # the callers of a run's assembly
    ("cli",),
    ("__main__",),
]
# (importer, imported) pairs allowed on the same row.
SIDEWAYS = {
    ("export", "video"),  # calibration and parity frames come through rtseg.video's sources
    ("__init__", "errors"),
    ("core", "errors"),
    ("core", "__init__"),  # the sidecar records rtseg.__version__
}
# Pairs forbidden although the rows allow them.
FORBIDDEN = {
    ("runtime", "export"),
    ("runtime", "engine"),
    ("runtime", "train"),
    ("engine", "runtime"),
    ("pipeline", "train"),
}
INFERENCE_OPTIONAL = ("torch", "torchvision", "tensorrt", "pycuda", "cuda", "ray", "matplotlib")
# Modules that need torch by nature (the `train` extra); everything else must import without it.
NEEDS_TORCH = ("rtseg.models", "rtseg.train", "rtseg.export", "rtseg.runtime.torch_backend")

RANK = {part: row for row, parts in enumerate(LAYERS) for part in parts}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str) -> list[tuple[str, int]]:
    """(imported rtseg module, line) for every import outside `if TYPE_CHECKING:`."""
    found = []

    def visit(node):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module.split(".")[: -node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((name, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return [(name, line) for name, line in found if name == "rtseg" or name.startswith("rtseg.")]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _part(module: str) -> str:
    """'rtseg.runtime.base' -> 'runtime'; 'rtseg' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _violation(importer: str, imported: str) -> str | None:
    a, b = _part(importer), _part(imported)
    if a not in RANK:
        return f"{importer}: rtseg.{a} has no layer; add it to LAYERS in tests/test_layers.py"
    if b not in RANK:
        return f"{importer} imports {imported}: rtseg.{b} has no layer"
    if a == b:
        return None
    if (a, b) in FORBIDDEN:
        return f"{importer} imports {imported}: {a} must not import {b}"
    if RANK[b] > RANK[a]:
        return f"{importer} imports {imported}: {a} is below {b}"
    if RANK[b] == RANK[a] and (a, b) not in SIDEWAYS:
        return f"{importer} imports {imported}: {a} and {b} sit side by side"
    return None


def layer_violations() -> list[str]:
    problems = []
    for module, path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for imported, line in _imports(tree, module if path.name != "__init__.py" else module + ".x"):
            problem = _violation(module, imported)
            if problem:
                problems.append(f"{path.relative_to(ROOT.parent)}:{line}: {problem}")
    return problems


def test_imports_point_down_the_layers():
    assert layer_violations() == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("rtseg.runtime.torch_backend", "rtseg.train.loop"),
        ("rtseg.runtime.tensorrt_backend", "rtseg.engine.cache"),
        ("rtseg.runtime.torch_backend", "rtseg.export.onnx_export"),
        ("rtseg.engine.environment", "rtseg.runtime.cuda"),
        ("rtseg.pipeline.stages", "rtseg.train.evaluate"),
        ("rtseg.core.package", "rtseg.runtime.base"),
        ("rtseg.models.deploy", "rtseg.export.onnx_export"),
        ("rtseg.viz.palette", "rtseg.pipeline.stats"),
        ("rtseg.train.evaluate", "rtseg.loading"),
        ("rtseg.bench.worker", "rtseg.cli.bench"),
    ],
)
def test_the_layer_rules_catch_an_upward_import(importer, imported):
    assert _violation("rtseg.pipeline.stages", "rtseg.core.frames") is None
    assert _violation(importer, imported) is not None


def test_type_checking_imports_and_relative_imports_are_read():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rtseg.loading import LoadedModel\n"
        "def f():\n    from . import base\n    import rtseg.engine\n"
    )
    assert _imports(tree, "rtseg.runtime.onnxruntime_backend") == [("rtseg.runtime", 5), ("rtseg.engine", 6)]


def test_every_package_and_module_has_a_layer():
    parts = {_part(module) for module, _ in _modules()}
    assert parts - set(RANK) == set()


BLOCKER = """
import importlib, importlib.abc, json, sys

BLOCKED = set(sys.argv[1].split(","))


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Block())
failed = {}
for name in json.loads(sys.stdin.read()):
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None)
print(json.dumps({"failed": failed, "leaked": leaked}))
"""


def _needs_torch(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in NEEDS_TORCH)


def test_every_inference_module_imports_without_the_optional_extras():
    names = [m for m, _ in _modules() if m != "rtseg.__main__"]  # __main__ would run the CLI
    env = {**os.environ, "PYTHONPATH": str(ROOT.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(INFERENCE_OPTIONAL)],
        input=json.dumps(names),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    failed = {name: why for name, why in result["failed"].items() if not _needs_torch(name)}
    assert failed == {}
    assert result["leaked"] == []
    # what needs torch fails on torch, not on something else: the one-line error naming the extra
    assert all(
        why.startswith("MissingDependencyError: torch is required") and "rtseg[train]" in why
        for why in result["failed"].values()
    ), result["failed"]
    assert {name for name in NEEDS_TORCH if name in names} == set(NEEDS_TORCH)


def _module_graph() -> dict[str, set[str]]:
    """module -> the rtseg modules it imports (the nearest existing module of each name)."""
    modules = dict(_modules())
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = set()
        for name, _ in _imports(tree, module if path.name != "__init__.py" else module + ".x"):
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules and name != module and name != "rtseg":
                targets.add(name)
        graph[module] = targets
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_through_others():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles(_module_graph()) == []
