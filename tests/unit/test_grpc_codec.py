"""protocol.grpc_codec: ModelInferRequest/Response <-> InferenceRequest/Response, checked against tritonclient."""

from __future__ import annotations

import re

import numpy as np
import pytest
from tritonclient.grpc import service_pb2
from tritonclient.grpc._infer_result import InferResult
from tritonclient.utils import serialize_byte_tensor

from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol import grpc_codec, stats_json
from pytriton_lite.types import InferenceResponse

FIXED = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
TYPED_FIELD = {
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
}


def _sample(datatype: str, shape=(2, 3)) -> np.ndarray:
    if datatype == "BOOL":
        return (np.arange(np.prod(shape)) % 2 == 0).reshape(shape)
    return (np.arange(np.prod(shape)) + 1).astype(FIXED[datatype]).reshape(shape)


def _raw_request(model="m", **tensors) -> service_pb2.ModelInferRequest:
    """A request as tritonclient.grpc builds it: tensor metadata plus raw_input_contents in order."""
    request = service_pb2.ModelInferRequest(model_name=model)
    for name, array in tensors.items():
        if array.dtype == object:
            datatype, raw = "BYTES", serialize_byte_tensor(array).item() if array.size else b""
        else:
            datatype, raw = next(k for k, v in FIXED.items() if np.dtype(v) == array.dtype), array.tobytes()
        request.inputs.add(name=name, datatype=datatype, shape=array.shape)
        request.raw_input_contents.append(raw)
    return request


# --- requests: raw contents ----------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", sorted(FIXED))
def test_raw_inputs_every_fixed_dtype(datatype):
    array = _sample(datatype)
    decoded = grpc_codec.decode_infer_request(_raw_request(INPUT=array))
    got = decoded.inputs["INPUT"]
    assert got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)


def test_raw_bytes_input_keeps_nul_and_object_dtype():
    array = np.array([[b"abc\x00def", b""], [b"\x00", "žluť".encode()]], dtype=object)
    got = grpc_codec.decode_infer_request(_raw_request(TEXT=array)).inputs["TEXT"]
    assert got.dtype == object and got.shape == (2, 2)
    assert got.tolist() == array.tolist()


def test_request_fields_and_requested_outputs():
    message = _raw_request(model="add", A=_sample("FP32"), B=_sample("INT64"))
    message.model_version = "3"
    message.id = "req-7"
    message.outputs.add(name="OUT1")
    message.outputs.add(name="OUT0")
    decoded = grpc_codec.decode_infer_request(message)
    assert (decoded.model_name, decoded.model_version, decoded.id) == ("add", "3", "req-7")
    assert list(decoded.inputs) == ["A", "B"]
    assert decoded.requested_outputs == ["OUT1", "OUT0"]


def test_no_requested_outputs_means_all():
    assert grpc_codec.decode_infer_request(_raw_request(A=_sample("FP32"))).requested_outputs is None


def test_raw_byte_count_mismatch_is_invalid_argument():
    message = _raw_request(A=_sample("FP32", (2, 4)))
    message.raw_input_contents[0] = message.raw_input_contents[0] + b"\x00" * 8
    expected = "input byte size mismatch for input 'A' for model 'm'. Expected 32, got 40"
    with pytest.raises(InvalidArgumentError, match=expected):
        grpc_codec.decode_infer_request(message)


def test_raw_bytes_element_count_mismatch():
    message = _raw_request(T=np.array([b"a", b"b"], dtype=object))
    message.inputs[0].shape[:] = [3]
    with pytest.raises(InvalidArgumentError, match="expected 3 string elements for inference input 'T'"):
        grpc_codec.decode_infer_request(message)


def test_missing_and_extra_raw_contents():
    message = _raw_request(A=_sample("FP32"))
    message.inputs.add(name="B", datatype="FP32", shape=[1])
    with pytest.raises(InvalidArgumentError, match="unable to find data for input tensor 'B' for model 'm'"):
        grpc_codec.decode_infer_request(message)
    message = _raw_request(A=_sample("FP32"))
    message.raw_input_contents.append(b"1234")
    with pytest.raises(InvalidArgumentError, match="raw input contents"):
        grpc_codec.decode_infer_request(message)


def test_unknown_datatype_negative_dim_and_overflow():
    message = _raw_request(A=_sample("FP32"))
    message.inputs[0].datatype = "FLOAT"
    with pytest.raises(InvalidArgumentError, match="invalid datatype for input A"):
        grpc_codec.decode_infer_request(message)
    message = _raw_request(A=_sample("FP32"))
    message.inputs[0].shape[:] = [2, -3]
    with pytest.raises(InvalidArgumentError, match="All input dimensions should be specified for input 'A'"):
        grpc_codec.decode_infer_request(message)
    message = _raw_request(A=_sample("FP32"))
    message.inputs[0].shape[:] = [16, 2**60 + 2]
    with pytest.raises(InvalidArgumentError, match="causes total element count to exceed maximum size"):
        grpc_codec.decode_infer_request(message)


def test_duplicate_input_and_output():
    message = _raw_request(A=_sample("FP32"))
    message.inputs.add(name="A", datatype="FP32", shape=[2, 3])
    message.raw_input_contents.append(_sample("FP32").tobytes())
    with pytest.raises(InvalidArgumentError, match="input 'A' already exists in request"):
        grpc_codec.decode_infer_request(message)
    message = _raw_request(A=_sample("FP32"))
    message.outputs.add(name="OUTPUT0")
    message.outputs.add(name="OUTPUT0")
    with pytest.raises(InvalidArgumentError, match="output 'OUTPUT0' already exists in request"):
        grpc_codec.decode_infer_request(message)


def test_output_classification_counts_and_shared_memory_refused():
    message = _raw_request(A=_sample("FP32"))
    message.outputs.add(name="OUT").parameters["classification"].int64_param = 2
    message.outputs.add(name="RAW")
    assert grpc_codec.decode_infer_request(message).requested_outputs == ["OUT", "RAW"]
    assert grpc_codec.classification_counts(message) == {"OUT": 2}
    message.outputs[1].parameters["classification"].string_param = "two"
    with pytest.raises(InvalidArgumentError, match="unable to parse 'classification' for output 'RAW'"):
        grpc_codec.classification_counts(message)
    message = _raw_request(A=_sample("FP32"))
    message.inputs[0].parameters["shared_memory_region"].string_param = "region0"
    with pytest.raises(InvalidArgumentError, match="region0"):
        grpc_codec.decode_infer_request(message)


def test_raw_inputs_are_views_not_copies():
    array = np.arange(1 << 16, dtype=np.float32)
    data = _raw_request(A=array).SerializeToString()
    message, raw = grpc_codec.parse_infer_request(data)
    assert raw is not None and len(raw) == 1
    got = grpc_codec.decode_infer_request(message, raw).inputs["A"]
    np.testing.assert_array_equal(got, array)
    assert np.shares_memory(got, np.frombuffer(data, dtype=np.uint8))


# --- requests: typed contents --------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", sorted(TYPED_FIELD))
def test_typed_contents_every_dtype(datatype):
    array = _sample(datatype)
    message = service_pb2.ModelInferRequest(model_name="m")
    tensor = message.inputs.add(name="X", datatype=datatype, shape=array.shape)
    getattr(tensor.contents, TYPED_FIELD[datatype]).extend(array.reshape(-1).tolist())
    got = grpc_codec.decode_infer_request(message).inputs["X"]
    assert got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)


def test_typed_bytes_contents_keep_nul():
    message = service_pb2.ModelInferRequest(model_name="m")
    tensor = message.inputs.add(name="S", datatype="BYTES", shape=[1, 3])
    tensor.contents.bytes_contents.extend([b"a\x00b", b"", b"\x00"])
    got = grpc_codec.decode_infer_request(message).inputs["S"]
    assert got.dtype == object and got.tolist() == [[b"a\x00b", b"", b"\x00"]]


def test_typed_int8_truncates_like_triton():
    message = service_pb2.ModelInferRequest(model_name="m")
    tensor = message.inputs.add(name="X", datatype="INT8", shape=[3])
    tensor.contents.int_contents.extend([1, 255, -129])
    got = grpc_codec.decode_infer_request(message).inputs["X"]
    assert got.dtype == np.int8 and got.tolist() == [1, -1, 127]


def test_typed_contents_wrong_field_count_and_mixing_raw():
    message = service_pb2.ModelInferRequest(model_name="m")
    message.inputs.add(name="X", datatype="FP32", shape=[2]).contents.int_contents.extend([1, 2])
    with pytest.raises(
        InvalidArgumentError,
        match=re.escape(
            "unexpected explicit tensor data for input tensor 'X' for model 'm' of type 'FP32', "
            "expected datatype 'INT32'"
        ),
    ):
        grpc_codec.decode_infer_request(message)

    message = service_pb2.ModelInferRequest(model_name="m")
    message.inputs.add(name="X", datatype="FP32", shape=[3]).contents.fp32_contents.extend([1, 2])
    with pytest.raises(InvalidArgumentError, match="mismatch for input 'X' for model 'm'. Expected 12, got 8"):
        grpc_codec.decode_infer_request(message)

    message = _raw_request(A=_sample("FP32"))
    message.inputs.add(name="X", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
    with pytest.raises(InvalidArgumentError, match="contents field must not be specified when using raw_input"):
        grpc_codec.decode_infer_request(message)

    message = service_pb2.ModelInferRequest(model_name="m")
    message.inputs.add(name="S", datatype="BYTES", shape=[2]).contents.bytes_contents.append(b"x")
    with pytest.raises(InvalidArgumentError, match="expected 2 string elements"):
        grpc_codec.decode_infer_request(message)


# --- requests: parameters ------------------------------------------------------------------------------


def test_parameters_custom_priority_timeout_and_flags():
    message = _raw_request(A=_sample("FP32"))
    params = message.parameters
    params["s"].string_param = "text"
    params["i"].int64_param = -5
    params["b"].bool_param = True
    params["d"].double_param = 0.25
    params["u"].uint64_param = 7
    params["priority"].uint64_param = 2
    params["timeout"].int64_param = 1500
    params["sequence_id"].string_param = "seq"
    params["sequence_start"].bool_param = True
    params[grpc_codec.EMPTY_FINAL_PARAM].bool_param = True
    decoded = grpc_codec.decode_infer_request(message, forwarded={"x-trace": "abc"})
    assert decoded.parameters == {"s": "text", "i": -5, "b": True, "d": 0.25, "u": 7, "x-trace": "abc"}
    assert decoded.priority == 2 and decoded.timeout_us == 1500
    assert grpc_codec.wants_empty_final_response(message)
    assert not grpc_codec.wants_empty_final_response(_raw_request(A=_sample("FP32")))


@pytest.mark.parametrize(
    "key,setter,match",
    [
        ("triton_foo", lambda p: setattr(p, "bool_param", True), "reserved for Triton usage"),
        ("priority", lambda p: setattr(p, "string_param", "1"), "'priority' parameter"),
        ("priority", lambda p: setattr(p, "int64_param", -1), "'priority' parameter"),
        ("timeout", lambda p: setattr(p, "uint64_param", 5), "'timeout' parameter"),
        ("sequence_id", lambda p: setattr(p, "bool_param", True), "'sequence_id' parameter"),
        ("sequence_end", lambda p: setattr(p, "int64_param", 1), "'sequence_end' parameter"),
        (grpc_codec.EMPTY_FINAL_PARAM, lambda p: setattr(p, "int64_param", 1), "expected bool_param"),
        ("unset", lambda p: p.SetInParent(), "invalid value type for 'unset'"),
    ],
)
def test_bad_parameters_are_invalid_argument(key, setter, match):
    message = _raw_request(A=_sample("FP32"))
    setter(message.parameters[key])
    with pytest.raises(InvalidArgumentError, match=match):
        grpc_codec.decode_infer_request(message)


def test_forwarded_parameters_match_by_search():
    metadata = [("x-user", "u1"), ("authorization", "secret"), ("my-x-tag", "t"), ("blob-bin", b"\x00")]
    assert grpc_codec.forwarded_parameters(metadata, re.compile("^x-")) == {"x-user": "u1"}
    assert grpc_codec.forwarded_parameters(metadata, re.compile("x-")) == {"x-user": "u1", "my-x-tag": "t"}
    assert grpc_codec.forwarded_parameters(metadata, None) == {}


# --- parse_infer_request --------------------------------------------------------------------------------


def test_parse_small_and_large_requests_match_protobuf():
    for size in (4, 1 << 18):
        message = _raw_request(A=np.arange(size, dtype=np.int32), B=np.array([b"x\x00y"], dtype=object))
        message.id = "abc"
        message.parameters["p"].double_param = 1.5
        message.outputs.add(name="O")
        data = message.SerializeToString()
        parsed, raw = grpc_codec.parse_infer_request(data)
        if size == 4:
            assert raw is None and parsed == message
        else:
            assert [bytes(r) for r in raw] == list(message.raw_input_contents)
            expected = service_pb2.ModelInferRequest()
            expected.CopyFrom(message)
            del expected.raw_input_contents[:]
            assert parsed == expected
        decoded = grpc_codec.decode_infer_request(parsed, raw)
        np.testing.assert_array_equal(decoded.inputs["A"], np.arange(size, dtype=np.int32))
        assert decoded.inputs["B"].tolist() == [b"x\x00y"]


def test_parse_large_typed_only_request():
    message = service_pb2.ModelInferRequest(model_name="m")
    values = [b"item-%d\x00" % i for i in range(50_000)]
    message.inputs.add(name="S", datatype="BYTES", shape=[len(values)]).contents.bytes_contents.extend(values)
    parsed, raw = grpc_codec.parse_infer_request(message.SerializeToString())
    assert raw is None and parsed == message
    assert grpc_codec.decode_infer_request(parsed).inputs["S"].tolist() == values


def test_parse_malformed_large_request_raises_protobuf_error():
    data = _raw_request(A=np.zeros(1 << 16, dtype=np.float32)).SerializeToString()
    with pytest.raises(Exception, match="(?i)error|pars|truncat"):
        grpc_codec.parse_infer_request(data[:-10])


# --- responses -----------------------------------------------------------------------------------------


def _response(**outputs) -> InferenceResponse:
    return InferenceResponse(model_name="m", model_version="1", outputs=outputs, id="r1", parameters={"k": "v", "n": 3})


@pytest.mark.parametrize("datatype", sorted(FIXED))
def test_response_roundtrip_through_tritonclient(datatype):
    array = _sample(datatype, (3, 2))
    response = _response(OUT=array)
    message = grpc_codec.encode_infer_response(response)
    assert len(message.raw_output_contents) == 1
    assert message.outputs[0].datatype == datatype and list(message.outputs[0].shape) == [3, 2]
    got = InferResult(message).as_numpy("OUT")
    assert got.dtype == array.dtype
    np.testing.assert_array_equal(got, array)


def test_response_bytes_zero_size_noncontiguous_and_big_endian():
    text = np.array([b"a\x00b", b"", "ü".encode()], dtype=object)
    empty = np.zeros((0, 4), dtype=np.float32)
    strided = np.arange(24, dtype=np.int32).reshape(4, 6)[:, ::2]
    big = np.arange(5, dtype=">i4")
    message = grpc_codec.encode_infer_response(_response(TEXT=text, EMPTY=empty, STRIDED=strided, BIG=big))
    assert [o.name for o in message.outputs] == ["TEXT", "EMPTY", "STRIDED", "BIG"]
    assert len(message.raw_output_contents) == 4 and message.raw_output_contents[1] == b""
    result = InferResult(message)
    assert result.as_numpy("TEXT").tolist() == text.tolist()
    assert result.as_numpy("EMPTY").shape == (0, 4)
    np.testing.assert_array_equal(result.as_numpy("STRIDED"), strided)
    np.testing.assert_array_equal(result.as_numpy("BIG"), np.arange(5, dtype=np.int32))


def test_response_metadata_and_parameters():
    message = grpc_codec.encode_infer_response(_response(OUT=_sample("FP32")))
    assert (message.model_name, message.model_version, message.id) == ("m", "1", "r1")
    assert message.parameters["k"].string_param == "v" and message.parameters["n"].int64_param == 3
    assert grpc_codec.FINAL_PARAM not in message.parameters
    final = grpc_codec.encode_infer_response(_response(OUT=_sample("FP32")), final=False)
    assert final.parameters[grpc_codec.FINAL_PARAM].WhichOneof("parameter_choice") == "bool_param"
    assert final.parameters[grpc_codec.FINAL_PARAM].bool_param is False


def test_serialized_responses_equal_the_messages():
    response = _response(A=_sample("FP64"), T=np.array([b"x\x00"], dtype=object), Z=np.zeros(0, dtype=np.int8))
    for final in (None, True, False):
        data = grpc_codec.serialize_infer_response(response, final)
        assert service_pb2.ModelInferResponse.FromString(data) == grpc_codec.encode_infer_response(response, final)
    for final in (True, False):
        data = grpc_codec.serialize_stream_response(response, final)
        assert service_pb2.ModelStreamInferResponse.FromString(data) == grpc_codec.stream_response(response, final)


def test_large_serialized_response_has_varint_lengths_right():
    big = np.arange(3 << 20, dtype=np.float32)  # 12 MiB: multi-byte varint length
    data = grpc_codec.serialize_stream_response(_response(BIG=big), final=False)
    parsed = service_pb2.ModelStreamInferResponse.FromString(data)
    np.testing.assert_array_equal(InferResult(parsed.infer_response).as_numpy("BIG"), big)


def test_stream_error_and_empty_final_responses():
    error = grpc_codec.stream_error_response("boom", "m", "1", "id9")
    assert error.error_message == "boom"
    assert (error.infer_response.id, error.infer_response.model_name) == ("id9", "m")
    assert error.infer_response.parameters[grpc_codec.FINAL_PARAM].bool_param is True
    final = grpc_codec.stream_empty_final_response("m", "2", "id9")
    assert final.error_message == "" and not final.infer_response.outputs
    assert final.infer_response.model_version == "2"
    assert final.infer_response.parameters[grpc_codec.FINAL_PARAM].bool_param is True


# --- metadata, statistics, repository ------------------------------------------------------------------


def test_metadata_builders():
    server = grpc_codec.server_metadata_response("triton", "2.73.0", ["statistics", "parameters"])
    assert server.name == "triton" and list(server.extensions) == ["statistics", "parameters"]
    meta = grpc_codec.model_metadata_response(
        {
            "name": "m",
            "versions": ["1", 2],
            "platform": "python",
            "inputs": [{"name": "IN", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "OUT", "datatype": "BYTES", "shape": [-1, 1]}],
        }
    )
    assert list(meta.versions) == ["1", "2"] and meta.platform == "python"
    assert (meta.inputs[0].name, meta.inputs[0].datatype, list(meta.inputs[0].shape)) == ("IN", "FP32", [-1, 4])
    assert meta.outputs[0].datatype == "BYTES"


def test_repository_builder():
    index = grpc_codec.repository_index_response(
        [
            {"name": "a", "version": "1", "state": "READY"},
            {"name": "b", "version": 2, "state": "UNAVAILABLE", "reason": "x"},
        ]
    )
    assert [(m.name, m.version, m.state, m.reason) for m in index.models] == [
        ("a", "1", "READY", ""),
        ("b", "2", "UNAVAILABLE", "x"),
    ]


def test_statistics_from_core_pairs():
    from pytriton_lite.core.stats import ModelStats

    stats = ModelStats()
    stats.record_execution(batch_size=4, requests=2, input_ns=10, infer_ns=100, output_ns=5)
    stats.record_success(total_ns=500, queue_ns=20)
    stats.record_success(total_ns=700, queue_ns=30)
    response = stats_json.statistics_proto([stats.snapshot("m", 2, max_batch_size=4, response_cache=False, queued=0)])
    entry = response.model_stats[0]
    assert (entry.name, entry.version, entry.inference_count, entry.execution_count) == ("m", "2", 4, 1)
    assert (entry.inference_stats.success.count, entry.inference_stats.success.ns) == (2, 1200)
    assert (entry.inference_stats.queue.count, entry.inference_stats.compute_infer.count) == (2, 2)
    assert entry.batch_stats[0].batch_size == 4 and entry.batch_stats[0].compute_infer.ns == 100


# --- issue 10: bounded echoes, shapes numpy cannot hold, tolerant deserialisers -------------------------


def test_echo_bounds_strings_and_lists():
    from pytriton_lite._echo import MAX_ECHO_CHARS, check_utf8, echo, echo_names

    assert echo("short") == "short"
    long = echo("x" * 10_000)
    assert long.startswith("x" * MAX_ECHO_CHARS) and long.endswith("... (9800 more characters)")
    assert echo("bad\ud800") == "bad\\ud800"  # a lone surrogate is shown escaped: the message stays encodable
    echo("bad\ud800").encode("utf-8")
    assert echo_names(["a", "b"]) == "['a','b']"
    assert echo_names(str(i) for i in range(25)) == "[" + ",".join(f"'{i}'" for i in range(10)) + "] and 15 more"
    assert check_utf8("fine é", "request id", "m") == "fine é"
    with pytest.raises(InvalidArgumentError, match=r"^request id for model 'm' is not valid UTF-8: surrogates"):
        check_utf8("\udfff", "request id", "m")


@pytest.mark.parametrize(
    "shape, match",
    [
        ([2**62, 2**62, 0], "too large for an empty tensor"),
        ([2**63 - 1, 0], "too large for an empty tensor"),
        ([2**63, 0], "dimension over the maximum"),
        ([1] * 65, "65 dimensions"),
    ],
)
def test_hostile_shapes_are_client_errors_in_decode(shape, match):
    message = service_pb2.ModelInferRequest(model_name="m")
    message.inputs.add(name="A", datatype="FP32", shape=[min(d, 2**63 - 1) for d in shape])
    message.raw_input_contents.append(b"")
    if max(shape) >= 2**63:  # not representable in the protobuf: the shared check directly
        from pytriton_lite.protocol.dtypes import checked_element_count

        with pytest.raises(InvalidArgumentError, match=match):
            checked_element_count(shape, "A", "m")
        return
    with pytest.raises(InvalidArgumentError, match=match):
        grpc_codec.decode_infer_request(message)


def test_empty_tensors_of_sane_shape_decode():
    message = service_pb2.ModelInferRequest(model_name="m")
    message.inputs.add(name="A", datatype="FP32", shape=[2**20, 0, 3])
    message.raw_input_contents.append(b"")
    assert grpc_codec.decode_infer_request(message).inputs["A"].shape == (2**20, 0, 3)


def test_error_messages_echo_long_names_bounded():
    message = service_pb2.ModelInferRequest(model_name="m" * 5000)
    message.inputs.add(name="n" * 5000, datatype="NOPE", shape=[1])
    message.raw_input_contents.append(b"\0")
    with pytest.raises(InvalidArgumentError) as info:
        grpc_codec.decode_infer_request(message)
    assert len(str(info.value)) < 600


def test_tolerant_deserialiser_marks_bad_bytes():
    from pytriton_lite.frontends._grpc_guard import Malformed, tolerant

    parse = tolerant(grpc_codec.parse_infer_request, "inference.ModelInferRequest")
    message, raw = parse(service_pb2.ModelInferRequest(model_name="m").SerializeToString())
    assert message.model_name == "m" and raw is None
    for bad in (b"\xff\xff", b"\x0a" + b"\xff" * 70_000):
        marked = parse(bad)
        assert isinstance(marked, Malformed) and marked.model_name == marked.id == ""
        assert str(marked.error()) == (
            "malformed request: the message is not a valid inference.ModelInferRequest protobuf message"
        )
