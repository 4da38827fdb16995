"""Triton's model-loading API for BLS models (``load_model``, ``unload_model``, ``is_model_ready``): not served
in-process yet, so each raises ``TritonModelException`` saying so instead of failing obscurely."""

from __future__ import annotations

from typing import Any, Dict, Optional

from pytriton_lite.pb_utils._errors import TritonModelException


def _unsupported(what: str) -> TritonModelException:
    return TritonModelException(
        f"pb_utils.{what} is not supported by pytriton_lite yet: load and unload models with the repository API"
    )


def load_model(model_name: str, config: str = "", files: Optional[Dict[str, Any]] = None) -> None:
    raise _unsupported("load_model")


def unload_model(model_name: str, unload_dependents: bool = False) -> None:
    raise _unsupported("unload_model")


def is_model_ready(model_name: str, model_version: str = "") -> bool:
    raise _unsupported("is_model_ready")


__all__ = ["is_model_ready", "load_model", "unload_model"]
