"""Backends by their Triton names. Each module is imported only when a model asks for it (frameworks are
optional extras)."""

from __future__ import annotations

import importlib
from typing import Dict

from pytriton_lite.repository.backend import Backend, ModelLoadError

# Triton platform/backend name -> module defining BACKEND
_MODULES: Dict[str, str] = {
    "python": "pytriton_lite.repository.backends.python",
    "onnxruntime_onnx": "pytriton_lite.repository.backends.onnx",
    "onnxruntime": "pytriton_lite.repository.backends.onnx",
    "pytorch_libtorch": "pytriton_lite.repository.backends.torch",
    "pytorch": "pytriton_lite.repository.backends.torch",
    "ensemble": "pytriton_lite.repository.backends.ensemble",
}

KNOWN_BACKENDS = tuple(_MODULES)


def backend_for(name: str) -> Backend:
    """The backend serving Triton platform/backend ``name`` (ModelLoadError for an unknown one)."""
    module = _MODULES.get(name)
    if module is None:
        raise ModelLoadError(
            f"unknown backend or platform '{name}': pytriton_lite serves {', '.join(sorted(set(_MODULES)))}"
        )
    backend: Backend = importlib.import_module(module).BACKEND
    return backend


__all__ = ["KNOWN_BACKENDS", "backend_for"]
