"""The generate extension (HTTP only; docs/protocol.md): flat JSON in, flat JSON or SSE events out.

``/generate`` and ``/generate_stream`` take one JSON object: keys naming a model input become tensors
(shape from the input's dims; the innermost variable dim takes the elements), other keys become request
parameters. Each response is one JSON object with sorted keys; one-element outputs are written as scalars.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol.http_codec import (
    DEFAULT_MAX_INPUT_SIZE,
    custom_parameter,
    dumps_json,
    encode_error,
    parse_json_object,
    response_head,
)
from pytriton_lite.protocol.json_tensors import array_to_json, flatten_data, json_to_array, size_message, type_error
from pytriton_lite.types import InferenceRequest, InferenceResponse, ModelInfo, TensorInfo

__all__ = ["decode_generate_request", "encode_generate_response", "sse_error_event", "sse_event"]


def decode_generate_request(
    body: Any,
    *,
    model: ModelInfo,
    model_name: str,
    model_version: str = "",
    content_encoding: Optional[str] = None,
    max_input_size: Optional[int] = DEFAULT_MAX_INPUT_SIZE,
) -> InferenceRequest:
    """Flat JSON object -> ``InferenceRequest``: keys naming a model input become tensors, the rest parameters."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise InvalidArgumentError(
            f"Unsupported Content-Encoding '{content_encoding}' for generate request to model '{model_name}'"
        )
    if max_input_size and len(body) > max_input_size:
        raise InvalidArgumentError(size_message(len(body), max_input_size))
    loads = _KeyRecordingLoads()
    doc = parse_json_object(body, model_name, loads)
    fields = _GenerateFields(
        request=InferenceRequest(model_name=model_name, model_version=model_version),
        specs={spec.name: spec for spec in model.inputs},
        batching=model.max_batch_size > 0,
        max_input_size=max_input_size,
    )
    dup_inputs = sorted(d for d in loads.duplicates if d in fields.specs)
    if dup_inputs:
        raise InvalidArgumentError(f"input '{dup_inputs[0]}' already exists in request for model '{model_name}'")
    for key, value in doc.items():
        fields.take_top_level(key, value)
    return fields.request


class _KeyRecordingLoads:
    """``json.loads`` that records the keys an object repeats (a repeated input name is a client error)."""

    def __init__(self) -> None:
        self.duplicates: Set[str] = set()

    def __call__(self, body: Any) -> Any:
        if isinstance(body, memoryview):
            body = body.tobytes()
        return json.loads(body, object_pairs_hook=self._pairs)

    def _pairs(self, pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            seen: Set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    self.duplicates.add(key)
                seen.add(key)
        return result


@dataclass
class _GenerateFields:
    """Sorts a generate document's keys into the request: ``id``, inputs, and parameters."""

    request: InferenceRequest
    specs: Dict[str, TensorInfo]
    batching: bool
    max_input_size: Optional[int]

    def take_top_level(self, key: str, value: Any) -> None:
        model_name = self.request.model_name
        if key == "id":
            if not isinstance(value, str):
                raise type_error("id", "non-string as string", f"for model '{model_name}'")
            self.request.id = value
        elif key == "parameters":
            if not isinstance(value, dict):
                raise InvalidArgumentError(f"Expected JSON object for keyword: 'parameters' (model '{model_name}')")
            for sub_key, sub_value in value.items():
                self.take(sub_key, sub_value)
        else:
            self.take(key, value)

    def take(self, key: str, value: Any) -> None:
        """An input (when ``key`` names one) or a request parameter."""
        request = self.request
        model_name = request.model_name
        if key in self.specs:
            if key in request.inputs:
                raise InvalidArgumentError(f"input '{key}' already exists in request for model '{model_name}'")
            request.inputs[key] = _generate_tensor(
                value, self.specs[key], self.batching, model_name, self.max_input_size
            )
        else:
            request.parameters[key] = custom_parameter(key, value, model_name)


def _generate_tensor(
    value: Any, spec: TensorInfo, batching: bool, model: str, max_input_size: Optional[int]
) -> np.ndarray:
    datatype = spec.datatype
    flat = value if isinstance(value, list) else [value]
    if isinstance(value, list):
        flat = flatten_data(value, spec.name, model)
    count = len(flat)
    dims = ([-1] if batching else []) + [int(d) for d in spec.shape]
    fixed = 1
    for d in dims:
        if d >= 0:
            fixed *= d
    variable = [i for i, d in enumerate(dims) if d < 0]
    for i in variable:
        dims[i] = 1
    if variable:  # the innermost variable dim takes the elements, the others become 1
        dims[variable[-1]] = count // fixed if fixed and count % fixed == 0 else count
    return json_to_array(flat, datatype, dims, spec.name, model, max_input_size=max_input_size)


def encode_generate_response(response: InferenceResponse) -> bytes:
    """One generate response: a flat JSON object, keys sorted; one-element outputs are scalars."""
    model = response.model_name
    doc = response_head(response)
    for name, array in response.outputs.items():
        array = np.asarray(array)
        if array.dtype.kind == "V":  # ml_dtypes.bfloat16 (and kin): JSON has only doubles
            array = array.astype(np.float32)
        data = array_to_json(array, name, model)
        doc[name] = data[0] if len(data) == 1 else data
    for key, value in response.parameters.items():
        if not key.startswith("triton_"):
            doc[key] = value
    return dumps_json(doc, sort_keys=True)


def sse_event(payload: bytes) -> bytes:
    """One server-sent event carrying a JSON payload: ``data: <json>\\n\\n``."""
    return b"data: " + payload + b"\n\n"


def sse_error_event(message: str) -> bytes:
    return sse_event(encode_error(message))
