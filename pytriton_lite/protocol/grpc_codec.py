"""gRPC wire format: ``service_pb2`` messages <-> ``InferenceRequest``/``InferenceResponse``.

Pure functions over tritonclient's generated message classes (no channels, no threads). Tensor payloads are
not copied more than needed: raw inputs become ``np.frombuffer`` views, and responses can be serialised
straight from the output arrays' buffers (``serialize_infer_response``), appending ``raw_output_contents``
to the protobuf-encoded header by hand. Large requests can likewise be split by ``parse_infer_request``
so that ``raw_input_contents`` stay views of the received bytes.
"""

from __future__ import annotations

import re
from typing import Any, Container, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from tritonclient.grpc import service_pb2

from pytriton_lite._echo import echo
from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol import shm as shm_codec
from pytriton_lite.protocol.classification import parse_count
from pytriton_lite.protocol.dtypes import array_from_raw, bytes_array, checked_element_count, output_to_raw, wire_dtype
from pytriton_lite.protocol.reserved import is_reserved, reserved_header_error
from pytriton_lite.types import InferenceRequest, InferenceResponse, ParameterValue

__all__ = [
    "EMPTY_FINAL_PARAM",
    "FINAL_PARAM",
    "RawBuffers",
    "classification_counts",
    "parse_infer_request",
    "decode_infer_request",
    "wants_empty_final_response",
    "encode_infer_response",
    "serialize_infer_response",
    "shm_outputs",
    "serialize_stream_response",
    "stream_response",
    "stream_error_response",
    "stream_empty_final_response",
    "server_metadata_response",
    "model_metadata_response",
    "repository_index_response",
    "forwarded_parameters",
]

EMPTY_FINAL_PARAM = "triton_enable_empty_final_response"
FINAL_PARAM = "triton_final_response"
GRPC_ERROR_HEADER = "triton_grpc_error"  # metadata that makes a stream end at its first error

RawBuffers = Optional[List[memoryview]]

# Typed ``InferTensorContents`` field per wire datatype; INT8/16 and UINT8/16 travel widened to 32 bits.
_TYPED_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
# The datatype a typed field carries, used in Triton's "expected datatype" message.
_FIELD_DATATYPE = {
    "bool_contents": "BOOL",
    "int_contents": "INT32",
    "int64_contents": "INT64",
    "uint_contents": "UINT32",
    "uint64_contents": "UINT64",
    "fp32_contents": "FP32",
    "fp64_contents": "FP64",
    "bytes_contents": "BYTES",
}
_FIELD_NUMPY = {
    "bool_contents": np.dtype(np.bool_),
    "int_contents": np.dtype(np.int32),
    "int64_contents": np.dtype(np.int64),
    "uint_contents": np.dtype(np.uint32),
    "uint64_contents": np.dtype(np.uint64),
    "fp32_contents": np.dtype(np.float32),
    "fp64_contents": np.dtype(np.float64),
}
_CUSTOM_PARAM_CHOICES = ("bool_param", "int64_param", "string_param", "double_param", "uint64_param")

# --- protobuf wire helpers (for the hand-written raw-contents framing) ---------------------------------

_RAW_INPUT_FIELD = 7  # ModelInferRequest.raw_input_contents
_RAW_OUTPUT_TAG = b"\x32"  # ModelInferResponse.raw_output_contents: field 6, length-delimited
_STREAM_INFER_RESPONSE_TAG = b"\x12"  # ModelStreamInferResponse.infer_response: field 2, length-delimited
# Below this size the C protobuf parser is faster than walking the top level in Python.
_SPLIT_THRESHOLD = 1 << 16


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(view: memoryview, pos: int) -> Tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def parse_infer_request(data: bytes) -> Tuple[Any, RawBuffers]:
    """Deserialise a ModelInferRequest; large messages keep ``raw_input_contents`` as views of ``data``.

    Returns ``(message, raw)``. ``raw`` is None when the message was parsed whole (its
    ``raw_input_contents`` are then used), else the raw contents as memoryviews and the message holds
    everything but them. Malformed framing falls back to protobuf's parser, which reports the error.
    """
    if len(data) < _SPLIT_THRESHOLD:
        return service_pb2.ModelInferRequest.FromString(data), None
    view = memoryview(data)
    try:
        kept: List[memoryview] = []
        raw: List[memoryview] = []
        pos = 0
        end = len(view)
        while pos < end:
            start = pos
            key, pos = _read_varint(view, pos)
            wire_type = key & 7
            if wire_type == 2:
                length, pos = _read_varint(view, pos)
                if pos + length > end:
                    raise ValueError("truncated field")
                if key >> 3 == _RAW_INPUT_FIELD:
                    raw.append(view[pos : pos + length])
                else:
                    kept.append(view[start : pos + length])
                pos += length
            elif wire_type == 0:
                _, pos = _read_varint(view, pos)
                kept.append(view[start:pos])
            elif wire_type == 1:
                pos += 8
                kept.append(view[start:pos])
            elif wire_type == 5:
                pos += 4
                kept.append(view[start:pos])
            else:  # groups never appear in this message
                raise ValueError("unexpected wire type")
        if pos != end:
            raise ValueError("truncated message")
    except (ValueError, IndexError):
        return service_pb2.ModelInferRequest.FromString(data), None
    if not raw:  # typed contents only: nothing to keep out of the parser
        return service_pb2.ModelInferRequest.FromString(data), None
    return service_pb2.ModelInferRequest.FromString(b"".join(kept)), raw


# --- request -------------------------------------------------------------------------------------------


def _param_value(param: Any) -> Tuple[Optional[str], Any]:
    choice = param.WhichOneof("parameter_choice")
    return choice, (getattr(param, choice) if choice is not None else None)


def wants_empty_final_response(message: Any) -> bool:
    """True when a stream request asked for the empty final response (``triton_enable_empty_final_response``)."""
    if EMPTY_FINAL_PARAM not in message.parameters:
        return False
    choice, value = _param_value(message.parameters[EMPTY_FINAL_PARAM])
    return choice == "bool_param" and bool(value)


def forwarded_parameters(metadata: Iterable[Tuple[str, Any]], pattern: Optional[re.Pattern[str]]) -> Dict[str, str]:
    """gRPC metadata whose key matches ``pattern`` (searched, as Triton's partial match) -> str parameters."""
    if pattern is None:
        return {}
    found: Dict[str, str] = {}
    for key, value in metadata:
        if isinstance(value, str) and pattern.search(key):
            if key == GRPC_ERROR_HEADER:  # Triton's own option, read as a header; never a parameter
                continue
            if is_reserved(key):
                raise reserved_header_error(key)
            found[key] = value
    return found


def _sequence_parameter(key: str, choice: Optional[str], value: Any, request: InferenceRequest) -> None:
    """sequence_id / sequence_start / sequence_end: carried to the sequence batcher and the model (pb_utils
    correlation_id and flags: SEQUENCE_START 1, SEQUENCE_END 2)."""
    if key == "sequence_id":
        if choice not in ("int64_param", "string_param"):
            raise InvalidArgumentError(
                "invalid value type for 'sequence_id' parameter, expected int64_param or string_param."
            )
        request.correlation_id = value
        return
    if choice != "bool_param":
        raise InvalidArgumentError(f"invalid value type for '{echo(key)}' parameter, expected bool_param.")
    if value:
        request.flags |= 1 if key == "sequence_start" else 2


def _decode_parameters(message: Any, request: InferenceRequest) -> None:
    params: Dict[str, ParameterValue] = request.parameters
    for key, param in message.parameters.items():
        choice, value = _param_value(param)
        if key == "priority":
            if choice not in ("int64_param", "uint64_param"):
                raise InvalidArgumentError(
                    "invalid value type for 'priority' parameter, expected int64_param or uint64_param."
                )
            if value < 0:
                raise InvalidArgumentError("invalid value for 'priority' parameter, expected a non-negative value.")
            request.priority = int(value)
        elif key == "timeout":
            if choice != "int64_param":
                raise InvalidArgumentError("invalid value type for 'timeout' parameter, expected int64_param.")
            request.timeout_us = int(value)
        elif key in ("sequence_id", "sequence_start", "sequence_end"):
            _sequence_parameter(key, choice, value, request)
        elif key == EMPTY_FINAL_PARAM:
            # Sent on every request by perf_analyzer and the C++ client, unary included; a stream reads it.
            if choice != "bool_param":
                raise InvalidArgumentError(f"invalid value type for '{echo(key)}' parameter, expected bool_param.")
        elif key.startswith("triton_"):
            raise InvalidArgumentError(
                "parameter keys starting with 'triton_' are reserved for Triton usage and should not be specified."
            )
        elif choice in _CUSTOM_PARAM_CHOICES:
            params[key] = int(value) if choice == "uint64_param" else value
        else:
            raise InvalidArgumentError(
                f"invalid value type for '{echo(key)}' parameter, expected int64_param, bool_param, double_param "
                "or string_param."
            )


def _reject_shared_memory(params: Any, what: str, name: str, model: str) -> None:
    if "shared_memory_region" in params:
        region = params["shared_memory_region"].string_param
        raise InvalidArgumentError(
            f"Unable to find system shared memory region: '{echo(region)}' (shared memory is not accepted here; "
            f"{what} '{echo(name)}' for model '{echo(model)}')"
        )


def _check_new_tensor(name: str, seen: Container[str], params: Any, what: str, model: str, shm: bool = False) -> None:
    """An input or requested output: its name is not repeated; a shared memory region only where ``shm``."""
    if name in seen:
        raise InvalidArgumentError(f"{what} '{echo(name)}' already exists in request")
    if params and not shm:
        _reject_shared_memory(params, what, name, model)


def _typed_input(tensor: Any, datatype: str, shape: Tuple[int, ...], count: int, model: str) -> np.ndarray:
    name = tensor.name
    contents = tensor.contents
    expected_field = _TYPED_FIELD.get(datatype)
    values: Any = ()
    for field, field_values in contents.ListFields():
        if field.name != expected_field:
            raise InvalidArgumentError(
                f"unexpected explicit tensor data for input tensor '{echo(name)}' for model '{echo(model)}' of type "
                f"'{echo(datatype)}', expected datatype '{_FIELD_DATATYPE.get(field.name, field.name)}'"
            )
        values = field_values
    if datatype == "BYTES":
        return bytes_array(values, shape, name, model)
    dtype = wire_dtype(datatype, name, model)
    if len(values) != count:
        raise InvalidArgumentError(
            f"input byte size mismatch for input '{echo(name)}' for model '{echo(model)}'. "
            f"Expected {count * dtype.itemsize}, got {len(values) * dtype.itemsize}"
        )
    if expected_field is None:  # FP16/BF16 have no typed field: only an empty tensor can get here
        return np.empty(shape, dtype=dtype)
    array = np.array(values, dtype=_FIELD_NUMPY[expected_field])
    if array.dtype != dtype:
        array = array.astype(dtype)  # narrowing INT8/16 and UINT8/16 truncates, as Triton's copy does
    return array.reshape(shape)


def decode_infer_request(
    message: Any,
    raw: RawBuffers = None,
    forwarded: Optional[Mapping[str, str]] = None,
    shm: Optional[shm_codec.SharedMemoryAccess] = None,
) -> InferenceRequest:
    """ModelInferRequest (+ raw contents from ``parse_infer_request``) -> InferenceRequest.

    ``forwarded`` are header-derived parameters; they are merged after the request's own parameters.
    Raises ``InvalidArgumentError`` for anything the client got wrong.
    """
    request = InferenceRequest(model_name=message.model_name, model_version=message.model_version, id=message.id)
    if message.parameters:
        _decode_parameters(message, request)
    if forwarded:
        request.parameters.update(forwarded)
    request.inputs = _decode_inputs(message, raw if raw is not None else message.raw_input_contents, shm)
    if message.outputs:
        request.requested_outputs = _requested_outputs(message, shm is not None)
    return request


def shm_outputs(message: Any) -> Dict[str, shm_codec.ShmRef]:
    """The requested outputs to write into a shared memory region (name -> where)."""
    model = message.model_name
    targets: Dict[str, shm_codec.ShmRef] = {}
    for output in message.outputs:
        ref = shm_codec.ref_from_grpc(output.parameters, f"for output '{echo(output.name)}' for model '{echo(model)}'")
        if ref is not None:
            targets[output.name] = ref
    return targets


def _decode_inputs(
    message: Any, raw_contents: Sequence[Any], shm: Optional[shm_codec.SharedMemoryAccess] = None
) -> Dict[str, np.ndarray]:
    """The request's inputs: typed ``contents``, or the raw contents in inputs order (never both)."""
    model = message.model_name
    raw_count = len(raw_contents)
    inputs: Dict[str, np.ndarray] = {}
    index = 0
    for tensor in message.inputs:
        name = tensor.name
        _check_new_tensor(name, inputs, tensor.parameters, "input", model, shm is not None)
        shape = tuple(tensor.shape)
        count = checked_element_count(shape, name, model)
        datatype = tensor.datatype
        ref = shm_codec.ref_from_grpc(tensor.parameters, f"for input '{echo(name)}' for model '{echo(model)}'")
        if ref is not None:  # read from the region; takes no raw_input_contents entry
            inputs[name] = shm_codec.read_input(shm, ref, datatype, shape, name, model)
        elif tensor.HasField("contents"):
            if raw_count:
                raise InvalidArgumentError(
                    f"contents field must not be specified when using raw_input_contents for '{echo(name)}' "
                    f"for model '{echo(model)}'"
                )
            inputs[name] = _typed_input(tensor, datatype, shape, count, model)
        elif index < raw_count:
            inputs[name] = array_from_raw(raw_contents[index], datatype, shape, name, model)
            index += 1
        else:
            raise InvalidArgumentError(
                f"unable to find data for input tensor '{echo(name)}' for model '{echo(model)}' in request."
            )
    if index != raw_count:
        raise InvalidArgumentError(
            f"expected {index} raw input contents but got {raw_count} for model '{echo(model)}' "
            "(one raw_input_contents entry per input, in inputs order)"
        )
    return inputs


def _requested_outputs(message: Any, shm: bool = False) -> List[str]:
    model = message.model_name
    requested: List[str] = []
    for output in message.outputs:
        name = output.name
        _check_new_tensor(name, requested, output.parameters, "output", model, shm)
        requested.append(name)
    return requested


def classification_counts(message: Any) -> Dict[str, int]:
    """Requested outputs with ``parameters["classification"]`` (tritonclient's ``class_count``) -> K."""
    counts: Dict[str, int] = {}
    for output in message.outputs:
        if output.parameters and "classification" in output.parameters:
            param = output.parameters["classification"]
            choice = param.WhichOneof("parameter_choice")
            value = getattr(param, choice) if choice in ("int64_param", "uint64_param") else None
            counts[output.name] = parse_count(value, output.name, message.model_name)
    return counts


# --- response ------------------------------------------------------------------------------------------


def _set_param(target: Any, key: str, value: Any) -> None:
    param = target[key]
    if isinstance(value, bool):
        param.bool_param = value
    elif isinstance(value, int):
        param.int64_param = value
    elif isinstance(value, float):
        param.double_param = value
    else:
        param.string_param = str(value)


def _response_header(
    response: InferenceResponse, final: Optional[bool], in_shm: Container[str] = ()
) -> Tuple[Any, List[Any]]:
    """The response message without raw contents, and the output buffers in order (empty for ``in_shm``)."""
    message = service_pb2.ModelInferResponse(
        model_name=response.model_name, model_version=response.model_version, id=response.id
    )
    if response.parameters:
        for key, value in response.parameters.items():
            _set_param(message.parameters, key, value)
    if final is not None:
        message.parameters[FINAL_PARAM].bool_param = final
    buffers = []
    outputs = message.outputs
    for name, array in response.outputs.items():
        datatype, buffer = output_to_raw(array)
        outputs.add(name=name, datatype=datatype, shape=array.shape)
        buffers.append(b"" if name in in_shm else buffer)  # written to a region already: one empty entry
    return message, buffers


def encode_infer_response(response: InferenceResponse, final: Optional[bool] = None) -> Any:
    """InferenceResponse -> ModelInferResponse with one ``raw_output_contents`` entry per output.

    ``final`` (streams only) sets the ``triton_final_response`` parameter.
    """
    message, buffers = _response_header(response, final)
    message.raw_output_contents.extend(bytes(b) for b in buffers)
    return message


def _infer_response_parts(
    response: InferenceResponse, final: Optional[bool], in_shm: Container[str] = ()
) -> Tuple[List[Any], int]:
    """Wire pieces of a ModelInferResponse (header, then a tag+length and buffer per output) and their size."""
    message, buffers = _response_header(response, final, in_shm)
    header = message.SerializeToString()
    parts: List[Any] = [header]
    total = len(header)
    for buffer in buffers:
        size = len(buffer) if isinstance(buffer, bytes) else buffer.nbytes
        prefix = _RAW_OUTPUT_TAG + _varint(size)
        parts.append(prefix)
        parts.append(buffer)
        total += len(prefix) + size
    return parts, total


def serialize_infer_response(
    response: InferenceResponse, final: Optional[bool] = None, in_shm: Container[str] = ()
) -> bytes:
    """Wire bytes of ``encode_infer_response(response, final)``, copying each output buffer once; outputs
    ``in_shm`` (written into shared memory) get an empty raw entry."""
    parts, _ = _infer_response_parts(response, final, in_shm)
    return b"".join(parts)


def serialize_stream_response(response: InferenceResponse, final: bool, in_shm: Container[str] = ()) -> bytes:
    """Wire bytes of a ModelStreamInferResponse carrying ``response`` (``triton_final_response=final``); outputs
    ``in_shm`` (written into shared memory) get an empty raw entry."""
    parts, size = _infer_response_parts(response, final, in_shm)
    return b"".join([_STREAM_INFER_RESPONSE_TAG + _varint(size)] + parts)


def stream_response(response: InferenceResponse, final: bool) -> Any:
    """ModelStreamInferResponse message carrying ``response`` (see ``serialize_stream_response``)."""
    return service_pb2.ModelStreamInferResponse(infer_response=encode_infer_response(response, final))


def stream_error_response(message: str, model_name: str = "", model_version: str = "", request_id: str = "") -> Any:
    """An in-stream error: ``error_message`` set, the request's id/model echoed, marked final."""
    infer = service_pb2.ModelInferResponse(model_name=model_name, model_version=model_version, id=request_id)
    infer.parameters[FINAL_PARAM].bool_param = True
    return service_pb2.ModelStreamInferResponse(error_message=message, infer_response=infer)


def stream_empty_final_response(model_name: str, model_version: str, request_id: str) -> Any:
    """The empty response closing a decoupled request (sent when the request enabled it)."""
    infer = service_pb2.ModelInferResponse(model_name=model_name, model_version=model_version, id=request_id)
    infer.parameters[FINAL_PARAM].bool_param = True
    return service_pb2.ModelStreamInferResponse(infer_response=infer)


# --- metadata, statistics, repository ------------------------------------------------------------------


def server_metadata_response(name: str, version: str, extensions: Sequence[str]) -> Any:
    return service_pb2.ServerMetadataResponse(name=name, version=version, extensions=list(extensions))


def model_metadata_response(metadata: Mapping[str, Any]) -> Any:
    """Model metadata in its JSON form (``{"name","versions","platform","inputs","outputs"}``) -> proto."""
    response = service_pb2.ModelMetadataResponse(
        name=metadata["name"],
        versions=[str(v) for v in metadata.get("versions", ())],
        platform=metadata.get("platform", ""),
    )
    for key, target in (("inputs", response.inputs), ("outputs", response.outputs)):
        for tensor in metadata.get(key, ()):
            target.add(name=tensor["name"], datatype=tensor["datatype"], shape=[int(d) for d in tensor["shape"]])
    return response


def repository_index_response(entries: Iterable[Mapping[str, Any]]) -> Any:
    """``[{"name","version","state","reason"?}]`` (HTTP's repository index JSON) -> RepositoryIndexResponse."""
    response = service_pb2.RepositoryIndexResponse()
    for entry in entries:
        response.models.add(
            name=entry["name"],
            version=str(entry.get("version", "")),
            state=entry.get("state", ""),
            reason=entry.get("reason", ""),
        )
    return response
