"""Client exceptions (PyTriton's ``pytriton.client.exceptions`` hierarchy)."""

from __future__ import annotations


class PyTritonClientError(Exception):
    """Base of every error raised by the pytriton_lite clients."""

    def __init__(self, message: str):
        self._message = message
        super().__init__(message)

    @property
    def message(self) -> str:
        """The error message."""
        return self._message


class PyTritonClientValueError(PyTritonClientError):
    """Invalid argument: input conventions, parameter/header types, wrong protocol for the client."""


class PyTritonClientInvalidUrlError(PyTritonClientValueError):
    """The URL cannot be parsed or uses a scheme other than http/grpc."""


class PyTritonClientTimeoutError(PyTritonClientError):
    """A wait for the server/model, an inference deadline or a network operation timed out."""


class PyTritonClientModelUnavailableError(PyTritonClientError):
    """The model is unknown to the server (or the server stopped being ready)."""


class PyTritonClientClosedError(PyTritonClientError):
    """The client was used after ``close()``."""


class PyTritonClientModelDoesntSupportBatchingError(PyTritonClientError):
    """``infer_batch`` was called for a model with ``max_batch_size == 0``."""


class PyTritonClientInferenceServerError(PyTritonClientError):
    """The server (or the model's callable) reported an error, or the client does not match the model kind."""


class PyTritonClientQueueFullError(PyTritonClientError):
    """The FuturesModelClient request queue is full."""


__all__ = [
    "PyTritonClientError",
    "PyTritonClientValueError",
    "PyTritonClientInvalidUrlError",
    "PyTritonClientTimeoutError",
    "PyTritonClientModelUnavailableError",
    "PyTritonClientClosedError",
    "PyTritonClientModelDoesntSupportBatchingError",
    "PyTritonClientInferenceServerError",
    "PyTritonClientQueueFullError",
]
