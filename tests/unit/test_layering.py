"""docs/architecture.md, section 1: who may import whom. Parses every module's imports (module level and functions)."""

from __future__ import annotations

import ast
import pathlib
from typing import Iterator, List, Tuple

import pytest

PKG = pathlib.Path(__file__).resolve().parents[2] / "pytriton_lite"

TRANSPORTS = ("starlette", "uvicorn", "grpc", "tritonclient", "httpx", "aiohttp", "prometheus_client")


def _imports(path: pathlib.Path) -> Iterator[Tuple[str, bool]]:
    """(module, only_for_type_checking) for every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            for child in ast.walk(node):
                guarded.add(id(child))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in guarded
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # "from a.b import c" -> "a.b.c", so allow-lists can name c
                yield f"{node.module}.{alias.name}", id(node) in guarded


def _modules(subdir: str) -> List[pathlib.Path]:
    base = PKG / subdir if subdir else PKG
    return sorted(base.glob("*.py")) if base.is_dir() else [base]


def _violations(paths: List[pathlib.Path], forbidden: Tuple[str, ...], allow: Tuple[str, ...] = ()) -> List[str]:
    bad = []
    for path in paths:
        for module, type_only in _imports(path):
            if type_only:
                continue
            if any(module == a or module.startswith(a + ".") for a in allow):
                continue
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PKG.parent)} imports {module}")
    return bad


def test_core_imports_no_transport_and_no_protocol():
    forbidden = TRANSPORTS + (
        "pytriton_lite.protocol",
        "pytriton_lite.frontends",
        "pytriton_lite.triton",
        "pytriton_lite.client",
        "pytriton_lite.decorators",
    )
    # the served config is Triton's own ModelConfig message: generated data classes, not a transport
    allow = ("tritonclient.grpc.model_config_pb2",)
    assert _violations(_modules("core"), forbidden, allow) == []


def test_protocol_is_pure():
    forbidden = TRANSPORTS + (
        "socket",
        "threading",
        "pytriton_lite.core",
        "pytriton_lite.frontends",
        "pytriton_lite.triton",
        "pytriton_lite.client",
    )
    # the generated message classes are data, not transport
    allow = ("tritonclient.grpc.service_pb2", "tritonclient.grpc.model_config_pb2", "google.protobuf")
    assert _violations(_modules("protocol"), forbidden, allow) == []


def test_front_ends_never_import_each_other():
    # front ends may share private helper modules (``frontends/_*.py``), never import one another
    bad = []
    for path in _modules("frontends"):
        others = tuple(
            f"pytriton_lite.frontends.{p.stem}"
            for p in _modules("frontends")
            if p != path and not p.stem.startswith("_")
        )
        bad += _violations([path], others + ("pytriton_lite.triton", "pytriton_lite.client"))
    assert bad == []


def test_front_end_helpers_import_no_front_end():
    helpers = [p for p in _modules("frontends") if p.stem.startswith("_") and p.stem != "__init__"]
    front_ends = tuple(f"pytriton_lite.frontends.{p.stem}" for p in _modules("frontends") if p not in helpers)
    assert _violations(helpers, front_ends + ("pytriton_lite.triton", "pytriton_lite.client")) == []


def test_front_end_workers_sit_between_triton_and_the_front_ends():
    # only triton.py starts workers: nothing below imports the package
    below = _modules("core") + _modules("protocol") + _modules("frontends") + _modules("repository")
    assert _violations(below, ("pytriton_lite.workers",)) == []
    workers = PKG / "workers"
    # frames and channels are plumbing: no front end, no engine (the served ModelConfig pickles as bytes)
    plumbing = [workers / "wire.py", workers / "channel.py"]
    forbidden = TRANSPORTS + ("pytriton_lite.core", "pytriton_lite.frontends", "pytriton_lite.triton")
    assert _violations(plumbing, forbidden, ("tritonclient.grpc.model_config_pb2",)) == []
    # a worker process never holds the engine: models, batchers and instances stay in the serving process
    engine = ("pytriton_lite.core.dataplane", "pytriton_lite.core.batcher", "pytriton_lite.core.instances")
    worker_side = [workers / "remote.py", workers / "process.py"]
    assert _violations(worker_side, engine + ("pytriton_lite.repository", "pytriton_lite.triton")) == []


def test_client_uses_only_tritonclient():
    forbidden = (
        "pytriton_lite.core",
        "pytriton_lite.frontends",
        "pytriton_lite.triton",
        "pytriton_lite.protocol",
        "starlette",
        "uvicorn",
    )
    assert _violations(_modules("client"), forbidden) == []


@pytest.mark.parametrize(
    "module",
    ["types.py", "model_config", "constants.py", "exceptions.py", "decorators.py", "_dtypes.py", "_triton_context.py"],
)
def test_base_modules_stay_at_the_bottom(module):
    forbidden = TRANSPORTS + (
        "pytriton_lite.core",
        "pytriton_lite.protocol",
        "pytriton_lite.frontends",
        "pytriton_lite.triton",
        "pytriton_lite.client",
    )
    assert _violations(_modules(module), forbidden) == []


def test_no_module_is_a_god_file():
    too_long = [
        f"{p.relative_to(PKG.parent)}: {n}" for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 700
    ]
    assert too_long == []
