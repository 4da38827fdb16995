"""pytriton_lite: PyTriton's API and Triton's v2 HTTP/gRPC protocol, served from your own process.

Port PyTriton code by renaming the import: ``from pytriton_lite.triton import Triton``.
The names below are re-exported lazily so that ``import pytriton_lite`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time ``__getattr__`` imports on first use
    from pytriton_lite.client import (
        AsyncioDecoupledModelClient,
        AsyncioModelClient,
        DecoupledModelClient,
        FuturesModelClient,
        ModelClient,
    )
    from pytriton_lite.config import TritonConfig, TritonLifecyclePolicy, TritonSecurityConfig
    from pytriton_lite.model_config import DeviceKind, DynamicBatcher, ModelConfig, QueuePolicy, Tensor, TimeoutAction
    from pytriton_lite.triton import Triton
    from pytriton_lite.types import Request

_EXPORTS = {
    "Triton": "pytriton_lite.triton",
    "TritonConfig": "pytriton_lite.config",
    "TritonLifecyclePolicy": "pytriton_lite.config",
    "TritonSecurityConfig": "pytriton_lite.config",
    "ModelConfig": "pytriton_lite.model_config",
    "Tensor": "pytriton_lite.model_config",
    "DynamicBatcher": "pytriton_lite.model_config",
    "QueuePolicy": "pytriton_lite.model_config",
    "TimeoutAction": "pytriton_lite.model_config",
    "DeviceKind": "pytriton_lite.model_config",
    "Request": "pytriton_lite.types",
    "ModelClient": "pytriton_lite.client",
    "FuturesModelClient": "pytriton_lite.client",
    "AsyncioModelClient": "pytriton_lite.client",
    "DecoupledModelClient": "pytriton_lite.client",
    "AsyncioDecoupledModelClient": "pytriton_lite.client",
}
_SUBMODULES = {"client", "model_config", "triton", "decorators", "exceptions", "types", "proxy", "testing"}

__all__ = [  # spelled out so that linters and type checkers read it; a test keeps it equal to _EXPORTS
    "__version__",
    "Triton",
    "TritonConfig",
    "TritonLifecyclePolicy",
    "TritonSecurityConfig",
    "ModelConfig",
    "Tensor",
    "DynamicBatcher",
    "QueuePolicy",
    "TimeoutAction",
    "DeviceKind",
    "Request",
    "ModelClient",
    "FuturesModelClient",
    "AsyncioModelClient",
    "DecoupledModelClient",
    "AsyncioDecoupledModelClient",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"pytriton_lite.{name}")
    raise AttributeError(f"module 'pytriton_lite' has no attribute {name!r}")
