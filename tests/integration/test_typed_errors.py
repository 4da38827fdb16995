"""Issue 10, typed errors: hostile shapes, text that is not UTF-8 and huge echoes of client input answer
HTTP 400 / gRPC INVALID_ARGUMENT with a bounded message, before the model runs, on both protocols."""

from __future__ import annotations

import http.client
import json

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor

TIMEOUT_S = 30.0
INFER = "/inference.GRPCInferenceService/ModelInfer"
HOSTILE_SHAPES = [
    [2**63, 0, 1],  # a dim over int64 (JSON only: the protobuf field is int64)
    [2**62, 2**62, 0],  # empty, but numpy cannot index the other dims
    [2**63 - 1, 0, 1],
    [2**64, 0, 1],
    [2**70, 1, 1],
]


@pytest.fixture(scope="module")
def calls():
    """Per-model call counts: a refused request must never reach the model."""
    return {"identity": 0, "cube": 0}


@pytest.fixture
def server(triton_server, calls):
    @batch
    def identity(INPUT):
        calls["identity"] += 1
        return {"OUTPUT": INPUT}

    def cube(requests):
        calls["cube"] += 1
        return [{"OUTPUT": r["INPUT"]} for r in requests]

    triton = triton_server()
    triton.bind(
        "identity",
        identity,
        inputs=[Tensor(name="INPUT", shape=(-1,), dtype=np.float32)],
        outputs=[Tensor(name="OUTPUT", shape=(-1,), dtype=np.float32)],
        config=ModelConfig(max_batch_size=8),
    )
    triton.bind(
        "cube",
        cube,
        inputs=[Tensor(name="INPUT", shape=(-1, -1, -1), dtype=np.float32)],
        outputs=[Tensor(name="OUTPUT", shape=(-1, -1, -1), dtype=np.float32)],
        config=ModelConfig(batching=False),
    )
    return triton


def _http_port(triton) -> int:
    return int(triton.http_url.rsplit(":", 1)[1])


def _grpc_target(triton) -> str:
    return triton.grpc_url[len("grpc://") :]


def _post(triton, path: str, body: str):
    connection = http.client.HTTPConnection("127.0.0.1", _http_port(triton), timeout=TIMEOUT_S)
    try:
        connection.request("POST", path, body=body.encode("utf-8", "surrogatepass"))
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _raw_infer(triton, payload: bytes):
    """ModelInfer with hand-made bytes; returns the RpcError (or None when the call succeeded)."""
    with grpc.insecure_channel(_grpc_target(triton)) as channel:
        call = channel.unary_unary(INFER, request_serializer=None, response_deserializer=None)
        try:
            call(payload, timeout=TIMEOUT_S)
        except grpc.RpcError as error:
            return error
    return None


def _healthy(triton):
    data = np.ones((1, 3), dtype=np.float32)
    with grpcclient.InferenceServerClient(_grpc_target(triton)) as client:
        tensor = grpcclient.InferInput("INPUT", [1, 3], "FP32")
        tensor.set_data_from_numpy(data)
        np.testing.assert_array_equal(client.infer("identity", [tensor]).as_numpy("OUTPUT"), data)


# --- shapes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", HOSTILE_SHAPES, ids=str)
def test_hostile_shape_over_http_is_400(server, calls, shape):
    body = json.dumps({"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": shape, "data": []}]})
    status, doc = _post(server, "/v2/models/cube/infer", body)
    assert status == 400, doc
    assert "input 'INPUT' for model 'cube'" in doc["error"]
    assert calls["cube"] == 0
    _healthy(server)


@pytest.mark.parametrize("shape", HOSTILE_SHAPES, ids=str)
def test_hostile_shape_in_http_binary_tensor_is_400(server, shape):
    header = json.dumps(
        {"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": shape, "parameters": {"binary_data_size": 0}}]}
    )
    connection = http.client.HTTPConnection("127.0.0.1", _http_port(server), timeout=TIMEOUT_S)
    try:
        connection.request(
            "POST",
            "/v2/models/cube/infer",
            body=header.encode(),
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
        response = connection.getresponse()
        assert response.status == 400, response.read()
        assert "for model 'cube'" in json.loads(response.read())["error"]
    finally:
        connection.close()


@pytest.mark.parametrize("shape", [s for s in HOSTILE_SHAPES if max(s) < 2**63], ids=str)
def test_hostile_shape_over_grpc_is_invalid_argument(server, calls, shape):
    request = service_pb2.ModelInferRequest(model_name="cube")
    request.inputs.add(name="INPUT", datatype="FP32", shape=shape)
    request.raw_input_contents.append(b"")
    error = _raw_infer(server, request.SerializeToString())
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "input 'INPUT' for model 'cube'" in error.details()
    assert calls["cube"] == 0
    _healthy(server)


def test_hostile_shape_with_typed_contents_over_grpc(server):
    request = service_pb2.ModelInferRequest(model_name="cube")
    request.inputs.add(name="INPUT", datatype="FP32", shape=[2**62, 2**62, 0]).contents.SetInParent()
    error = _raw_infer(server, request.SerializeToString())
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error


def test_too_many_dimensions_is_a_client_error_on_both_protocols(server):
    shape = [1] * 100
    body = json.dumps({"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": shape, "data": [1.0]}]})
    status, doc = _post(server, "/v2/models/cube/infer", body)
    assert status == 400 and "100 dimensions" in doc["error"], doc
    request = service_pb2.ModelInferRequest(model_name="cube")
    request.inputs.add(name="INPUT", datatype="FP32", shape=shape)
    request.raw_input_contents.append(b"\0\0\0\0")
    error = _raw_infer(server, request.SerializeToString())
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "100 dimensions" in error.details()


def test_empty_tensor_of_ordinary_shape_still_served(server):
    body = json.dumps({"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [2, 0, 3], "data": []}]})
    status, doc = _post(server, "/v2/models/cube/infer", body)
    assert status == 200, doc
    assert doc["outputs"][0]["shape"] == [2, 0, 3]


# --- text that is not UTF-8 ----------------------------------------------------------------------------

_ONE_INPUT = '"inputs":[{"name":"INPUT","datatype":"FP32","shape":[1,1],"data":[1]}]'


@pytest.mark.parametrize(
    "body, field",
    [
        ('{"id":"\\ud800",' + _ONE_INPUT + "}", "request id"),
        ('{"id":"ok\\udfff!",' + _ONE_INPUT + "}", "request id"),
        ('{"parameters":{"p":"\\ud800"},' + _ONE_INPUT + "}", "parameter 'p'"),
        ('{"parameters":{"\\ud800":1},' + _ONE_INPUT + "}", "parameter name"),
        ('{"parameters":{"triton_\\ud800":1},' + _ONE_INPUT + "}", "parameter name"),  # was a 500
    ],
)
def test_lone_surrogate_refused_at_decode_over_http(server, calls, body, field):
    before = calls["identity"]
    status, doc = _post(server, "/v2/models/identity/infer", body)
    assert status == 400, doc
    assert doc["error"].startswith(f"{field} for model 'identity' is not valid UTF-8"), doc
    assert calls["identity"] == before  # refused before the model ran


def test_lone_surrogate_in_generate_parameter_refused(server, calls):
    before = calls["identity"]
    status, doc = _post(server, "/v2/models/identity/generate", '{"INPUT":[1.0],"p":"\\ud800"}')
    assert status == 400, doc
    assert "not valid UTF-8" in doc["error"]
    assert calls["identity"] == before


def test_invalid_utf8_string_over_grpc_is_invalid_argument(server, calls):
    before = calls["identity"]
    payload = service_pb2.ModelInferRequest(model_name="identity", id="xy").SerializeToString()
    error = _raw_infer(server, payload.replace(b"xy", b"\xed\xa0"))  # an encoded lone surrogate
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "malformed request" in error.details()
    assert calls["identity"] == before


# --- bounded echo of client input ----------------------------------------------------------------------

NAMES = [f"IN_{i:05d}" for i in range(10_000)]


def test_ten_thousand_unknown_inputs_give_a_short_grpc_error(server):
    """Before: a 110,155-byte message over the client's 16 KiB metadata limit (RESOURCE_EXHAUSTED)."""
    inputs = []
    for name in NAMES:
        tensor = grpcclient.InferInput(name, [1, 1], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 1), dtype=np.float32))
        inputs.append(tensor)
    with grpcclient.InferenceServerClient(_grpc_target(server)) as client:
        with pytest.raises(InferenceServerException) as info:
            client.infer("identity", inputs, client_timeout=TIMEOUT_S)
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT", info.value
    message = info.value.message()
    assert len(message) < 1000, len(message)
    assert "'IN_00000','IN_00001'" in message and "'IN_00009'] and 9990 more" in message
    assert "IN_00010" not in message


def test_ten_thousand_unknown_inputs_give_a_short_http_error(server):
    inputs = []
    for name in NAMES:
        tensor = httpclient.InferInput(name, [1, 1], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 1), dtype=np.float32), binary_data=False)
        inputs.append(tensor)
    with httpclient.InferenceServerClient(server.http_url[len("http://") :], network_timeout=TIMEOUT_S) as client:
        with pytest.raises(InferenceServerException) as info:
            client.infer("identity", inputs)
    assert "and 9990 more" in info.value.message()
    assert len(info.value.message()) < 1000


def test_long_names_are_truncated_in_errors(server):
    long_name = "N" * 100_000
    body = json.dumps({"inputs": [{"name": long_name, "datatype": "FP32", "shape": [1, 1], "data": [1]}]})
    status, doc = _post(server, "/v2/models/identity/infer", body)
    assert status == 400
    assert len(doc["error"]) < 1000 and "(99800 more characters)" in doc["error"], doc
    request = service_pb2.ModelInferRequest(model_name="identity")
    request.inputs.add(name=long_name, datatype="NOPE", shape=[1])
    request.raw_input_contents.append(b"\0\0\0\0")
    error = _raw_infer(server, request.SerializeToString())
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(error.details()) < 1000 and "more characters" in error.details()


def test_unknown_model_with_a_huge_name_is_bounded_over_grpc(server):
    request = service_pb2.ModelInferRequest(model_name="m" * 200_000)
    error = _raw_infer(server, request.SerializeToString())
    assert error is not None and error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED, error
    assert len(error.details()) <= 4200
    _healthy(server)
