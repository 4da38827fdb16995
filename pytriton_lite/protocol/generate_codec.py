"""The generate extension (HTTP only, protocol.md section 1.7): flat JSON in, flat JSON or SSE events out.

``/generate`` and ``/generate_stream`` take one JSON object: keys naming a model input become tensors
(shape from the input's dims; the innermost variable dim takes the elements), other keys become request
parameters. Each response is one JSON object with sorted keys; one-element outputs are written as scalars.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol.http_codec import DEFAULT_MAX_INPUT_SIZE, dumps_json, encode_error
from pytriton_lite.protocol.json_tensors import (
    MAX_DATA_DEPTH,
    array_to_json,
    flatten_data,
    json_to_array,
    size_message,
    type_error,
)
from pytriton_lite.types import InferenceRequest, InferenceResponse

__all__ = ["decode_generate_request", "encode_generate_response", "sse_error_event", "sse_event"]


def decode_generate_request(
    body: Any,
    *,
    model: Any,
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
    if not len(body):
        raise InvalidArgumentError(f"failed to parse the request JSON for model '{model_name}': empty request body")
    duplicates: set = set()

    def _pairs(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            seen: set = set()
            duplicates.update(k for k, _ in pairs if k in seen or seen.add(k))
        return result

    if isinstance(body, memoryview):
        body = body.tobytes()
    try:
        doc = json.loads(body, object_pairs_hook=_pairs)
    except RecursionError:
        raise InvalidArgumentError(
            f"JSON nesting depth exceeds maximum allowed limit ({MAX_DATA_DEPTH}) for model '{model_name}'"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"failed to parse the request JSON for model '{model_name}': {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArgumentError(
            f"failed to parse the request JSON for model '{model_name}': the document root must be an object"
        )
    specs = {spec.name: spec for spec in model.inputs}
    batching = getattr(model, "max_batch_size", 0) > 0
    dup_inputs = sorted(d for d in duplicates if d in specs)
    if dup_inputs:
        raise InvalidArgumentError(f"input '{dup_inputs[0]}' already exists in request for model '{model_name}'")
    request = InferenceRequest(model_name=model_name, model_version=model_version)

    def _take(key: str, value: Any) -> None:
        if key in specs:
            if key in request.inputs:
                raise InvalidArgumentError(f"input '{key}' already exists in request for model '{model_name}'")
            request.inputs[key] = _generate_tensor(value, specs[key], batching, model_name, max_input_size)
        elif isinstance(value, (str, bool, int, float)):
            request.parameters[key] = value
        else:
            raise InvalidArgumentError(
                f"parameter '{key}' has invalid type. It should be either 'int', 'bool', 'double' or 'string' "
                f"(model '{model_name}')"
            )

    for key, value in doc.items():
        if key == "id":
            if not isinstance(value, str):
                raise type_error("id", "non-string as string", f"for model '{model_name}'")
            request.id = value
        elif key == "parameters":
            if not isinstance(value, dict):
                raise InvalidArgumentError(f"Expected JSON object for keyword: 'parameters' (model '{model_name}')")
            for sub_key, sub_value in value.items():
                _take(sub_key, sub_value)
        else:
            _take(key, value)
    return request


def _generate_tensor(value: Any, spec: Any, batching: bool, model: str, max_input_size: Optional[int]) -> np.ndarray:
    datatype = spec.triton_dtype
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
    doc: Dict[str, Any] = {}
    if response.id:
        doc["id"] = response.id
    doc["model_name"] = model
    doc["model_version"] = str(response.model_version)
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
