"""``InferenceResponse`` (what ``execute`` returns or a response sender sends, and what BLS gets back) and the
iterator of a decoupled BLS call."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, List, Optional

from pytriton_lite.pb_utils._errors import TritonError, TritonModelException
from pytriton_lite.pb_utils._tensor import Tensor
from pytriton_lite.types import InferenceResponse as CoreResponse

_PARAMETER_TYPES = (bool, int, str, float)


def checked_parameters(parameters: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Request/response parameters: a dict of str keys to bool, int, str (or float) values."""
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise TritonModelException(f"parameters must be a dict, got {type(parameters).__name__}")
    for key, value in parameters.items():
        if not isinstance(key, str):
            raise TritonModelException(f"Expect parameters keys to have type str, found type {type(key).__name__}")
        if not isinstance(value, _PARAMETER_TYPES):
            raise TritonModelException(
                f"Expect parameters values to have type bool/int/str, found type {type(value).__name__}"
            )
    return dict(parameters)


class InferenceResponse:
    """``InferenceResponse(output_tensors=[...], error=None, parameters=None)``: one response of a request.

    With ``error`` set the output tensors are ignored and the request fails with the error's code.
    """

    __slots__ = ("_tensors", "_error", "_parameters")

    def __init__(
        self,
        output_tensors: Optional[Iterable[Tensor]] = None,
        error: Optional[TritonError] = None,
        parameters: Optional[Dict[str, Any]] = None,
    ) -> None:
        if error is not None and not isinstance(error, TritonError):
            raise TypeError(f"InferenceResponse error must be a TritonError, got {type(error).__name__}")
        self._tensors: List[Tensor] = list(output_tensors) if output_tensors is not None else []
        self._error = error
        self._parameters = checked_parameters(parameters) if parameters else {}

    @classmethod
    def _from_core(cls, response: CoreResponse) -> InferenceResponse:
        """A BLS call's answer, from the server's response."""
        result = cls.__new__(cls)
        result._tensors = [Tensor._wrap(name, array) for name, array in response.outputs.items()]
        result._error = None
        result._parameters = dict(response.parameters)
        return result

    @classmethod
    def _failed(cls, error: TritonError) -> InferenceResponse:
        result = cls.__new__(cls)
        result._tensors = []
        result._error = error
        result._parameters = {}
        return result

    def output_tensors(self) -> List[Tensor]:
        return self._tensors

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> Optional[TritonError]:
        return self._error

    def parameters(self) -> str:
        """The response parameters as a JSON string."""
        return json.dumps(self._parameters)

    def _outputs(self) -> Dict[str, Any]:
        """The output dict the server sends (the request path)."""
        outputs = {}
        for tensor in self._tensors:
            if type(tensor) is not Tensor:
                raise TritonModelException(
                    f"InferenceResponse output_tensors must hold pb_utils.Tensor objects, got {type(tensor).__name__}"
                )
            outputs[tensor._name] = tensor._array
        return outputs

    def __repr__(self) -> str:
        if self._error is not None:
            return f"InferenceResponse(error={self._error!r})"
        return f"InferenceResponse(output_tensors={self._tensors!r})"


class ResponseIterator:
    """The responses of a decoupled BLS call (``exec(decoupled=True)``), in order; ``cancel()`` stops it."""

    def __init__(self, responses: Iterable[InferenceResponse]) -> None:
        self._responses = iter(responses)
        self._cancelled = False

    def __iter__(self) -> Iterator[InferenceResponse]:
        return self

    def __next__(self) -> InferenceResponse:
        if self._cancelled:
            raise StopIteration
        return next(self._responses)

    def cancel(self) -> None:
        self._cancelled = True


def get_output_tensor_by_name(inference_response: Any, name: str) -> Optional[Tensor]:
    """The output tensor ``name`` of a response, or None."""
    for tensor in inference_response.output_tensors():
        if tensor.name() == name:
            return tensor
    return None


__all__ = ["InferenceResponse", "ResponseIterator", "checked_parameters", "get_output_tensor_by_name"]
