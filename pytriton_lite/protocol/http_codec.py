"""The v2 HTTP wire format: infer bodies (JSON + binary tensor extension) and error bodies.

Pure functions: bytes in, ``InferenceRequest`` out; ``InferenceResponse`` in, body chunks and headers out.
Every client fault raises ``InvalidArgumentError`` (400). Triton answers JSON-level faults with 500; we
keep its wording but answer 400 (docs/architecture.md, section 6), and every message names the model and tensor.

Binary input tensors are ``np.frombuffer`` views of the request body (read-only for ``bytes``, as over
gRPC; a ``bytearray`` body gives writable views); binary outputs are written from the arrays' own buffers.
The generate extension lives in ``protocol.generate_codec``.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from pytriton_lite._echo import check_utf8, echo
from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol import json_split
from pytriton_lite.protocol import shm as shm_codec
from pytriton_lite.protocol.classification import parse_count
from pytriton_lite.protocol.dtypes import (
    array_from_raw,
    checked_element_count,
    output_to_raw,
    to_triton_dtype,
    wire_dtype,
)
from pytriton_lite.protocol.http_compression import (
    DEFAULT_MAX_INPUT_SIZE,
    SUPPORTED_REQUEST_ENCODINGS,
    UNSUPPORTED_COMPRESSION,
    _compress,
    decompress_body,
    select_response_encoding,
    unsupported_compression,
)
from pytriton_lite.protocol.json_tensors import MAX_DATA_DEPTH, array_to_json, json_to_array, size_message, type_error
from pytriton_lite.types import InferenceRequest, InferenceResponse, ModelInfo, ParameterValue

_orjson: Any
try:  # optional: 4-10x faster JSON; json is the fallback and handles NaN/Infinity
    _orjson = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

__all__ = [
    "DEFAULT_MAX_INPUT_SIZE",
    "INFERENCE_HEADER",
    "SUPPORTED_REQUEST_ENCODINGS",
    "UNSUPPORTED_COMPRESSION",
    "unsupported_compression",
    "EncodedBody",
    "OutputOptions",
    "decode_infer_request",
    "decompress_body",
    "dumps_json",
    "encode_error",
    "encode_infer_response",
    "loads_json",
    "parse_header_length",
    "parse_json_object",
    "custom_parameter",
    "response_head",
    "select_response_encoding",
]

INFERENCE_HEADER = "inference-header-content-length"


_JOIN_LIMIT = 256 * 1024  # below this a response is one buffer (one socket write); above, chunks
_ORJSON_MAX_BRACKETS = 1000
_RESERVED_SEQUENCE_KEYS = ("sequence_id", "sequence_start", "sequence_end")
# --- JSON -------------------------------------------------------------------------------------------


def loads_json(data: Any) -> Any:
    """Parse JSON from bytes/bytearray/memoryview/str; NaN and Infinity accepted (as Triton does).

    Raises ValueError (malformed) or RecursionError (absurd nesting).
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif isinstance(data, memoryview):
        data = data.tobytes()  # the JSON header only; binary tensors stay views
    # Some orjson releases overflow the C stack on absurd nesting (a client can send 250k '['); the number
    # of brackets bounds the depth, so only shallow documents go to orjson. json raises RecursionError.
    if _orjson is not None and data.count(b"[") + data.count(b"{") <= _ORJSON_MAX_BRACKETS:
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError:
            pass  # orjson refuses NaN/Infinity; json accepts them, and words real errors as well
    return json.loads(data)


def dumps_json(obj: Any, *, sort_keys: bool = False, finite: Optional[bool] = None) -> bytes:
    """Compact JSON (no whitespace); NaN/Infinity written as such (orjson alone would write null).

    ``finite=True`` promises there is no NaN/Infinity in ``obj`` (skips the scan); None scans.
    """
    if _orjson is not None:
        if finite is None:
            finite = not _has_nonfinite(obj)
        if finite:
            try:
                encoded: bytes = _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS if sort_keys else 0)
                return encoded
            except (TypeError, _orjson.JSONEncodeError):
                pass  # ints beyond 64 bits and other oddities: json copes
    return json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False).encode("utf-8")


def _has_nonfinite(obj: Any) -> bool:
    if isinstance(obj, float):
        return not math.isfinite(obj)
    if isinstance(obj, dict):
        return any(_has_nonfinite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_has_nonfinite(v) for v in obj if isinstance(v, (float, dict, list, tuple)))
    return False


def _array_finite(array: np.ndarray) -> bool:
    return array.dtype.kind not in "fc" or bool(np.isfinite(array).all())


def _loads_split(data: Any) -> Any:
    """``loads_json`` with a large document's flat ``data`` arrays parsed in pieces (``json_split``)."""
    return json_split.loads_split(data, loads_json)


def encode_error(message: str) -> bytes:
    """Triton's error body: ``{"error":"<message>"}``, compact."""
    return dumps_json({"error": str(message)})


def parse_json_object(data: Any, model: str, loads: Callable[[Any], Any] = loads_json) -> Dict[str, Any]:
    """A request's JSON document (infer header or generate body), which must be an object.

    An empty body, malformed JSON, absurd nesting and a root that is not an object are client errors that
    name ``model``. ``loads`` parses (``loads_json`` unless the caller needs its own hooks).
    """
    if not len(data):
        raise InvalidArgumentError(f"failed to parse the request JSON for model '{model}': empty request body")
    try:
        doc = loads(data)
    except RecursionError:
        raise InvalidArgumentError(
            f"JSON nesting depth exceeds maximum allowed limit ({MAX_DATA_DEPTH}) for model '{model}'"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"failed to parse the request JSON for model '{model}': {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArgumentError(
            f"failed to parse the request JSON for model '{model}': the document root must be an object"
        )
    return doc


# --- body framing -----------------------------------------------------------------------------------


def parse_header_length(value: Optional[str], body_length: int) -> Optional[int]:
    """``Inference-Header-Content-Length`` -> int in [0, body_length]; None when the header is absent."""
    if value is None:
        return None
    text = value.strip()
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidArgumentError(f"Unable to parse Inference-Header-Content-Length, got: {value}")
    length = int(text)
    if length < 0 or length > body_length:
        raise InvalidArgumentError(f"inference header size should be in range (0, {body_length}), got: {value}")
    return length


# --- infer request ----------------------------------------------------------------------------------


@dataclass
class OutputOptions:
    """How the client wants each output: binary (after the JSON header) or JSON ``data``."""

    binary_data_output: bool = False
    binary: Dict[str, bool] = field(default_factory=dict)
    raw: bool = False
    classification: Dict[str, int] = field(default_factory=dict)  # output -> top K (classification extension)
    shm: Dict[str, shm_codec.ShmRef] = field(default_factory=dict)  # outputs written into a region
    shm_access: Optional[shm_codec.SharedMemoryAccess] = None

    def is_binary(self, name: str) -> bool:
        if self.raw:
            return True
        return self.binary.get(name, self.binary_data_output)


def decode_infer_request(
    body: Any,
    *,
    model_name: str,
    model_version: str = "",
    header_length: Optional[str] = None,
    content_encoding: Optional[str] = None,
    model: Optional[ModelInfo] = None,
    max_input_size: Optional[int] = DEFAULT_MAX_INPUT_SIZE,
    shm: Optional[shm_codec.SharedMemoryAccess] = None,
) -> Tuple[InferenceRequest, OutputOptions]:
    """Decode a ``POST .../infer`` body into an ``InferenceRequest`` and the output options.

    ``header_length`` is the raw ``Inference-Header-Content-Length`` value (None when absent; "0" = a raw
    binary request, which needs ``model``: its single input gets the whole body). ``max_input_size`` caps
    the JSON header, each JSON-decoded input, a raw body and a decompressed body (None = no cap).
    """
    body = decompress_body(body, content_encoding, max_input_size)
    total = len(body)
    length = parse_header_length(header_length, total)
    if length == 0 and total:
        return _decode_raw_request(body, model_name, model_version, model, max_input_size)
    if length is None:
        length = total
    if max_input_size and length > max_input_size:
        raise InvalidArgumentError(size_message(length, max_input_size))
    view = memoryview(body)
    doc = parse_json_object(body if length == total else view[:length], model_name, _loads_split)

    request_id = doc.get("id", "")
    if not isinstance(request_id, str):
        raise type_error("id", "non-string as string", f"for model '{model_name}'")
    check_utf8(request_id, "request id", model_name)  # refused here, not when the response echoes it
    request = InferenceRequest(model_name=model_name, model_version=model_version, id=request_id)
    options = OutputOptions(shm_access=shm)  # shm: the server's regions (None: shm tensors refused)
    if "parameters" in doc:
        _decode_request_parameters(doc["parameters"], request, options)

    inputs = doc.get("inputs")
    if not isinstance(inputs, list):
        problem = "missing required field" if inputs is None else "attempt to access JSON non-array as array"
        raise InvalidArgumentError(f"Unable to parse 'inputs': {problem} for model '{model_name}'")
    offset = length
    for entry in inputs:
        name, array, offset = _decode_input(entry, view, offset, request, max_input_size, shm)
        if name in request.inputs:
            raise InvalidArgumentError(
                f"{_rid(request)}input '{name}' already exists in request for model '{model_name}'"
            )
        request.inputs[name] = array
    if offset != total:
        raise InvalidArgumentError(f"unexpected additional input data for model '{model_name}'")

    outputs = doc.get("outputs")
    if outputs is not None:
        request.requested_outputs = _decode_outputs(outputs, request, options) or None
    return request, options


def _rid(request: InferenceRequest) -> str:
    return f"[request id: {request.id or '<id_unknown>'}] "


def _decode_request_parameters(params: Any, request: InferenceRequest, options: OutputOptions) -> None:
    model = request.model_name
    if not isinstance(params, dict):
        raise type_error("parameters", "non-object as object", f"for model '{model}'")
    for key, value in params.items():
        check_utf8(key, "parameter name", model)
        if key.startswith("triton_"):
            raise InvalidArgumentError(
                "parameter keys starting with 'triton_' are reserved for Triton usage and should not be "
                f"specified. Got '{key}' for model '{model}'"
            )
        if key == "priority":
            request.priority = _uint_param(key, value, model)
        elif key == "timeout":
            request.timeout_us = _uint_param(key, value, model)
        elif key == "binary_data_output":
            options.binary_data_output = _bool_param(key, value, model)
        elif key in _RESERVED_SEQUENCE_KEYS:
            # Type-checked like Triton; carried to the sequence batcher and the model (pb_utils correlation_id)
            if key == "sequence_id":
                request.correlation_id = value if isinstance(value, str) else _uint_param(key, value, model)
            elif _bool_param(key, value, model):
                request.flags |= 1 if key == "sequence_start" else 2
        else:
            request.parameters[key] = custom_parameter(key, value, model)


def custom_parameter(key: str, value: Any, model: str) -> ParameterValue:
    """A request parameter's JSON value, which must be a string, boolean or number."""
    if not isinstance(value, (str, bool, int, float)):
        raise InvalidArgumentError(
            f"parameter '{key}' has invalid type. It should be either 'int', 'bool', 'double' or 'string' "
            f"(model '{model}')"
        )
    check_utf8(key, "parameter name", model)
    if isinstance(value, str):
        check_utf8(value, f"parameter '{echo(key)}'", model)
    return value


def _uint_param(key: str, value: Any, model: str) -> int:
    if type(value) is not int or value < 0:
        raise type_error(key, "non-unsigned-integer as unsigned-integer", f"for model '{model}'")
    return value


def _bool_param(key: str, value: Any, model: str) -> bool:
    if not isinstance(value, bool):
        raise type_error(key, "non-boolean as boolean", f"for model '{model}'")
    return value


def _decode_input(
    entry: Any,
    view: memoryview,
    offset: int,
    request: InferenceRequest,
    max_input_size: Optional[int],
    shm_access: Optional[shm_codec.SharedMemoryAccess] = None,
) -> Tuple[str, np.ndarray, int]:
    model = request.model_name
    if not isinstance(entry, dict):
        raise type_error("inputs", "non-object as object", f"for model '{model}'")
    name = entry.get("name")
    if not isinstance(name, str):
        raise type_error("name", "non-string as string", f"for model '{model}'")
    where = f"for input '{name}' for model '{model}'"
    datatype = entry.get("datatype")
    if not isinstance(datatype, str):
        raise type_error("datatype", "non-string as string", where)
    shape = entry.get("shape")
    if not isinstance(shape, list) or any(type(d) is not int or d < 0 for d in shape):
        raise type_error("shape", "non-unsigned-integer as unsigned-integer", where)
    params = entry.get("parameters") or {}
    if not isinstance(params, dict):
        raise type_error("parameters", "non-object as object", where)
    has_data = "data" in entry
    binary_size = params.get("binary_data_size")
    shm = params.get("shared_memory_region")
    candidates = (
        ("'data'", has_data),
        ("'binary_data_size'", binary_size is not None),
        ("'shared_memory_region'", shm),
    )
    set_fields = [label for label, present in candidates if present is not None and present is not False]
    if len(set_fields) != 1:
        found = "no field is set" if not set_fields else "set " + " ".join(set_fields)
        raise InvalidArgumentError(
            "Input must set only one of the following fields: 'data', 'binary_data_size' in 'parameters', "
            f"'shared_memory_region' in 'parameters'. But {found} {where}"
        )
    ref = shm_codec.ref_from_json(params, where, shm_access is not None)
    if ref is not None:
        return name, shm_codec.read_input(shm_access, ref, datatype, shape, name, model), offset

    if has_data:
        array = json_to_array(entry["data"], datatype, shape, name, model, max_input_size=max_input_size)
        return name, array, offset

    if type(binary_size) is not int or binary_size < 0:
        raise type_error("binary_data_size", "non-unsigned-integer as unsigned-integer", where)
    itemsize = 0 if datatype == "BYTES" else wire_dtype(datatype, name, model).itemsize
    checked_element_count(shape, name, model, itemsize=itemsize)
    end = offset + binary_size
    if end > len(view):
        raise InvalidArgumentError(
            f"unexpected size for input '{name}', expecting {binary_size} additional bytes for model '{model}'"
        )
    array = array_from_raw(view[offset:end], datatype, shape, name, model)
    return name, array, end


def _decode_outputs(outputs: Any, request: InferenceRequest, options: OutputOptions) -> List[str]:
    model = request.model_name
    if not isinstance(outputs, list):
        raise type_error("outputs", "non-array as array", f"for model '{model}'")
    names: List[str] = []
    for entry in outputs:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise type_error("name", "non-string as string", f"for model '{model}'")
        if name in options.binary or name in names:
            raise InvalidArgumentError(f"{_rid(request)}output '{name}' already exists in request for model '{model}'")
        names.append(name)
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise type_error("parameters", "non-object as object", f"for output '{name}' for model '{model}'")
        if "binary_data" in params:
            binary = params["binary_data"]
            if not isinstance(binary, bool):
                raise type_error("binary_data", "non-boolean as boolean", f"for output '{name}' for model '{model}'")
            options.binary[name] = binary
        if "classification" in params:  # applied after the model ran: protocol/classification.py
            options.classification[name] = parse_count(params["classification"], name, model)
        ref = shm_codec.ref_from_json(
            params, f"for output '{name}' for model '{model}'", options.shm_access is not None
        )
        if ref is not None:
            options.shm[name] = ref
    return names


def _decode_raw_request(
    body: Any, model_name: str, model_version: str, model: Optional[ModelInfo], max_input_size: Optional[int]
) -> Tuple[InferenceRequest, OutputOptions]:
    """``Inference-Header-Content-Length: 0``: the whole body is the model's single input tensor."""
    if model is None:
        raise InvalidArgumentError(f"raw binary request for model '{model_name}' needs the model's input spec")
    specs = list(model.inputs)
    if len(specs) != 1:
        raise InvalidArgumentError(
            f"Raw request must only have 1 input (found 1) to be deduced but got {len(specs)} inputs in "
            f"'{model_name}' model"
        )
    if max_input_size and len(body) > max_input_size:
        raise InvalidArgumentError(size_message(len(body), max_input_size))
    spec = specs[0]
    datatype = spec.datatype
    dims = [int(d) for d in spec.shape]
    if datatype == "BYTES":
        if dims != [1]:
            raise InvalidArgumentError(
                f"For BYTE datatype raw input '{spec.name}', the model must have input shape [1] (model '{model_name}')"
            )
    else:
        variable = [i for i, d in enumerate(dims) if d < 0]
        if len(variable) > 1:
            raise InvalidArgumentError(
                f"The shape of the raw input '{spec.name}' can not be deduced because there are more than one "
                f"variable-sized dimension (model '{model_name}')"
            )
        if variable:
            fixed = wire_dtype(datatype, spec.name, model_name).itemsize
            for d in dims:
                fixed *= d if d >= 0 else 1
            dims[variable[0]] = len(body) // fixed if fixed else 0
    if model.max_batch_size > 0:
        dims = [1] + dims
    if datatype == "BYTES":  # Triton: the whole body is the one element (no 4-byte length prefix)
        array = np.array([bytes(body)], dtype=object).reshape(dims)
    else:
        array = array_from_raw(memoryview(body), datatype, dims, spec.name, model_name)
    request = InferenceRequest(model_name=model_name, model_version=model_version, inputs={spec.name: array})
    return request, OutputOptions(raw=True)


# --- infer response ---------------------------------------------------------------------------------


@dataclass
class EncodedBody:
    """An encoded HTTP body: buffers to write in order, and the headers that describe them."""

    chunks: List[Any]
    headers: Dict[str, str]

    @property
    def content_length(self) -> int:
        return sum(memoryview(c).nbytes for c in self.chunks)

    def join(self) -> bytes:
        return b"".join(self.chunks)


def encode_infer_response(
    response: InferenceResponse, options: Optional[OutputOptions] = None, *, accept_encoding: Optional[str] = None
) -> EncodedBody:
    """Encode an infer response: JSON header (compact, Triton key order) + binary outputs in output order.

    ``Inference-Header-Content-Length`` and ``application/octet-stream`` only when some binary output has
    bytes (section 3.2). ``accept_encoding`` selects gzip/deflate compression of the whole body.
    """
    options = options or OutputOptions()
    model = response.model_name
    doc = response_head(response)
    if response.parameters:
        doc["parameters"] = response.parameters
    outputs: List[Dict[str, Any]] = []
    blobs: List[Any] = []
    big: List[Tuple[Dict[str, Any], List[Any]]] = []
    finite = not _has_nonfinite(response.parameters)
    in_shm = shm_codec.write_outputs(options.shm_access, response, options.shm)
    for name, array in response.outputs.items():
        array = np.asarray(array)
        if name in in_shm:  # written into its region: the response carries its metadata only, as Triton's
            outputs.append({"name": name, "datatype": in_shm[name], "shape": list(array.shape)})
        elif options.is_binary(name):
            datatype, buffer = _binary_output(array, name, model)
            size = memoryview(buffer).nbytes
            params = {"binary_data_size": size}
            outputs.append({"name": name, "datatype": datatype, "shape": list(array.shape), "parameters": params})
            if size:
                blobs.append(buffer)
        else:
            datatype = to_triton_dtype(array.dtype)
            if datatype in ("FP16", "BF16"):
                raise InvalidArgumentError(
                    f"sending {datatype} data via JSON is not supported. Please use the binary data format for "
                    f"output {name} for model '{model}'"
                )
            finite = finite and _array_finite(array)
            data = array_to_json(array, name, model)
            outputs.append({"name": name, "datatype": datatype, "shape": list(array.shape), "data": data})
            if len(data) > json_split.SPLIT_ITEMS:
                big.append((outputs[-1], data))  # written in pieces: the GIL is free between them
    doc["outputs"] = outputs
    header = json_split.dumps_split(doc, big, lambda obj: dumps_json(obj, finite=finite))
    headers: Dict[str, str] = {}
    if blobs:
        headers["content-type"] = "application/octet-stream"
        headers[INFERENCE_HEADER] = str(len(header))
    else:
        headers["content-type"] = "application/json"
    chunks = [header, *blobs]
    encoding = select_response_encoding(accept_encoding)
    if encoding != "identity":
        chunks = [_compress(chunks, encoding)]
        headers["content-encoding"] = encoding
    elif len(chunks) > 1 and sum(memoryview(c).nbytes for c in chunks) <= _JOIN_LIMIT:
        chunks = [b"".join(chunks)]
    return EncodedBody(chunks=chunks, headers=headers)


def response_head(response: InferenceResponse) -> Dict[str, Any]:
    """The keys every JSON response starts with: ``id`` (when set), ``model_name``, ``model_version``."""
    doc: Dict[str, Any] = {}
    if response.id:
        doc["id"] = response.id
    doc["model_name"] = response.model_name
    doc["model_version"] = str(response.model_version)
    return doc


def _binary_output(array: np.ndarray, name: str, model: str) -> Tuple[str, Any]:
    try:
        return output_to_raw(array)
    except Exception as exc:  # noqa: BLE001 - whatever output the model returned that has no wire encoding
        raise InvalidArgumentError(f"cannot encode output '{name}' of model '{model}': {exc}") from None
