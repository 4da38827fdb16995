"""The v2 HTTP codec, exercised with bodies produced and parsed by tritonclient itself."""

from __future__ import annotations

import gzip
import json
import struct
import zlib

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.grpc import model_config_pb2

from pytriton_lite.exceptions import InvalidArgumentError, UnsupportedError
from pytriton_lite.model_config import Tensor, to_triton_dtype
from pytriton_lite.protocol import generate_codec, json_split
from pytriton_lite.protocol import http_codec as codec
from pytriton_lite.types import InferenceResponse, ModelInfo, ModelState, TensorInfo

MODEL = "m"

FIXED_DTYPES = [
    ("BOOL", np.bool_),
    ("UINT8", np.uint8),
    ("UINT16", np.uint16),
    ("UINT32", np.uint32),
    ("UINT64", np.uint64),
    ("INT8", np.int8),
    ("INT16", np.int16),
    ("INT32", np.int32),
    ("INT64", np.int64),
    ("FP16", np.float16),
    ("FP32", np.float32),
    ("FP64", np.float64),
]


def _sample(np_dtype, shape=(2, 3)):
    count = int(np.prod(shape))
    if np_dtype == np.bool_:
        return (np.arange(count) % 2 == 0).reshape(shape)
    if np.dtype(np_dtype).kind == "f":
        return (np.arange(count) / 4 - 1).astype(np_dtype).reshape(shape)
    info = np.iinfo(np_dtype)
    values = [info.min, info.max] + [info.min // 3 + i for i in range(count - 2)]
    return np.array(values, dtype=np_dtype).reshape(shape)


def _client_body(inputs, outputs=None, **kwargs):
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=outputs, **kwargs)
    return body, (None if json_size is None else str(json_size))


def _infer_input(name, array, binary):
    datatype = "BYTES" if array.dtype.kind in "OS" else httpclient.np_to_triton_dtype(array.dtype)
    item = httpclient.InferInput(name, list(array.shape), datatype)
    item.set_data_from_numpy(array, binary_data=binary)
    return item


def _decode(body, header=None, **kwargs):
    return codec.decode_infer_request(body, model_name=MODEL, model_version="1", header_length=header, **kwargs)


def _parse_response(encoded: codec.EncodedBody):
    length = encoded.headers.get(codec.INFERENCE_HEADER)
    return httpclient.InferenceServerClient.parse_response_body(
        encoded.join(),
        header_length=None if length is None else int(length),
        content_encoding=encoded.headers.get("content-encoding"),
    )


def _json_request(inputs, **extra):
    return json.dumps({"inputs": inputs, **extra}).encode()


def _expect_error(body, match, header=None, exc=InvalidArgumentError, **kwargs):
    with pytest.raises(exc, match=match) as info:
        _decode(body, header, **kwargs)
    return str(info.value)


# --- decoding: every dtype, JSON and binary -----------------------------------------------------------


@pytest.mark.parametrize("datatype,np_dtype", FIXED_DTYPES)
@pytest.mark.parametrize("binary", [True, False])
def test_fixed_dtypes_round_trip_from_tritonclient(datatype, np_dtype, binary):
    array = _sample(np_dtype)
    if datatype == "FP16" and not binary:
        body = _json_request([{"name": "IN", "shape": [2, 3], "datatype": "FP16", "data": array.reshape(-1).tolist()}])
        _expect_error(body, "receiving FP16 data via JSON is not supported")
        return
    body, header = _client_body([_infer_input("IN", array, binary)])
    request, options = _decode(bytearray(body), header)
    got = request.inputs["IN"]
    assert got.dtype == np.dtype(np_dtype)
    assert got.shape == array.shape
    np.testing.assert_array_equal(got, array)
    assert options.binary_data_output is True  # tritonclient asks for binary outputs when outputs=None
    assert request.requested_outputs is None


def test_binary_inputs_are_zero_copy_views_of_a_bytearray_body():
    array = np.arange(8, dtype=np.float32)
    body, header = _client_body([_infer_input("IN", array, True)])
    buffer = bytearray(body)
    request, _ = _decode(buffer, header)
    got = request.inputs["IN"]
    assert got.flags.writeable
    got[0] = 42.0  # writes through to the body: it is a view, not a copy
    assert struct.unpack_from("<f", buffer, int(header))[0] == 42.0


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_with_nul_and_utf8_round_trip(binary):
    array = np.array([b"abc\x00def", b"", "żółw".encode()], dtype=object)
    body, header = _client_body([_infer_input("S", array, binary)])
    request, _ = _decode(body, header)
    got = request.inputs["S"]
    assert got.dtype == object
    assert got.tolist() == array.tolist()


def test_nested_and_flat_json_data_give_the_same_tensor():
    nested = _json_request([{"name": "A", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, 4]]}])
    flat = _json_request([{"name": "A", "shape": [2, 2], "datatype": "INT32", "data": [1, 2, 3, 4]}])
    odd = _json_request([{"name": "A", "shape": [2, 2], "datatype": "INT32", "data": [1, [2, [3]], 4]}])
    for body in (nested, flat, odd):
        request, _ = _decode(body)
        np.testing.assert_array_equal(request.inputs["A"], np.array([[1, 2], [3, 4]], dtype=np.int32))


def test_json_nan_and_infinity_are_accepted():
    body = b'{"inputs":[{"name":"A","shape":[3],"datatype":"FP64","data":[NaN,Infinity,-Infinity]}]}'
    request, _ = _decode(body)
    got = request.inputs["A"]
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == -np.inf


def test_zero_sized_inputs_json_and_binary():
    body = _json_request([{"name": "A", "shape": [0, 4], "datatype": "FP32", "data": []}])
    request, _ = _decode(body)
    assert request.inputs["A"].shape == (0, 4)
    body, header = _client_body([_infer_input("B", np.zeros((1, 0), np.float32), True)])
    request, _ = _decode(body, header)
    assert request.inputs["B"].shape == (1, 0)


def test_mixed_binary_and_json_inputs_follow_inputs_order():
    a = np.arange(4, dtype=np.int64)
    b = np.array([1.5, 2.5], dtype=np.float32)
    c = np.array([b"x", b"yz"], dtype=object)
    body, header = _client_body([_infer_input("A", a, True), _infer_input("B", b, False), _infer_input("C", c, True)])
    request, _ = _decode(body, header)
    np.testing.assert_array_equal(request.inputs["A"], a)
    np.testing.assert_array_equal(request.inputs["B"], b)
    assert request.inputs["C"].tolist() == [b"x", b"yz"]
    assert list(request.inputs) == ["A", "B", "C"]


def test_perf_analyzer_style_header_on_an_all_json_body():
    body = _json_request([{"name": "A", "shape": [1], "datatype": "INT32", "data": [7]}], id="")
    request, _ = _decode(body, str(len(body)))
    assert request.inputs["A"].tolist() == [7]
    assert request.id == ""


def test_id_parameters_and_requested_outputs():
    inputs = [_infer_input("A", np.ones(2, np.float32), True)]
    outputs = [httpclient.InferRequestedOutput("X", binary_data=False), httpclient.InferRequestedOutput("Y")]
    body, header = _client_body(
        inputs, outputs, request_id="42", priority=2, timeout=1500, parameters={"k": "v", "n": 3, "b": True, "f": 0.5}
    )
    request, options = _decode(body, header)
    assert request.id == "42"
    assert request.priority == 2
    assert request.timeout_us == 1500
    assert request.parameters == {"k": "v", "n": 3, "b": True, "f": 0.5}
    assert request.requested_outputs == ["X", "Y"]
    assert options.is_binary("Y") and not options.is_binary("X")


def test_sequence_parameters_are_type_checked_and_not_forwarded():
    body, header = _client_body(
        [_infer_input("A", np.ones(1, np.float32), True)], sequence_id=5, sequence_start=True, sequence_end=False
    )
    request, _ = _decode(body, header)
    assert request.parameters == {}


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_request_bodies(encoding):
    array = np.arange(6, dtype=np.int16).reshape(2, 3)
    body, header = _client_body([_infer_input("A", array, True), _infer_input("S", np.array([b"q\x00"], object), True)])
    compressed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    request, _ = _decode(compressed, header, content_encoding=encoding)  # header counts the decompressed JSON
    np.testing.assert_array_equal(request.inputs["A"], array)
    assert request.inputs["S"].tolist() == [b"q\x00"]


def test_unsupported_and_corrupt_compression():
    body = _json_request([])
    _expect_error(body, "Unsupported compression type", exc=UnsupportedError, content_encoding="br")
    _expect_error(b"not gzip at all", "decompress", content_encoding="gzip")
    _expect_error(gzip.compress(body)[:-6], "decompress|truncated", content_encoding="gzip")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("trailer", [b"junk", b"second member"])
def test_data_after_the_compressed_stream_is_refused(encoding, trailer):
    body = _json_request([])
    compress = gzip.compress if encoding == "gzip" else zlib.compress
    tail = compress(trailer) if trailer == b"second member" else trailer
    message = _expect_error(compress(body) + tail, "after the end of the", content_encoding=encoding)
    assert f"{len(tail)} bytes of data after the end of the {encoding} stream" in message


def test_decompression_is_capped():
    bomb = gzip.compress(b" " * 5000)
    _expect_error(bomb, "maximum allowed input size of 1000", content_encoding="gzip", max_input_size=1000)


# --- raw binary requests --------------------------------------------------------------------------------


def _model(inputs, max_batch_size=0, name=MODEL):
    """The frozen ModelInfo the front ends pass to the codecs, from PyTriton ``Tensor`` specs."""
    return ModelInfo(
        name=name,
        version=1,
        state=ModelState.READY,
        reason="",
        decoupled=False,
        max_batch_size=max_batch_size,
        inputs=tuple(TensorInfo(t.name, to_triton_dtype(t.dtype), t.shape, bool(t.optional)) for t in inputs),
        outputs=(),
        config=model_config_pb2.ModelConfig(name=name, max_batch_size=max_batch_size),
    )


def test_raw_binary_request_fixed_dtype_with_variable_dim():
    model = _model([Tensor(name="IN", shape=(-1,), dtype=np.int32)], max_batch_size=8)
    data = np.arange(5, dtype=np.int32)
    request, options = _decode(data.tobytes(), "0", model=model)
    assert request.inputs["IN"].shape == (1, 5)  # batch 1 prepended
    np.testing.assert_array_equal(request.inputs["IN"][0], data)
    assert options.raw and options.is_binary("anything")


def test_raw_binary_request_bytes_and_errors():
    model = _model([Tensor(name="S", shape=(1,), dtype=bytes)])
    payload = struct.pack("<I", 3) + b"427"
    request, _ = _decode(payload, "0", model=model)
    # Triton takes the whole raw body as the BYTES input's one element: no length prefix is parsed
    assert request.inputs["S"].tolist() == [payload]
    request, _ = _decode(b"\x00raw image bytes\xff", "0", model=model)
    assert request.inputs["S"].tolist() == [b"\x00raw image bytes\xff"]
    batched, _ = _decode(b"abc", "0", model=_model([Tensor(name="S", shape=(1,), dtype=bytes)], max_batch_size=4))
    assert batched.inputs["S"].shape == (1, 1) and batched.inputs["S"][0, 0] == b"abc"
    _expect_error(
        payload, "must have input shape \\[1\\]", "0", model=_model([Tensor(name="S", shape=(2,), dtype=bytes)])
    )
    _expect_error(
        b"\0" * 8,
        "Raw request must only have 1 input \\(found 1\\) to be deduced but got 2 inputs",
        "0",
        model=_model([Tensor(name="A", shape=(1,), dtype=np.int32), Tensor(name="B", shape=(1,), dtype=np.int32)]),
    )
    _expect_error(
        b"\0" * 8,
        "more than one variable-sized dimension",
        "0",
        model=_model([Tensor(name="A", shape=(-1, -1), dtype=np.int32)]),
    )
    _expect_error(
        b"\0" * 7,
        "input byte size mismatch for input 'A'",
        "0",
        model=_model([Tensor(name="A", shape=(2,), dtype=np.int32)]),
    )


# --- malformed requests (Triton answers 500; we answer 400) ---------------------------------------------


@pytest.mark.parametrize(
    "body,match",
    [
        (b"{not json", "failed to parse the request JSON for model 'm'"),
        (b"", "empty request body"),
        (b"[1,2]", "document root must be an object"),
        (b'{"inputs":{}}', "Unable to parse 'inputs'"),
        (b'{"id":"x"}', "Unable to parse 'inputs'"),
        (b'{"id":5,"inputs":[]}', "Unable to parse 'id'"),
        (b'{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}', "Unable to parse 'name'"),
        (b'{"inputs":[{"name":"A","shape":[1],"data":[1]}]}', "Unable to parse 'datatype'.*input 'A'"),
        (b'{"inputs":[{"name":"A","datatype":"FP32","data":[1]}]}', "Unable to parse 'shape'.*input 'A'"),
        (
            b'{"inputs":[{"name":"A","shape":[2,-5],"datatype":"FP32","data":[1]}]}',
            "Unable to parse 'shape': attempt to access JSON non-unsigned-integer as unsigned-integer for input 'A' "
            "for model 'm'",
        ),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"FP32","data":["1.5"]}]}', "non-number as number.*'A'"),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"FP32","data":[true]}]}', "non-number as number"),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"INT32","data":[1.5]}]}', "non-signed-integer"),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"INT32","data":[true]}]}', "non-signed-integer"),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"UINT8","data":[-1]}]}', "out of range"),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"INT8","data":[300]}]}', "out of range"),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"UINT64","data":[1e400]}]}', "non-unsigned-integer"),
        (
            b'{"inputs":[{"name":"A","shape":[1],"datatype":"INT64","data":[99999999999999999999999]}]}',
            "out of range|non-signed",
        ),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"BOOL","data":[1]}]}', "non-boolean as boolean"),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"BYTES","data":[1]}]}', "non-string as string"),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"BYTES","data":"abc"}]}', "non-array as array"),
        (
            b'{"inputs":[{"name":"A","shape":[1,16],"datatype":"INT32","data":[' + b",".join([b"1"] * 15) + b"]}]}",
            "^Failed to parse 'data' field: shape does not match true shape for input 'A' for model 'm'$",
        ),
        (
            b'{"inputs":[{"name":"A","shape":[1,16],"datatype":"INT32","data":[' + b",".join([b"1"] * 18) + b"]}]}",
            "^Unable to parse 'data': Shape does not match true shape of 'data' field for input 'A' for model 'm'$",
        ),
        (b'{"inputs":[{"name":"A","shape":[1],"datatype":"FP32","data":[1]}],"parameters":[]}', "'parameters'"),
        (b'{"inputs":[],"outputs":{}}', "Unable to parse 'outputs'"),
        (b'{"inputs":[],"outputs":[{"parameters":{}}]}', "Unable to parse 'name'"),
        (b'{"inputs":[],"outputs":[{"name":"X","parameters":{"binary_data":1}}]}', "binary_data.*output 'X'"),
        (b'{"inputs":[],"parameters":{"priority":-1}}', "Unable to parse 'priority'"),
        (b'{"inputs":[],"parameters":{"priority":"high"}}', "Unable to parse 'priority'"),
        (b'{"inputs":[],"parameters":{"timeout":1.5}}', "Unable to parse 'timeout'"),
        (b'{"inputs":[],"parameters":{"binary_data_output":"yes"}}', "Unable to parse 'binary_data_output'"),
        (b'{"inputs":[],"parameters":{"sequence_start":1}}', "Unable to parse 'sequence_start'"),
        (b'{"inputs":[],"parameters":{"custom":[1,2]}}', "parameter 'custom' has invalid type"),
        (b'{"inputs":[],"parameters":{"custom":null}}', "parameter 'custom' has invalid type"),
    ],
)
def test_malformed_requests_are_400_and_named(body, match):
    message = _expect_error(body, match)
    assert "model 'm'" in message


def test_nesting_depth_limit():
    def nested(depth):
        return "[" * depth + "1" + "]" * depth

    template = '{"inputs":[{"name":"A","shape":[1],"datatype":"INT64","data":DATA}]}'
    ok = template.replace("DATA", nested(50))
    request, _ = _decode(ok.encode())
    assert request.inputs["A"].tolist() == [1]
    too_deep = template.replace("DATA", nested(120))
    _expect_error(too_deep.encode(), "JSON nesting depth exceeds maximum allowed limit \\(100\\)")
    absurd = template.replace("DATA", nested(250_000))
    _expect_error(absurd.encode(), "nesting depth|failed to parse")


def test_json_size_limits():
    body = _json_request([{"name": "A", "shape": [4], "datatype": "INT64", "data": [1, 2, 3, 4]}])
    _expect_error(
        body,
        f"request JSON size of {len(body)} bytes exceeds the maximum allowed input size of 10 bytes",
        max_input_size=10,
    )
    request, _ = _decode(body, max_input_size=len(body))
    assert request.inputs["A"].tolist() == [1, 2, 3, 4]
    big_shape = _json_request([{"name": "A", "shape": [1000], "datatype": "INT64", "data": [1]}])
    _expect_error(big_shape, "request JSON size of 8000 bytes exceeds", max_input_size=len(big_shape) + 10)


def test_shape_overflow():
    count = _json_request([{"name": "A", "shape": [16, 2**60 + 2], "datatype": "INT32", "data": []}])
    _expect_error(count, "causes total element count to exceed maximum size of")
    size = _json_request([{"name": "A", "shape": [4, 2**60 + 2], "datatype": "INT32", "data": []}])
    _expect_error(size, "byte size overflow for input 'A' for model 'm'")
    binary = json.dumps(
        {"inputs": [{"name": "A", "shape": [4, 2**60 + 2], "datatype": "INT32", "parameters": {"binary_data_size": 4}}]}
    ).encode()
    _expect_error(binary + b"\0" * 4, "byte size overflow", str(len(binary)))


# --- semantic errors that the codec owns -----------------------------------------------------------------


def test_unknown_datatype():
    body = _json_request([{"name": "A", "shape": [1], "datatype": "FLOAT", "data": [1]}])
    _expect_error(body, "invalid datatype for input A")


@pytest.mark.parametrize("datatype", ["FP16", "BF16"])
def test_half_precision_json_input_is_refused(datatype):
    body = _json_request([{"name": "A", "shape": [1], "datatype": datatype, "data": [1.0]}])
    _expect_error(
        body, f"receiving {datatype} data via JSON is not supported. Please use the binary data format for input A"
    )


def test_data_and_binary_size_both_or_neither():
    neither = _json_request([{"name": "A", "shape": [1], "datatype": "FP32"}])
    _expect_error(neither, "Input must set only one of the following fields.*But no field is set for input 'A'")
    both = json.dumps(
        {
            "inputs": [
                {"name": "A", "shape": [1], "datatype": "FP32", "data": [1], "parameters": {"binary_data_size": 4}}
            ]
        }
    ).encode()
    _expect_error(both + b"\0" * 4, "But set 'data' 'binary_data_size'", str(len(both)))


def test_shared_memory_is_refused():
    body = json.dumps(
        {"inputs": [{"name": "A", "shape": [1], "datatype": "FP32", "parameters": {"shared_memory_region": "r"}}]}
    ).encode()
    _expect_error(body, "shared memory region: 'r'.*input 'A'")


def test_duplicate_inputs_and_outputs():
    dup_in = _json_request(
        [
            {"name": "A", "shape": [1], "datatype": "FP32", "data": [1]},
            {"name": "A", "shape": [1], "datatype": "FP32", "data": [2]},
        ]
    )
    _expect_error(dup_in, "input 'A' already exists in request")
    dup_out = _json_request([], outputs=[{"name": "OUTPUT0"}, {"name": "OUTPUT0"}])
    _expect_error(dup_out, "^\\[request id: <id_unknown>\\] output 'OUTPUT0' already exists in request for model 'm'$")
    dup_out_id = _json_request([], id="7", outputs=[{"name": "O", "parameters": {"binary_data": True}}, {"name": "O"}])
    _expect_error(dup_out_id, "\\[request id: 7\\] output 'O' already exists")


def test_triton_prefixed_parameters_are_refused():
    body = _json_request([], parameters={"triton_enable_empty_final_response": True})
    _expect_error(body, "parameter keys starting with 'triton_' are reserved for Triton usage")


def test_classification_counts_are_decoded():
    body = _json_request([], outputs=[{"name": "O", "parameters": {"classification": 2}}, {"name": "P"}])
    request, options = _decode(body)
    assert request.requested_outputs == ["O", "P"] and options.classification == {"O": 2}
    for bad in ("2", -1, 1.5, True):
        body = _json_request([], outputs=[{"name": "O", "parameters": {"classification": bad}}])
        _expect_error(body, "'classification'")


# --- binary extension errors ----------------------------------------------------------------------------


def _binary_body(size_declared, payload, datatype="FP32", shape=(2,)):
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "A",
                    "shape": list(shape),
                    "datatype": datatype,
                    "parameters": {"binary_data_size": size_declared},
                }
            ]
        }
    ).encode()
    return header + payload, str(len(header))


@pytest.mark.parametrize("value", ["abc", "1.5", "", "0x10", "1_0"])
def test_header_length_not_a_number(value):
    _expect_error(b'{"inputs":[]}', f"Unable to parse Inference-Header-Content-Length, got: {value}", value)


@pytest.mark.parametrize("value", ["99999999999", "14", "-1"])
def test_header_length_out_of_range(value):
    _expect_error(b'{"inputs":[]}', f"inference header size should be in range \\(0, 13\\), got: {value}", value)


def test_header_length_pointing_into_binary_is_a_parse_error():
    body, header = _binary_body(8, b"\x01" * 8)
    _expect_error(body, "failed to parse the request JSON", str(int(header) + 3))


def test_binary_size_errors():
    body, header = _binary_body(12, b"\0" * 8)
    _expect_error(body, "unexpected size for input 'A', expecting 12 additional bytes for model 'm'", header)
    body, header = _binary_body(4, b"\0" * 8)
    _expect_error(body, "input byte size mismatch for input 'A' for model 'm'. Expected 8, got 4", header)
    body, header = _binary_body(8, b"\0" * 9)
    _expect_error(body, "unexpected additional input data for model 'm'", header)
    body, header = _binary_body(-1, b"")
    _expect_error(body, "binary_data_size", header)


def test_bytes_binary_errors():
    two = struct.pack("<I", 1) + b"a" + struct.pack("<I", 1) + b"b"
    body, header = _binary_body(len(two), two, "BYTES", (3,))
    _expect_error(body, "expected 3 string elements for inference input 'A' for model 'm', got 2", header)
    body, header = _binary_body(len(two), two, "BYTES", (1,))
    _expect_error(body, "unexpected number of string elements 2 for inference input 'A'", header)
    truncated = struct.pack("<I", 1) + b"a" + b"\x01\x00"
    body, header = _binary_body(len(truncated), truncated, "BYTES", (2,))
    _expect_error(body, "incomplete string length indicator for inference input 'A'", header)


# --- responses ------------------------------------------------------------------------------------------


def _response(outputs, **kwargs):
    return InferenceResponse(model_name=MODEL, model_version="1", outputs=outputs, **kwargs)


@pytest.mark.parametrize("datatype,np_dtype", FIXED_DTYPES)
@pytest.mark.parametrize("binary", [True, False])
def test_response_every_dtype_parsed_by_tritonclient(datatype, np_dtype, binary):
    array = _sample(np_dtype, (2, 2))
    response = _response({"OUT": array})
    options = codec.OutputOptions(binary_data_output=binary)
    if datatype == "FP16" and not binary:
        with pytest.raises(InvalidArgumentError, match="sending FP16 data via JSON is not supported.*output OUT"):
            codec.encode_infer_response(response, options)
        return
    result = _parse_response(codec.encode_infer_response(response, options))
    got = result.as_numpy("OUT")
    assert got.dtype == array.dtype
    np.testing.assert_array_equal(got, array)
    assert result.get_response()["model_version"] == "1"


def test_response_bf16_binary_output():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    array = np.array([1.5, -2.0, 3.25], dtype=ml_dtypes.bfloat16)
    result = _parse_response(
        codec.encode_infer_response(_response({"B": array}), codec.OutputOptions(binary_data_output=True))
    )
    assert result.get_output("B")["datatype"] == "BF16"
    got = result.as_numpy("B")
    # tritonclient >= 2.52 decodes BF16 as ml_dtypes.bfloat16, older releases (Python 3.9) as float32
    assert got.dtype in (array.dtype, np.dtype(np.float32))
    np.testing.assert_array_equal(got.astype(np.float32), array.astype(np.float32))


def test_response_bytes_with_nul_binary_and_json():
    array = np.array([[b"a\x00b"], [b"zz"]], dtype=object)
    binary = _parse_response(codec.encode_infer_response(_response({"S": array}), codec.OutputOptions(True)))
    assert binary.as_numpy("S").tolist() == array.tolist()
    text = codec.encode_infer_response(_response({"S": array}), codec.OutputOptions(False))
    assert json.loads(text.join())["outputs"][0]["data"] == ["a\x00b", "zz"]


def test_response_non_utf8_bytes_as_json_is_an_error():
    with pytest.raises(InvalidArgumentError, match="output 'S' of model 'm'.*UTF-8"):
        codec.encode_infer_response(_response({"S": np.array([b"\xff\xfe"], dtype=object)}), codec.OutputOptions(False))


def test_response_json_is_compact_with_triton_key_order():
    encoded = codec.encode_infer_response(
        _response({"O": np.array([[2, 4, 6]], dtype=np.int32)}, id="42", parameters={"p": 1})
    )
    body = encoded.join()
    assert body == (
        b'{"id":"42","model_name":"m","model_version":"1","parameters":{"p":1},'
        b'"outputs":[{"name":"O","datatype":"INT32","shape":[1,3],"data":[2,4,6]}]}'
    )
    assert encoded.headers == {"content-type": "application/json"}


def test_response_fp32_is_written_as_double_and_nan_survives():
    encoded = codec.encode_infer_response(_response({"F": np.array([0.1, np.nan, np.inf], dtype=np.float32)}))
    body = encoded.join()
    assert b"[0.10000000149011612,NaN,Infinity]" in body
    data = json.loads(body)["outputs"][0]["data"]
    assert np.isnan(data[1])


def test_response_mixed_json_and_binary_outputs_in_order():
    a = np.arange(3, dtype=np.int64)
    b = np.array([1.5], dtype=np.float64)
    c = np.array([b"xyz"], dtype=object)
    options = codec.OutputOptions(binary_data_output=False, binary={"A": True, "C": True})
    encoded = codec.encode_infer_response(_response({"A": a, "B": b, "C": c}), options)
    assert encoded.headers["content-type"] == "application/octet-stream"
    length = int(encoded.headers[codec.INFERENCE_HEADER])
    body = encoded.join()
    header = json.loads(body[:length])
    assert [o["name"] for o in header["outputs"]] == ["A", "B", "C"]
    assert "data" not in header["outputs"][0] and header["outputs"][0]["parameters"] == {"binary_data_size": 24}
    assert "parameters" not in header["outputs"][1]  # JSON outputs never carry parameters
    assert body[length:] == a.tobytes() + struct.pack("<I", 3) + b"xyz"
    result = _parse_response(encoded)
    np.testing.assert_array_equal(result.as_numpy("A"), a)
    np.testing.assert_array_equal(result.as_numpy("B"), b)
    assert result.as_numpy("C").tolist() == [b"xyz"]


def test_response_zero_sized_binary_outputs_have_no_header():
    encoded = codec.encode_infer_response(_response({"E": np.zeros((2, 0), np.float32)}), codec.OutputOptions(True))
    assert codec.INFERENCE_HEADER not in encoded.headers
    assert encoded.headers["content-type"] == "application/json"
    header = json.loads(encoded.join())
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 0}
    assert header["outputs"][0]["shape"] == [2, 0]
    assert _parse_response(encoded).as_numpy("E").size == 0


def test_large_binary_response_is_written_from_the_array_buffer():
    big = np.arange(1 << 17, dtype=np.float32)  # 512 KiB: above the join limit, sent as separate chunks
    encoded = codec.encode_infer_response(_response({"BIG": big}), codec.OutputOptions(True))
    assert len(encoded.chunks) == 2
    assert np.shares_memory(np.frombuffer(encoded.chunks[1], dtype=np.float32), big)
    assert encoded.content_length == len(encoded.join())
    np.testing.assert_array_equal(_parse_response(encoded).as_numpy("BIG"), big)


@pytest.mark.parametrize(
    "accept,expected",
    [
        (None, "identity"),
        ("", "identity"),
        ("br", "identity"),
        ("gzip, deflate, br", "gzip"),
        ("deflate, gzip", "deflate"),
        ("gzip;q=0.5, deflate;q=0.8", "deflate"),
        ("gzip;q=0", "identity"),
        ("identity, gzip", "identity"),
        ("GZIP", "gzip"),
    ],
)
def test_select_response_encoding(accept, expected):
    assert codec.select_response_encoding(accept) == expected


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_response_parsed_by_tritonclient(encoding):
    array = np.arange(100, dtype=np.int32)
    encoded = codec.encode_infer_response(_response({"O": array}), codec.OutputOptions(True), accept_encoding=encoding)
    assert encoded.headers["content-encoding"] == encoding
    np.testing.assert_array_equal(_parse_response(encoded).as_numpy("O"), array)


def test_error_body_is_compact():
    assert codec.encode_error("Not Found") == b'{"error":"Not Found"}'
    assert json.loads(codec.encode_error('quote " and \\ back')) == {"error": 'quote " and \\ back'}


# --- generate extension ---------------------------------------------------------------------------------


def _gen_model(batching=False):
    inputs = [
        Tensor(name="PROMPT", shape=(1,), dtype=bytes),
        Tensor(name="N", shape=(-1,), dtype=np.int32),
        Tensor(name="FLAG", shape=(1,), dtype=np.bool_, optional=True),
    ]
    return _model(inputs, max_batch_size=8 if batching else 0, name="g")


def _gen(body, batching=False):
    return generate_codec.decode_generate_request(body, model=_gen_model(batching), model_name="g", model_version="")


@pytest.mark.parametrize("batching", [False, True])
def test_generate_request_maps_inputs_and_parameters(batching):
    request = _gen(
        b'{"id":"1","PROMPT":"hi","N":[1,2,3],"temperature":0.5,"parameters":{"FLAG":true,"k":"v"}}', batching
    )
    prefix = (1,) if batching else ()
    assert request.id == "1"
    assert request.inputs["PROMPT"].shape == prefix + (1,)
    assert request.inputs["PROMPT"].reshape(-1).tolist() == [b"hi"]
    assert request.inputs["N"].shape == prefix + (3,)
    assert request.inputs["N"].dtype == np.int32
    assert request.inputs["FLAG"].reshape(-1).tolist() == [True]
    assert request.parameters == {"temperature": 0.5, "k": "v"}


@pytest.mark.parametrize(
    "body,match",
    [
        (b'{"PROMPT":1}', "non-string as string.*input 'PROMPT'"),
        (b'{"PROMPT":"a","FLAG":"yes"}', "non-boolean as boolean"),
        (b'{"PROMPT":"a","PROMPT":"b"}', "input 'PROMPT' already exists in request"),
        (b'{"PROMPT":"a","parameters":{"PROMPT":"b"}}', "input 'PROMPT' already exists in request"),
        (b'{"PROMPT":"a","parameters":5}', "Expected JSON object for keyword: 'parameters'"),
        (b'{"PROMPT":"a","x":[1,2]}', "parameter 'x' has invalid type"),
        (b'{"PROMPT":["a","b"]}', "Unable to parse 'data': Shape does not match true shape"),
        (b'{"id":3}', "Unable to parse 'id'"),
        (b"[]", "document root must be an object"),
        (b"{", "failed to parse the request JSON"),
    ],
)
def test_generate_request_errors(body, match):
    with pytest.raises(InvalidArgumentError, match=match):
        _gen(body)


def test_generate_request_refuses_compression():
    with pytest.raises(InvalidArgumentError, match="Content-Encoding"):
        generate_codec.decode_generate_request(b"{}", model=_gen_model(), model_name="g", content_encoding="gzip")


def test_generate_response_sorted_scalars_and_arrays():
    response = InferenceResponse(
        model_name="g",
        model_version="1",
        id="42",
        outputs={"TEXT": np.array([b"hello"], dtype=object), "Z": np.zeros(0, np.float32), "V": np.array([1, 2])},
        parameters={"b": 1, "triton_final_response": True},
    )
    body = generate_codec.encode_generate_response(response)
    assert body == b'{"TEXT":"hello","V":[1,2],"Z":[],"b":1,"id":"42","model_name":"g","model_version":"1"}'


def test_sse_framing():
    assert generate_codec.sse_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert generate_codec.sse_error_event("boom") == b'data: {"error":"boom"}\n\n'


# --- large documents in pieces (protocol.json_split) ---------------------------------------------------


def _big_doc(data_text: bytes, extra: bytes = b"") -> bytes:
    return b'{"id":"r","inputs":[{"name":"A","datatype":"FP64","shape":[3],"data":' + data_text + b"}]" + extra + b"}"


@pytest.mark.parametrize(
    "items",
    [
        [1.5] * 300_000,
        list(range(300_000)),
        [True, False] * 150_000,
        [1e300, -0.0, 3, 2.5e-10] * 80_000,
    ],
    ids=["floats", "ints", "bools", "mixed"],
)
def test_split_parsing_equals_one_call(items):
    text = _big_doc(json.dumps(items).encode(), b',"parameters":{"data":"not an array"}')
    assert len(text) > json_split.SPLIT_BYTES
    assert json_split.loads_split(text, codec.loads_json) == json.loads(text)
    spaced = _big_doc(json.dumps(items, indent=1).encode())
    assert json_split.loads_split(spaced, codec.loads_json) == json.loads(spaced)


@pytest.mark.parametrize("broken", [b"[1,]", b"[,1]", b"[1,,2]", b"[1 2]", b"[1,x]"])
def test_split_parsing_refuses_what_one_call_refuses(broken):
    items = b",".join([b"1.25"] * 300_000)
    inner = broken[1:-1]
    for text in (_big_doc(b"[" + inner + b"," + items + b"]"), _big_doc(b"[" + items + b"," + inner + b"]")):
        with pytest.raises(ValueError):
            json.loads(text)
        with pytest.raises(ValueError):
            json_split.loads_split(text, codec.loads_json)


def test_split_parsing_falls_back_when_a_data_key_is_not_an_input():
    items = json.dumps([2.0] * 300_000).encode()
    # a "data" array under parameters (invalid for the codec) and a duplicate key: parsed as one document
    for text in (
        b'{"parameters":{"data":' + items + b'},"inputs":[]}',
        b'{"inputs":[{"name":"A","data":' + items + b',"data":' + items + b"}]}",
    ):
        assert json_split.loads_split(text, codec.loads_json) == json.loads(text)


def test_a_large_json_body_decodes_as_before():
    data = np.arange(400_000, dtype=np.float32)
    body = json.dumps(
        {"inputs": [{"name": "A", "datatype": "FP32", "shape": [1, len(data)], "data": data.tolist()}]}
    ).encode()
    request, _ = _decode(body, None)
    np.testing.assert_array_equal(request.inputs["A"], data.reshape(1, -1))


def test_large_json_outputs_are_written_as_in_one_call():
    doc = {"model_name": "m", "outputs": [{"name": "A", "data": None}, {"name": "B", "data": None}]}
    a, b = [float(i) / 7 for i in range(200_000)], list(range(100_000))
    written = json_split.dumps_split(doc, [(doc["outputs"][0], a), (doc["outputs"][1], b)], codec.dumps_json)
    assert json.loads(written) == {"model_name": "m", "outputs": [{"name": "A", "data": a}, {"name": "B", "data": b}]}
    response = InferenceResponse(model_name="m", model_version="1", outputs={"Y": np.arange(200_000, dtype=np.int64)})
    encoded = json.loads(codec.encode_infer_response(response).join())
    assert encoded["outputs"][0]["data"] == list(range(200_000))
