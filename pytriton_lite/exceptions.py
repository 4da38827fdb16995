"""Server-side exceptions.

The ``PyTritonError`` tree mirrors ``pytriton.exceptions``. Each class carries the v2 protocol status it
maps to (``http_status`` and ``grpc_code``, a ``grpc.StatusCode`` member name) so that both front ends
translate errors the same way without importing each other. ``InferenceError`` and its subclasses are what a
client gets back while a request is served; their ``reason`` feeds the failure metric. The tree, with each
class's ``http_status`` and ``grpc_code`` (checked against the classes by ``tests/docs``)::

    * PyTritonError                     500  INTERNAL
      x PyTritonValidationError         400  INVALID_ARGUMENT
      x PyTritonInvalidOperationError   400  INVALID_ARGUMENT
      x PyTritonBadParameterError       400  INVALID_ARGUMENT
      x PyTritonModelConfigError        400  INVALID_ARGUMENT
      x PyTritonUnrecoverableError      500  INTERNAL
      x PyTritonRuntimeError            500  INTERNAL
      x InferenceError                  500  INTERNAL
        + InvalidArgumentError          400  INVALID_ARGUMENT
        + ModelNotFoundError            404  NOT_FOUND
        + UnavailableError              503  UNAVAILABLE
        + QueueTimeoutError             503  UNAVAILABLE
        + UnsupportedError              501  UNIMPLEMENTED
          - DecoupledModelError         501  UNIMPLEMENTED
        + CancelledError                499  CANCELLED
        + ModelExecutionError           500  INTERNAL

docs/architecture.md has the whole error table: these statuses and the answers the front ends give on
their own (unknown routes, wrong methods, restricted APIs).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple


class PyTritonError(Exception):
    """Base class of all pytriton_lite server-side errors."""

    http_status: int = 500
    grpc_code: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._message = message

    @property
    def message(self) -> str:
        return self._message

    def __str__(self) -> str:
        return self._message


class PyTritonValidationError(PyTritonError):
    """Invalid argument or configuration (model name, tensors, decorator use)."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class PyTritonInvalidOperationError(PyTritonError):
    """An operation that is not allowed in the current state (e.g. binding a model twice)."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class PyTritonBadParameterError(PyTritonError):
    """Invalid parameter values (ModelConfig, DynamicBatcher, decorator defaults)."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class PyTritonModelConfigError(PyTritonError):
    """A Triton model configuration that cannot be parsed."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class PyTritonUnrecoverableError(PyTritonError):
    """Raised by an infer callable: fails the batch, then stops the whole server."""

    http_status = 500
    grpc_code = "INTERNAL"


class PyTritonRuntimeError(PyTritonError):
    """Misuse detected at run time (decorator order, unequal first_value values)."""

    http_status = 500
    grpc_code = "INTERNAL"


# --- errors raised while serving a request; each maps to a protocol status ---------------------------


class InferenceError(PyTritonError):
    """An error answered to a client. Subclasses pick the status; ``reason`` feeds the failure metric."""

    http_status = 500
    grpc_code = "INTERNAL"
    reason = "OTHER"

    def __init__(
        self, message: str, *, http_status: Optional[int] = None, headers: Sequence[Tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        if http_status is not None:
            self.http_status = http_status
        self.headers: Tuple[Tuple[str, str], ...] = tuple(headers)  # extra HTTP headers of the answer


class InvalidArgumentError(InferenceError):
    """Client fault: malformed body, wrong dtype/shape, unknown or missing input, batch too large."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class ModelNotFoundError(InferenceError):
    """Unknown model or version."""

    http_status = 404
    grpc_code = "NOT_FOUND"


class UnavailableError(InferenceError):
    """Queue full, model not ready, server stopping."""

    http_status = 503
    grpc_code = "UNAVAILABLE"
    reason = "REJECTED"


class QueueTimeoutError(InferenceError):
    """A queued request passed its deadline (Triton: 'Request timeout expired')."""

    http_status = 503
    grpc_code = "UNAVAILABLE"
    reason = "REJECTED"


class UnsupportedError(InferenceError):
    """Feature not supported for this model/endpoint (decoupled model on /infer)."""

    http_status = 501
    grpc_code = "UNIMPLEMENTED"


class DecoupledModelError(UnsupportedError):
    """A decoupled model asked for on a one-response endpoint (HTTP ``/infer``, gRPC ModelInfer).

    Raised by the data plane in transport-neutral words; each front end's error boundary answers it with
    Triton's wording for that endpoint.
    """

    def __init__(self, model: str) -> None:
        super().__init__(f"model '{model}' is decoupled: use a streaming endpoint for it")
        self.model = model


class CancelledError(InferenceError):
    """The client went away before the request ran."""

    http_status = 499
    grpc_code = "CANCELLED"
    reason = "CANCELED"


class ModelExecutionError(InferenceError):
    """The infer callable raised, or returned results that fail validation."""

    #: the message of the callable's own exception, without its type (what a stream's error event carries)
    model_message: Optional[str] = None

    http_status = 500
    grpc_code = "INTERNAL"
    reason = "BACKEND"


__all__ = [
    "PyTritonError",
    "PyTritonValidationError",
    "PyTritonInvalidOperationError",
    "PyTritonBadParameterError",
    "PyTritonModelConfigError",
    "PyTritonUnrecoverableError",
    "PyTritonRuntimeError",
    "InferenceError",
    "InvalidArgumentError",
    "ModelNotFoundError",
    "UnavailableError",
    "QueueTimeoutError",
    "UnsupportedError",
    "DecoupledModelError",
    "CancelledError",
    "ModelExecutionError",
]
