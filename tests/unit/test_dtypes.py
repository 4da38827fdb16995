"""The one dtype table (``pytriton_lite._dtypes``) and the wire facts both codecs share (``protocol.dtypes``)."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2, service_pb2

from pytriton_lite import _dtypes, model_config
from pytriton_lite.exceptions import InvalidArgumentError, PyTritonBadParameterError, PyTritonModelConfigError
from pytriton_lite.protocol import dtypes, generate_codec, grpc_codec, http_codec, json_tensors
from pytriton_lite.types import InferenceResponse, ModelInfo, ModelState, TensorInfo

PKG = pathlib.Path(__file__).resolve().parents[2] / "pytriton_lite"
INT64_MAX = (1 << 63) - 1


# --- the table ---------------------------------------------------------------------------------------


def test_dtype_table_imports_only_numpy_and_exceptions():
    tree = ast.parse((PKG / "_dtypes.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert imported <= {"__future__", "typing", "numpy", "pytriton_lite.exceptions"}


def test_model_config_and_protocol_use_the_one_table():
    for name in ("TRITON_DTYPES", "to_triton_dtype", "from_triton_dtype", "is_bytes_dtype", "normalize_dtype"):
        assert getattr(model_config, name) is getattr(_dtypes, name), name
    for name in ("TRITON_DTYPES", "FIXED_WIRE_NAMES", "to_triton_dtype", "from_triton_dtype"):
        assert getattr(dtypes, name) is getattr(_dtypes, name), name
    # no module keeps a table of its own
    for module in (model_config, dtypes, http_codec, grpc_codec):
        assert not hasattr(module, "_NP_TO_TRITON") and not hasattr(module, "_NATIVE_DATATYPES"), module


@pytest.mark.parametrize("wire", _dtypes.TRITON_DTYPES)
def test_config_type_names_round_trip(wire):
    config = _dtypes.config_type_name(wire)
    assert config == ("TYPE_STRING" if wire == "BYTES" else f"TYPE_{wire}")
    assert _dtypes.wire_name_of_config_type(config) == wire
    assert _dtypes.from_triton_dtype(config) == _dtypes.from_triton_dtype(wire)
    assert _dtypes.to_triton_dtype(config) == wire


def test_config_type_names_without_prefix_pass_through():
    assert _dtypes.wire_name_of_config_type("FP32") == "FP32"
    assert _dtypes.from_triton_dtype("STRING") == np.dtype(object)
    with pytest.raises(PyTritonModelConfigError, match="Unsupported Triton datatype: 'TYPE_COMPLEX'"):
        _dtypes.from_triton_dtype("TYPE_COMPLEX")


def test_wire_dtypes_are_little_endian_and_invert():
    assert "BYTES" not in _dtypes.LE_WIRE_DTYPES
    assert set(_dtypes.LE_WIRE_DTYPES) == set(_dtypes.TRITON_DTYPES) - {"BYTES"}
    for name, dtype in _dtypes.LE_WIRE_DTYPES.items():
        assert dtype.byteorder in "<|=", name
        assert _dtypes.FIXED_WIRE_NAMES[dtype] == name
        assert _dtypes.to_triton_dtype(dtype) == name


@pytest.mark.parametrize(
    "given,expected",
    [(np.float32, "FP32"), ("fp16", "FP16"), (bytes, "BYTES"), (np.dtype("U3"), "BYTES"), ("TYPE_STRING", "BYTES")],
)
def test_to_triton_dtype_spellings(given, expected):
    assert _dtypes.to_triton_dtype(given) == expected


def test_to_triton_dtype_refuses_unknown_dtypes():
    with pytest.raises(PyTritonBadParameterError, match="Unsupported tensor dtype"):
        _dtypes.to_triton_dtype(np.complex64)


def test_normalize_dtype_keeps_pytriton_forms():
    assert model_config.normalize_dtype(bytes) is bytes
    assert model_config.normalize_dtype(object) is object
    assert model_config.normalize_dtype(np.dtype(object)) == np.dtype(object)
    assert model_config.normalize_dtype("TYPE_FP32") is np.float32
    assert model_config.normalize_dtype("string") is np.bytes_
    assert model_config.normalize_dtype(np.dtype("<i4")) is np.int32


# --- one element count, one overflow check -----------------------------------------------------------


def test_one_element_count_check_for_both_codecs():
    assert json_tensors.checked_element_count is dtypes.checked_element_count
    assert not hasattr(grpc_codec, "_check_shape") and not hasattr(dtypes, "element_count")
    assert dtypes.checked_element_count([2, 3, 4], "A", "m") == 24
    assert dtypes.checked_element_count((), "A", "m") == 1
    with pytest.raises(InvalidArgumentError, match=r"All input dimensions should be specified .* got \[2,-3\]"):
        dtypes.checked_element_count((2, -3), "A", "m")
    with pytest.raises(InvalidArgumentError, match=f"causes total element count to exceed maximum size of {INT64_MAX}"):
        dtypes.checked_element_count([16, 2**60 + 2], "A", "m")
    with pytest.raises(InvalidArgumentError, match="byte size overflow for input 'A' for model 'm'"):
        dtypes.checked_element_count([4, 2**60 + 2], "A", "m", itemsize=4)
    # without an item size (BYTES, and gRPC, whose raw-size check follows) the byte size is not checked
    assert dtypes.checked_element_count([4, 2**60 + 2], "A", "m") == 4 * (2**60 + 2)


def test_grpc_byte_size_past_int64_is_a_size_mismatch_as_before():
    message = service_pb2.ModelInferRequest(model_name="m")
    message.inputs.add(name="A", datatype="INT32", shape=[4, 2**60 + 2])
    message.raw_input_contents.append(b"\0" * 4)
    with pytest.raises(InvalidArgumentError, match="input byte size mismatch for input 'A' for model 'm'"):
        grpc_codec.decode_infer_request(message)


# --- one output_to_raw -------------------------------------------------------------------------------


def _outputs():
    arrays = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f16": np.array([1.5, -2.0], dtype=np.float16),
        "bool": np.array([True, False, True]),
        "u64": np.array([2**64 - 1], dtype=np.uint64),
        "scalar": np.array(7, dtype=np.int32),
        "empty": np.zeros((0, 3), dtype=np.int64),
        "strided": np.arange(12, dtype=np.int16).reshape(3, 4)[:, ::2],
        "big_endian": np.arange(4, dtype=">i4"),
        "bytes": np.array([b"a\0b", b""], dtype=object),
        "text": np.array(["hé", "x"]),
    }
    return arrays


def test_one_output_to_raw_for_both_codecs():
    assert not hasattr(http_codec, "_output_to_raw") and not hasattr(grpc_codec, "_output_to_raw")
    for name, array in _outputs().items():
        datatype, buffer = dtypes.output_to_raw(array)
        little = array.astype(array.dtype.newbyteorder("<")) if array.dtype.kind not in "OU" else array
        assert datatype == _dtypes.to_triton_dtype(little.dtype), name
        expected = (
            dtypes.serialize_bytes_tensor(array) if datatype == "BYTES" else np.ascontiguousarray(little).tobytes()
        )
        assert bytes(buffer) == expected, name


def test_both_codecs_send_the_same_output_bytes():
    response = InferenceResponse(model_name="m", model_version="1", outputs=_outputs())
    grpc_message = grpc_codec.encode_infer_response(response)
    http_body = http_codec.encode_infer_response(response, http_codec.OutputOptions(binary_data_output=True)).join()
    header_length = http_body.index(b"}]}") + 3
    header = http_codec.loads_json(http_body[:header_length])
    offset = header_length
    for entry, raw, out in zip(header["outputs"], grpc_message.raw_output_contents, grpc_message.outputs):
        size = entry["parameters"]["binary_data_size"]
        assert (entry["name"], entry["datatype"], entry["shape"]) == (out.name, out.datatype, list(out.shape))
        assert http_body[offset : offset + size] == raw, entry["name"]
        offset += size
    assert offset == len(http_body)


def test_empty_bf16_output_encodes_on_both_codecs():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    array = np.zeros((0, 2), dtype=ml_dtypes.bfloat16)
    response = InferenceResponse(model_name="m", model_version="1", outputs={"B": array})
    message = grpc_codec.encode_infer_response(response)  # both raised memoryview.cast's TypeError before
    assert (message.outputs[0].datatype, message.raw_output_contents[0]) == ("BF16", b"")
    body = http_codec.encode_infer_response(response, http_codec.OutputOptions(binary_data_output=True))
    assert http_codec.loads_json(body.join())["outputs"][0]["parameters"] == {"binary_data_size": 0}
    assert dtypes.output_to_raw(array) == ("BF16", b"")


def test_bf16_output_bytes_are_its_words():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    array = np.array([[1.5], [-2.0]], dtype=ml_dtypes.bfloat16)
    datatype, buffer = dtypes.output_to_raw(array)
    assert (datatype, bytes(buffer)) == ("BF16", array.view(np.uint16).tobytes())


def test_structured_output_is_refused_not_sent_as_bf16():
    array = np.zeros(2, dtype=[("a", "<u2")])  # a void dtype of 2 bytes: gRPC used to send it as BF16
    response = InferenceResponse(model_name="m", model_version="1", outputs={"S": array})
    with pytest.raises(PyTritonBadParameterError, match="Unsupported tensor dtype"):
        grpc_codec.encode_infer_response(response)
    with pytest.raises(InvalidArgumentError, match="cannot encode output 'S' of model 'm': Unsupported tensor dtype"):
        http_codec.encode_infer_response(response, http_codec.OutputOptions(binary_data_output=True))


def test_unsupported_output_dtype_messages_per_codec():
    response = InferenceResponse(model_name="m", model_version="1", outputs={"C": np.zeros(2, np.complex64)})
    with pytest.raises(PyTritonBadParameterError, match=r"^Unsupported tensor dtype: dtype\('complex64'\)$"):
        grpc_codec.serialize_infer_response(response)
    with pytest.raises(InvalidArgumentError, match="cannot encode output 'C' of model 'm': Unsupported tensor dtype"):
        http_codec.encode_infer_response(response, http_codec.OutputOptions(binary_data_output=True))


# --- one JSON-object parser and one parameter rule for infer and generate -----------------------------


def _model(*inputs: TensorInfo) -> ModelInfo:
    return ModelInfo("g", 1, ModelState.READY, "", False, 0, inputs, (), model_config_pb2.ModelConfig(name="g"))


@pytest.mark.parametrize(
    "body,match",
    [
        (b"", "failed to parse the request JSON for model 'g': empty request body"),
        (b"[1]", "failed to parse the request JSON for model 'g': the document root must be an object"),
        (b"{", "failed to parse the request JSON for model 'g': "),
        (b"[" * 5000 + b"]" * 5000, r"JSON nesting depth exceeds maximum allowed limit \(100\) for model 'g'"),
        (b'{"p":{"q":1}}', "parameter 'p' has invalid type.*\\(model 'g'\\)"),
    ],
)
def test_infer_and_generate_word_body_errors_alike(body, match):
    model = _model()
    with pytest.raises(InvalidArgumentError, match=match):
        generate_codec.decode_generate_request(body, model=model, model_name="g")
    infer_body = body.replace(b'{"p"', b'{"inputs":[],"parameters":{"p"').replace(b"}}", b"}}}")
    with pytest.raises(InvalidArgumentError, match=match):
        http_codec.decode_infer_request(infer_body, model_name="g")


def test_parse_json_object_uses_the_given_loader():
    assert http_codec.parse_json_object(b'{"a":1}', "m") == {"a": 1}
    assert http_codec.parse_json_object(memoryview(b'{"a":1}'), "m") == {"a": 1}
    assert http_codec.parse_json_object(b"x", "m", loads=lambda data: {"got": bytes(data)}) == {"got": b"x"}


def test_generate_duplicate_keys_are_found_in_nested_objects_too():
    model = _model(TensorInfo("P", "BYTES", (1,)))
    with pytest.raises(InvalidArgumentError, match="input 'P' already exists in request for model 'g'"):
        generate_codec.decode_generate_request(b'{"parameters":{"P":"a","P":"b"}}', model=model, model_name="g")
    request = generate_codec.decode_generate_request(b'{"P":"a","k":1,"k":2}', model=model, model_name="g")
    assert request.parameters == {"k": 2}  # a repeated parameter: the last one wins, as before
