"""PyTriton's import path for the callable-side request types."""

from pytriton_lite.types import Request, Requests, Response, Responses

__all__ = ["Request", "Requests", "Response", "Responses"]
