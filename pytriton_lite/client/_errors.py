"""Translate tritonclient / transport failures into the PyTriton client exceptions."""

from __future__ import annotations

import asyncio
import http.client
from typing import Optional, Tuple, Type

from tritonclient.utils import InferenceServerException

from pytriton_lite.client.exceptions import (
    PyTritonClientError,
    PyTritonClientInferenceServerError,
    PyTritonClientModelUnavailableError,
    PyTritonClientTimeoutError,
)

# HTTP status strings come from tritonclient.http, "StatusCode.X" ones from tritonclient.grpc.
_NOT_FOUND = {"404", "StatusCode.NOT_FOUND"}
_DEADLINE = {"StatusCode.DEADLINE_EXCEEDED"}
# Messages that mean "too late": gRPC deadline, Triton's queue timeout (HTTP has no dedicated status for it).
_TIMEOUT_MESSAGES = ("Deadline Exceeded", "Request timeout expired")

# What the transports raise when a socket times out, is refused or is dropped (geventhttpclient raises
# http.client.HTTPException subclasses for a closed connection; aiohttp ClientOSError is an OSError).
TRANSPORT_ERRORS: Tuple[Type[BaseException], ...] = (OSError, http.client.HTTPException, asyncio.TimeoutError)
# Everything a tritonclient call is expected to raise; anything else is a bug and propagates unchanged.
CLIENT_ERRORS: Tuple[Type[BaseException], ...] = (InferenceServerException, *TRANSPORT_ERRORS)


def server_message(exc: InferenceServerException) -> str:
    return exc.message() or str(exc)


def is_not_found(exc: BaseException) -> bool:
    """The server answered 404 / NOT_FOUND: the model (or version) is unknown to it."""
    return isinstance(exc, InferenceServerException) and str(exc.status()) in _NOT_FOUND


def is_deadline(exc: BaseException) -> bool:
    if not isinstance(exc, InferenceServerException):
        return False
    message = server_message(exc)
    return str(exc.status()) in _DEADLINE or any(m in message for m in _TIMEOUT_MESSAGES)


def model_unavailable(model_name: str, model_version: Optional[str], exc: BaseException) -> PyTritonClientError:
    version = f" version {model_version}" if model_version else ""
    detail = server_message(exc) if isinstance(exc, InferenceServerException) else str(exc)
    return PyTritonClientModelUnavailableError(f"Model {model_name!r}{version} is not available. Message: {detail}")


def inference_error(
    exc: BaseException, *, model_name: str, model_version: Optional[str], timeout_s: Optional[float]
) -> PyTritonClientError:
    """Map an exception raised while running an inference to the client exception to raise instead."""
    if isinstance(exc, PyTritonClientError):
        return exc
    if isinstance(exc, InferenceServerException):
        message = server_message(exc)
        if is_deadline(exc):
            return PyTritonClientTimeoutError(
                f"Timeout occurred during inference request. Timeout: {timeout_s} s. Message: {message}"
            )
        if is_not_found(exc):
            return model_unavailable(model_name, model_version, exc)
        return PyTritonClientInferenceServerError(f"Error occurred during inference request. Message: {message}")
    if isinstance(exc, TRANSPORT_ERRORS):
        # PyTriton reports every socket-level failure (timeout, refused, reset) as a timeout.
        return PyTritonClientTimeoutError(
            f"Timeout occurred during inference request. Timeout: {timeout_s} s. Message: {type(exc).__name__}: {exc}"
        )
    return PyTritonClientInferenceServerError(
        f"Error occurred during inference request. Message: {type(exc).__name__}: {exc}"
    )
