"""``TritonError`` with Triton's error codes, ``TritonModelException``, and their mapping onto the server's
``InferenceError`` statuses (what a client sees) and back (what a BLS caller sees)."""

from __future__ import annotations

import enum
from typing import Dict, Tuple

from pytriton_lite.exceptions import InferenceError, InvalidArgumentError, ModelExecutionError


class TritonErrorCode(enum.IntEnum):
    """``TRITONSERVER_Error_Code``: the codes a ``TritonError`` carries."""

    UNKNOWN = 0
    INTERNAL = 1
    NOT_FOUND = 2
    INVALID_ARG = 3
    UNAVAILABLE = 4
    UNSUPPORTED = 5
    ALREADY_EXISTS = 6
    CANCELLED = 7


class TritonError(Exception):
    """An error a model reports for one request: ``InferenceResponse(error=TritonError("msg", code))``.

    The code defaults to ``TritonError.INTERNAL``. Unlike Triton's it is also an exception, so a model may
    raise it from ``execute`` to fail the whole batch with that code.
    """

    UNKNOWN = TritonErrorCode.UNKNOWN
    INTERNAL = TritonErrorCode.INTERNAL
    NOT_FOUND = TritonErrorCode.NOT_FOUND
    INVALID_ARG = TritonErrorCode.INVALID_ARG
    UNAVAILABLE = TritonErrorCode.UNAVAILABLE
    UNSUPPORTED = TritonErrorCode.UNSUPPORTED
    ALREADY_EXISTS = TritonErrorCode.ALREADY_EXISTS
    CANCELLED = TritonErrorCode.CANCELLED

    def __init__(self, message: str, code: int = TritonErrorCode.INTERNAL) -> None:
        if not isinstance(message, str):
            raise TypeError(f"TritonError message must be a str, got {type(message).__name__}")
        super().__init__(message)
        self._message = message
        self._code = TritonErrorCode(code)

    def message(self) -> str:
        return self._message

    def code(self) -> TritonErrorCode:
        return self._code

    def __repr__(self) -> str:
        return f"TritonError({self._message!r}, TritonError.{self._code.name})"


class TritonModelException(Exception):
    """Raised by a model (or by this module) to fail ``initialize``, ``execute`` or ``finalize``."""


# Triton's HTTP front end answers UNKNOWN, INVALID_ARG, ALREADY_EXISTS and CANCELLED with 400; gRPC maps
# each code onto its own status.
_STATUS: Dict[TritonErrorCode, Tuple[int, str]] = {
    TritonErrorCode.UNKNOWN: (400, "UNKNOWN"),
    TritonErrorCode.INTERNAL: (500, "INTERNAL"),
    TritonErrorCode.NOT_FOUND: (404, "NOT_FOUND"),
    TritonErrorCode.INVALID_ARG: (400, "INVALID_ARGUMENT"),
    TritonErrorCode.UNAVAILABLE: (503, "UNAVAILABLE"),
    TritonErrorCode.UNSUPPORTED: (501, "UNIMPLEMENTED"),
    TritonErrorCode.ALREADY_EXISTS: (400, "ALREADY_EXISTS"),
    TritonErrorCode.CANCELLED: (400, "CANCELLED"),
}
_CODE_OF_GRPC = {grpc_code: code for code, (_, grpc_code) in _STATUS.items()}


def to_inference_error(error: TritonError) -> InferenceError:
    """A model's ``TritonError`` -> what the client gets: INVALID_ARG is ``InvalidArgumentError`` (400 /
    INVALID_ARGUMENT), INTERNAL a 500; the other codes get Triton's HTTP status and their own gRPC code."""
    code = error.code()
    if code is TritonErrorCode.INVALID_ARG:
        return InvalidArgumentError(error.message())
    http_status, grpc_code = _STATUS[code]
    result = ModelExecutionError(error.message(), http_status=http_status)
    result.grpc_code = grpc_code
    return result


def from_exception(exc: BaseException) -> TritonError:
    """What a BLS caller sees when the called model fails: the error's message and the code of its status."""
    if isinstance(exc, TritonError):
        return exc
    if isinstance(exc, InferenceError):
        return TritonError(exc.message, _CODE_OF_GRPC.get(exc.grpc_code, TritonErrorCode.INTERNAL))
    return TritonError(f"{type(exc).__name__}: {exc}", TritonErrorCode.INTERNAL)


__all__ = ["TritonError", "TritonErrorCode", "TritonModelException", "from_exception", "to_inference_error"]
