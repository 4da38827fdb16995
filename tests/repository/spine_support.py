"""Test support for the repository spine: a tiny fake backend and helpers that write model folders.

The fake backend (``BACKEND``) serves ``backend: "python"`` models whose ``model.py`` is a plain module run
with ``runpy``: it defines ``infer(requests)`` (or ``make(source, placement, context)`` returning one callable
per placement), optionally ``initialize(source, placements)`` (may raise), ``auto_complete(config)`` and
``finalize()``. Every load, instance and finalize is recorded in ``EVENTS`` for the tests to check.
``FAKE_ENSEMBLE`` serves ``platform: "ensemble"`` by calling each step through the ``LoadContext``.

``use_fake_backends(monkeypatch)`` registers both (``backends._MODULES``); ``register()`` does it for good
(for a subprocess running the CLI).
"""

from __future__ import annotations

import pathlib
import runpy
import textwrap
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from pytriton_lite.repository import backends
from pytriton_lite.repository.backend import (
    InstancePlacement,
    LoadContext,
    LoadedModel,
    ModelLoadError,
    ModelSource,
    VersionSource,
)
from pytriton_lite.types import InferenceRequest

EVENTS: List[Tuple[Any, ...]] = []


class FakeBackend:
    names = ("python",)
    default_model_filename = "model.py"

    def auto_complete(self, model: ModelSource, config: Any, version_dir: pathlib.Path) -> None:
        path = version_dir / (config.default_model_filename or self.default_model_filename)
        if not path.is_file():
            return
        namespace = runpy.run_path(str(path))
        hook = namespace.get("auto_complete")
        if hook is not None:
            hook(config)

    def load(self, source: VersionSource, placements: Sequence[InstancePlacement], context: LoadContext) -> LoadedModel:
        path = source.model_file(self.default_model_filename)
        if not path.is_file():
            raise ModelLoadError(f"model file not found: '{path}'")
        namespace = runpy.run_path(str(path))
        if "initialize" in namespace:
            namespace["initialize"](source, placements)
        if "make" in namespace:
            funcs = [namespace["make"](source, p, context) for p in placements]
        else:
            funcs = [namespace["infer"] for _ in placements]
        EVENTS.append(("load", source.name, source.version, tuple((p.name, p.kind, p.device_id) for p in placements)))

        def finalize() -> None:
            EVENTS.append(("finalize", source.name, source.version))
            if "finalize" in namespace:
                namespace["finalize"]()

        return LoadedModel(funcs, finalize=finalize)


class FakeEnsemble:
    """Runs the steps in order through the context (blocking ``infer`` from the instance thread)."""

    names = ("ensemble",)
    default_model_filename = ""

    def auto_complete(self, model: ModelSource, config: Any, version_dir: pathlib.Path) -> None:
        return None

    def load(self, source: VersionSource, placements: Sequence[InstancePlacement], context: LoadContext) -> LoadedModel:
        steps = list(source.config.ensemble_scheduling.step)
        for step in steps:
            context.model_config(step.model_name)  # raises ModelNotFoundError when a step is not served

        def run(requests: List[Any]) -> List[Dict[str, np.ndarray]]:
            results = []
            for request in requests:
                tensors = dict(request.data)
                for step in steps:
                    inputs = {inner: tensors[outer] for inner, outer in step.input_map.items()}
                    response = context.infer(InferenceRequest(model_name=step.model_name, inputs=inputs), 30.0)
                    for inner, outer in step.output_map.items():
                        tensors[outer] = response.outputs[inner]
                results.append(tensors)
            return results

        EVENTS.append(("load", source.name, source.version, len(placements)))
        return LoadedModel([run for _ in placements])


BACKEND = FakeBackend()
ENSEMBLE_BACKEND = FakeEnsemble()


def use_fake_backends(monkeypatch: Any) -> None:
    EVENTS.clear()
    monkeypatch.setitem(backends._MODULES, "python", "spine_support")
    monkeypatch.setitem(backends._MODULES, "ensemble", "spine_ensemble")


def register() -> None:
    backends._MODULES["python"] = "spine_support"
    backends._MODULES["ensemble"] = "spine_ensemble"


def events(kind: str, name: Optional[str] = None) -> List[Tuple[Any, ...]]:
    return [e for e in EVENTS if e[0] == kind and (name is None or e[1] == name)]


# --- writing repositories ---------------------------------------------------------------------------------

IDENTITY = """
def infer(requests):
    return [{"OUT": r["IN"]} for r in requests]
"""

IDENTITY_CONFIG = """
backend: "python"
max_batch_size: 8
input [{ name: "IN" data_type: TYPE_FP32 dims: [ -1 ] }]
output [{ name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] }]
"""


def write_model(
    root: pathlib.Path,
    name: str,
    config: Optional[str] = IDENTITY_CONFIG,
    versions: Optional[Dict[Any, Optional[str]]] = None,
) -> pathlib.Path:
    """``root/name/config.pbtxt`` (None: no file) and ``root/name/<v>/model.py`` per version (None: empty folder)."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "config.pbtxt").write_text(textwrap.dedent(config))
    for version, code in (versions if versions is not None else {1: IDENTITY}).items():
        (folder / str(version)).mkdir(exist_ok=True)
        if code is not None:
            (folder / str(version) / "model.py").write_text(textwrap.dedent(code))
    return folder


def identity_repository(root: pathlib.Path, *names: str) -> pathlib.Path:
    for name in names or ("identity",):
        write_model(root, name)
    return root
