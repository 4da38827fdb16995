"""Data types shared by the core, the codecs and user callables.

``Request`` is what an infer callable receives (PyTriton's ``pytriton.proxy.types.Request``).
``InferenceRequest``/``InferenceResponse`` are the transport-agnostic messages that the protocol codecs
produce and consume and that ``core.dataplane`` serves.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Union

import numpy as np

ParameterValue = Union[str, int, bool, float]


@dataclass
class Request:
    """One inference request as seen by an infer callable; behaves like ``Dict[str, np.ndarray]``."""

    data: Dict[str, np.ndarray]
    parameters: Optional[Dict[str, ParameterValue]] = None
    span: Optional[Any] = None
    requested_output_names: Optional[List[str]] = None

    def __getitem__(self, input_name: str) -> np.ndarray:
        return self.data[input_name]

    def __setitem__(self, input_name: str, input_data: np.ndarray) -> None:
        self.data[input_name] = input_data

    def __delitem__(self, input_name: str) -> None:
        del self.data[input_name]

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __contains__(self, input_name: object) -> bool:
        return input_name in self.data

    def keys(self):  # noqa: ANN201 - mirrors dict
        return self.data.keys()

    def values(self):  # noqa: ANN201
        return self.data.values()

    def items(self):  # noqa: ANN201
        return self.data.items()

    def get(self, input_name: str, default: Any = None) -> Any:
        return self.data.get(input_name, default)

    @contextlib.contextmanager
    def traced_span(self, span_name: str) -> Iterator[Optional[Any]]:
        """PyTriton's OpenTelemetry hook; without a tracer it is a no-op context."""
        yield self.span


Requests = List[Request]
Response = Dict[str, np.ndarray]
Responses = List[Response]


@dataclass
class InferenceRequest:
    """A decoded v2 inference request, independent of the transport.

    ``inputs`` hold arrays with the batch dim included (as sent). BYTES tensors are ``dtype=object``
    arrays of ``bytes``. ``parameters`` are the custom request parameters merged with forwarded headers.
    ``requested_outputs`` is None when the client asked for all outputs.
    """

    model_name: str
    model_version: str = ""
    inputs: Dict[str, np.ndarray] = field(default_factory=dict)
    parameters: Dict[str, ParameterValue] = field(default_factory=dict)
    requested_outputs: Optional[List[str]] = None
    id: str = ""
    priority: int = 0
    timeout_us: Optional[int] = None


@dataclass
class InferenceResponse:
    """The outputs of one request, in declared output order, ready for a codec to encode."""

    model_name: str
    model_version: str
    outputs: Dict[str, np.ndarray]
    id: str = ""
    parameters: Dict[str, ParameterValue] = field(default_factory=dict)
    final: bool = True


__all__ = ["Request", "Requests", "Response", "Responses", "InferenceRequest", "InferenceResponse"]
