"""The repository layer sits above core and below triton.py (docs/architecture.md): core never imports it,
and it imports no front end, nor ``triton``, nor the clients."""

from __future__ import annotations

import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parents[2] / "pytriton_lite"
SPINE = ("__init__", "config", "scanner", "loader", "context", "control")


def _imports(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_core_never_imports_the_repository_layer():
    bad = [
        f"{path.name}: {module}"
        for path in sorted((PKG / "core").glob("*.py"))
        for module in _imports(path)
        if module.startswith("pytriton_lite.repository")
    ]
    assert bad == []


def test_the_spine_imports_no_front_end_nor_triton_nor_clients():
    forbidden = ("pytriton_lite.frontends", "pytriton_lite.triton", "pytriton_lite.client", "grpc", "uvicorn")
    bad = [
        f"{name}.py: {module}"
        for name in SPINE
        for module in _imports(PKG / "repository" / f"{name}.py")
        if any(module == f or module.startswith(f + ".") for f in forbidden)
    ]
    assert bad == []


def test_spine_modules_stay_small():
    sizes = {name: len((PKG / "repository" / f"{name}.py").read_text().splitlines()) for name in SPINE}
    assert max(sizes.values()) <= 600, sizes
