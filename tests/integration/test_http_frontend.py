"""The HTTP front end against a live server: tritonclient.http (sync and aio), raw httpx, curl and sockets."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import shutil
import socket
import struct
import subprocess
import threading
import time
import zlib

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient
from shared_models import bind_failing, bind_params
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from pytriton_lite.config import TritonConfig
from pytriton_lite.decorators import batch
from pytriton_lite.model_config import DynamicBatcher, ModelConfig, Tensor, TritonModelConfig
from pytriton_lite.testing import model_statistics, queue_state, wait_until

WAIT_S = 10.0  # bound on every wait for an event or a response

DTYPES = [np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64]
DTYPES += [np.float16, np.float32, np.float64]


# --- models --------------------------------------------------------------------------------------------


def _identity_for(dtype):
    @batch
    def infer(INPUT):
        return {"OUTPUT": INPUT}

    return infer


def _bind_identities(triton):
    for dtype in DTYPES + [bytes]:
        name = "id_" + np_to_triton_dtype(np.dtype(object) if dtype is bytes else np.dtype(dtype))
        triton.bind(
            name,
            _identity_for(dtype),
            inputs=[Tensor(name="INPUT", shape=(-1,), dtype=dtype)],
            outputs=[Tensor(name="OUTPUT", shape=(-1,), dtype=dtype)],
            config=ModelConfig(max_batch_size=8),
        )


@batch
def _add_sub(INPUT0, INPUT1):
    return {"OUTPUT0": INPUT0 + INPUT1, "OUTPUT1": INPUT0 - INPUT1}


def _bind_simple(triton):
    """Triton's qa 'simple' model: two INT32 [16] inputs, sum and difference."""
    triton.bind(
        "simple",
        _add_sub,
        inputs=[Tensor(name="INPUT0", shape=(16,), dtype=np.int32), Tensor(name="INPUT1", shape=(16,), dtype=np.int32)],
        outputs=[
            Tensor(name="OUTPUT0", shape=(16,), dtype=np.int32),
            Tensor(name="OUTPUT1", shape=(16,), dtype=np.int32),
        ],
        config=ModelConfig(max_batch_size=8, batcher=DynamicBatcher(max_queue_delay_microseconds=100)),
    )


def _bind_streamer(triton, fail_after=None):
    """Decoupled: COUNT=[n] yields n responses TEXT=["tok<i>"]; optionally raises after ``fail_after``."""

    def infer(requests):
        count = int(requests[0]["COUNT"][0])
        for i in range(count):
            if fail_after is not None and i == fail_after:
                raise RuntimeError("An Error Occurred")
            yield [{"TEXT": np.array([f"tok{i}".encode()], dtype=object)}]

    triton.bind(
        "streamer",
        infer,
        inputs=[Tensor(name="COUNT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="TEXT", shape=(1,), dtype=bytes)],
        config=ModelConfig(batching=False, decoupled=True),
    )


def _bind_echo_text(triton):
    """Coupled text model for /generate: PROMPT (+ optional N) -> TEXT, LEN."""

    def infer(requests):
        out = []
        for r in requests:
            prompt = r["PROMPT"].reshape(-1)[0]
            repeat = int(r["N"].reshape(-1)[0]) if "N" in r else 1
            out.append({"TEXT": np.array([prompt * repeat], dtype=object), "LEN": np.array([len(prompt) * repeat])})
        return out

    triton.bind(
        "echo",
        infer,
        inputs=[
            Tensor(name="PROMPT", shape=(1,), dtype=bytes),
            Tensor(name="N", shape=(1,), dtype=np.int32, optional=True),
        ],
        outputs=[Tensor(name="TEXT", shape=(1,), dtype=bytes), Tensor(name="LEN", shape=(1,), dtype=np.int64)],
        config=ModelConfig(batching=False),
    )


# --- fixtures and helpers ------------------------------------------------------------------------------


@pytest.fixture
def server(triton_server):
    triton = triton_server(TritonConfig(http_header_forward_pattern="^x-fwd-"))
    _bind_identities(triton)
    _bind_simple(triton)
    bind_params(triton)
    bind_failing(triton)
    _bind_streamer(triton)
    _bind_echo_text(triton)
    return triton


def _hostport(triton) -> str:
    return triton.http_url[len("http://") :]


@pytest.fixture
def client(server):
    c = httpclient.InferenceServerClient(_hostport(server), network_timeout=WAIT_S, connection_timeout=WAIT_S)
    yield c
    c.close()


@pytest.fixture
def raw(server):
    with httpx.Client(base_url=server.http_url, timeout=WAIT_S) as c:
        yield c


def _input(name, array, binary=True, datatype=None):
    tensor = httpclient.InferInput(name, list(array.shape), datatype or np_to_triton_dtype(array.dtype))
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def _simple_inputs(binary=True):
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    return [_input("INPUT0", a, binary), _input("INPUT1", np.ones_like(a), binary)], a


def _healthy(client):
    """The server still answers health and a good inference after whatever came before."""
    assert client.is_server_live()
    inputs, a = _simple_inputs()
    np.testing.assert_array_equal(client.infer("simple", inputs).as_numpy("OUTPUT0"), a + 1)


def _expect_error(status: str, match: str, fn, *args, **kwargs):
    with pytest.raises(InferenceServerException) as info:
        fn(*args, **kwargs)
    assert info.value.status() == status, info.value
    assert match in info.value.message(), info.value.message()
    return info.value


def _error(response, status: int, match: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    assert match in message, message
    return message


# --- health, metadata, config, statistics, repository --------------------------------------------------


def test_health_and_server_metadata(client, raw):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("simple") and client.is_model_ready("simple", "1")
    metadata = client.get_server_metadata()
    assert metadata["name"] == "triton" and metadata["version"]
    assert {"binary_tensor_data", "model_configuration", "statistics"} <= set(metadata["extensions"])
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/simple/ready"):
        response = raw.get(path)
        assert (response.status_code, response.content) == (200, b"")


def test_model_metadata_and_config(client, raw):
    metadata = client.get_model_metadata("simple")
    assert metadata == {
        "name": "simple",
        "versions": ["1"],
        "platform": "python",
        "inputs": [
            {"name": "INPUT0", "datatype": "INT32", "shape": [-1, 16]},
            {"name": "INPUT1", "datatype": "INT32", "shape": [-1, 16]},
        ],
        "outputs": [
            {"name": "OUTPUT0", "datatype": "INT32", "shape": [-1, 16]},
            {"name": "OUTPUT1", "datatype": "INT32", "shape": [-1, 16]},
        ],
    }
    assert raw.get("/v2/models/simple/versions/1").json() == metadata
    config = client.get_model_config("simple")
    assert config["input"][0]["dims"] == [16]  # int64 fields are numbers, as Triton writes them
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 100
    assert config["model_transaction_policy"] == {"decoupled": False}
    parsed = TritonModelConfig.from_dict(config)
    assert (parsed.model_name, parsed.max_batch_size, parsed.batching) == ("simple", 8, True)
    assert [(t.name, t.shape) for t in parsed.inputs] == [("INPUT0", (16,)), ("INPUT1", (16,))]
    unbatched = client.get_model_config("params")
    assert unbatched["max_batch_size"] == 0 and "dynamic_batching" not in unbatched
    assert unbatched["output"][0]["data_type"] == "TYPE_STRING"
    assert client.get_model_config("streamer")["model_transaction_policy"] == {"decoupled": True}
    assert client.get_model_metadata("params")["outputs"][0]["datatype"] == "BYTES"


def test_unknown_model_everywhere(client, raw):
    message = "Request for unknown model: 'nope' is not found"
    _expect_error("404", message, client.get_model_metadata, "nope")
    _expect_error("404", message, client.get_model_config, "nope")
    _expect_error("404", message, client.infer, "nope", _simple_inputs()[0])
    assert not client.is_model_ready("nope")
    _error(raw.get("/v2/models/nope/ready"), 404, message)
    _error(raw.post("/v2/models/nope/infer", content=b"not even json"), 404, message)  # 404 before parsing
    _error(raw.get("/v2/models/simple/versions/7"), 404, "'simple' version 7 is not found")
    _error(raw.get("/v2/models/nope/stats"), 400, "requested model 'nope' is not available")
    _error(
        raw.get("/v2/models/simple/versions/7/stats"),
        400,
        "requested model version is not available for model 'simple'",
    )


def test_routing_errors(raw):
    assert raw.get("/v2/nothing-here").json() == {"error": "Not Found"}
    assert raw.get("/v2/nothing-here").status_code == 404
    assert raw.get("/v2/models/simple/versions/abc").status_code == 404  # versions are digits only
    assert raw.get("/v2/models/simple/versions/1/trace/setting").status_code == 404  # as Triton: no version
    for method, path in (
        ("POST", "/v2/health/live"),
        ("GET", "/v2/models/simple/infer"),
        ("PUT", "/v2"),
        ("HEAD", "/v2"),
    ):
        response = raw.request(method, path)
        assert response.status_code == 405, (method, path)
        if method != "HEAD":
            assert response.content == b'{"error":"Method Not Allowed"}'
    # PyTriton prints its routes with a trailing slash
    assert raw.get("/v2/models/simple/ready/").status_code == 200


def test_statistics_route_is_not_a_model(client, raw):
    client.infer("simple", _simple_inputs()[0])
    stats = raw.get("/v2/models/stats").json()["model_stats"]
    assert {entry["name"] for entry in stats} >= {"simple", "params"}
    simple = client.get_inference_statistics("simple")["model_stats"]
    assert len(simple) == 1 and simple[0]["version"] == "1"
    assert simple[0]["inference_stats"]["success"]["count"] == 1
    assert simple[0]["inference_count"] == 1 and simple[0]["execution_count"] == 1


def test_repository_index_and_shared_memory(client, raw):
    index = client.get_model_repository_index()
    assert {"name": "simple", "version": "1", "state": "READY"} in index
    assert raw.post("/v2/repository/index", content=b'{"ready":true}').status_code == 200
    _error(
        raw.post("/v2/repository/index", content=b'{"ready":5}'), 400, "Invalid value for 'ready': expected a boolean"
    )
    deep = b'{"ready":' + b"[" * 250_000 + b"]" * 250_000 + b"}"
    _error(raw.post("/v2/repository/index", content=deep), 400, "Invalid value for 'ready'")
    _error(raw.post("/v2/repository/models/simple/load"), 503, "explicit model load / unload is not allowed")
    _error(raw.post("/v2/repository/other/index"), 501, "'repository_name' specification is not supported")
    assert client.get_system_shared_memory_status() == []
    assert client.get_cuda_shared_memory_status() == []
    _expect_error("400", "Unable to open shared memory region", client.register_system_shared_memory, "r", "/k", 8)
    _healthy(client)


# --- infer: tritonclient -------------------------------------------------------------------------------


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False])
def test_infer_every_dtype(client, binary_in, binary_out):
    for dtype in DTYPES:
        name = "id_" + np_to_triton_dtype(np.dtype(dtype))
        if dtype == np.float16 and not (binary_in and binary_out):
            continue  # FP16 cannot travel as JSON (refusals are checked below)
        data = (np.arange(8) % 3).astype(dtype).reshape(2, 4)
        outputs = [httpclient.InferRequestedOutput("OUTPUT", binary_data=binary_out)]
        result = client.infer(name, [_input("INPUT", data, binary_in)], outputs=outputs)
        got = result.as_numpy("OUTPUT")
        assert got.dtype == data.dtype, name
        np.testing.assert_array_equal(got, data)
        parameters = result.get_output("OUTPUT").get("parameters")
        assert (parameters is not None) == binary_out  # JSON outputs never carry parameters


def test_fp16_json_output_is_refused(client):
    data = np.ones((1, 2), np.float16)
    outputs = [httpclient.InferRequestedOutput("OUTPUT", binary_data=False)]
    _expect_error(
        "400",
        "sending FP16 data via JSON is not supported",
        client.infer,
        "id_FP16",
        [_input("INPUT", data)],
        outputs=outputs,
    )
    _healthy(client)


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_with_nul_and_request_id(client, binary):
    data = np.array([[b"abc\x00def", b"", b"\x00"]], dtype=object)
    outputs = [httpclient.InferRequestedOutput("OUTPUT", binary_data=binary)]
    result = client.infer("id_BYTES", [_input("INPUT", data, binary)], outputs=outputs, request_id="req-42")
    assert result.get_response()["id"] == "req-42"
    assert result.get_response()["model_version"] == "1"
    got = result.as_numpy("OUTPUT")
    assert [bytes(x) if isinstance(x, bytes) else x.encode() for x in got.reshape(-1)] == data.reshape(-1).tolist()


def test_non_utf8_bytes_as_json_output_is_an_error(client):
    data = np.array([[b"\xff\xfe"]], dtype=object)
    outputs = [httpclient.InferRequestedOutput("OUTPUT", binary_data=False)]
    _expect_error("400", "not valid UTF-8", client.infer, "id_BYTES", [_input("INPUT", data)], outputs=outputs)
    result = client.infer("id_BYTES", [_input("INPUT", data)])
    assert result.as_numpy("OUTPUT").tolist() == [[b"\xff\xfe"]]


def test_requested_outputs_mixed_binary_and_json(client):
    inputs, a = _simple_inputs()
    outputs = [
        httpclient.InferRequestedOutput("OUTPUT1", binary_data=False),
        httpclient.InferRequestedOutput("OUTPUT0"),
    ]
    result = client.infer("simple", inputs, outputs=outputs)
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["OUTPUT0", "OUTPUT1"]  # declared order
    assert "data" in response["outputs"][1] and "data" not in response["outputs"][0]
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + 1)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - 1)
    only = client.infer("simple", inputs, outputs=[httpclient.InferRequestedOutput("OUTPUT1")])
    assert [o["name"] for o in only.get_response()["outputs"]] == ["OUTPUT1"]


def test_parameters_and_forwarded_headers_reach_the_model(client):
    result = client.infer(
        "params",
        [_input("INPUT", np.array([1], np.int32))],
        parameters={"key": "value", "n": 3, "flag": True},
        headers={"x-fwd-trace": "abc", "x-other": "dropped"},
    )
    seen = json.loads(result.as_numpy("PARAMS")[0])
    assert seen == {"flag": True, "key": "value", "n": 3, "x-fwd-trace": "abc"}


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_request_and_response_compression(client, algorithm):
    inputs, a = _simple_inputs()
    result = client.infer(
        "simple", inputs, request_compression_algorithm=algorithm, response_compression_algorithm=algorithm
    )
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + 1)


def test_aio_client(server):
    async def run():
        async with aiohttpclient.InferenceServerClient(_hostport(server), conn_timeout=WAIT_S) as aio:
            assert await aio.is_server_live()
            assert (await aio.get_model_metadata("simple"))["name"] == "simple"
            inputs, a = _simple_inputs()
            # aiohttp always sends Accept-Encoding: gzip, deflate, br; the aio client decompresses infer only
            result = await aio.infer("simple", inputs, request_id="aio")
            np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - 1)
            big = np.arange(1 << 20, dtype=np.float32).reshape(1, -1)
            echoed = await aio.infer("id_FP32", [_input("INPUT", big)])
            np.testing.assert_array_equal(echoed.as_numpy("OUTPUT"), big)
            with pytest.raises(InferenceServerException, match="unknown model"):
                await aio.infer("nope", inputs)

    asyncio.run(asyncio.wait_for(run(), 60))


def test_large_binary_tensors_round_trip(client):
    big = np.random.default_rng(0).random((2, 4 << 20), dtype=np.float32)  # 32 MiB in, 32 MiB out
    result = client.infer("id_FP32", [_input("INPUT", big)])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT"), big)


def test_model_error_is_500_with_its_message(client):
    _expect_error(
        "500", "model exploded on purpose", client.infer, "failing", [_input("INPUT", np.array([1], np.int32))]
    )
    _healthy(client)


def test_decoupled_model_refused_on_infer(client):
    _expect_error(
        "501",
        "HTTP end point doesn't support models with decoupled transaction policy",
        client.infer,
        "streamer",
        [_input("COUNT", np.array([1], np.int32))],
    )
    _healthy(client)


def test_semantic_errors_via_tritonclient(client):
    a = np.zeros((1, 16), np.int32)
    _expect_error(
        "400", "expected 2 inputs but got 1 inputs for model 'simple'", client.infer, "simple", [_input("INPUT0", a)]
    )
    _expect_error(
        "400",
        "inference input 'INPUT1' data-type is 'FP32', but model 'simple' expects 'INT32'",
        client.infer,
        "simple",
        [_input("INPUT0", a), _input("INPUT1", a.astype(np.float32))],
    )
    _expect_error(
        "400",
        "unexpected shape for input 'INPUT0'",
        client.infer,
        "simple",
        [_input("INPUT0", a[:, :4]), _input("INPUT1", a[:, :4])],
    )
    big = np.zeros((9, 16), np.int32)
    _expect_error(
        "400", "batch-size must be <= 8", client.infer, "simple", [_input("INPUT0", big), _input("INPUT1", big)]
    )
    _expect_error(
        "400",
        "unexpected inference output 'NOPE' for model 'simple'",
        client.infer,
        "simple",
        _simple_inputs()[0],
        outputs=[httpclient.InferRequestedOutput("NOPE")],
    )
    _healthy(client)


# --- raw requests: curl, httpx, sockets ----------------------------------------------------------------


SIMPLE_JSON = {
    "inputs": [
        {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": list(range(1, 17))},
        {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": list(range(1, 17))},
    ]
}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_without_content_type(server):
    cmd = ["curl", "-s", "-d", json.dumps(SIMPLE_JSON), f"{server.http_url}/v2/models/simple/infer"]
    body = subprocess.run(cmd, capture_output=True, timeout=WAIT_S, check=True).stdout
    assert b'"data":[2,4,6,8,10,12,14,16,18,20,22,24,26,28,30,32]' in body
    assert b'"data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]' in body
    bad = dict(SIMPLE_JSON, inputs=[dict(SIMPLE_JSON["inputs"][0], data=list(range(15))), SIMPLE_JSON["inputs"][1]])
    cmd = ["curl", "-s", "-d", json.dumps(bad), f"{server.http_url}/v2/models/simple/infer"]
    body = subprocess.run(cmd, capture_output=True, timeout=WAIT_S, check=True).stdout
    assert body.startswith(b'{"error":"Failed to parse \'data\' field: shape does not match true shape')


def test_binary_data_output_and_per_output_choices(raw):
    body = dict(SIMPLE_JSON, parameters={"binary_data_output": True})
    response = raw.post("/v2/models/simple/infer", json=body)
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    assert all("data" not in o for o in header["outputs"])
    assert response.content[length:] == np.arange(2, 33, 2, dtype=np.int32).tobytes() + np.zeros(16, np.int32).tobytes()
    body = dict(
        SIMPLE_JSON,
        outputs=[
            {"name": "OUTPUT0", "parameters": {"binary_data": False}},
            {"name": "OUTPUT1", "parameters": {"binary_data": True}},
        ],
    )
    response = raw.post("/v2/models/simple/infer", json=body)
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    assert header["outputs"][0]["data"][:3] == [2, 4, 6]
    assert header["outputs"][1]["parameters"] == {"binary_data_size": 64}
    assert response.headers["content-type"] == "application/octet-stream"


def test_perf_analyzer_style_request(raw):
    """Header always present (equal to the body length for all-JSON bodies) and an empty id."""
    body = json.dumps(dict(SIMPLE_JSON, id="", parameters={"binary_data_output": True})).encode()
    response = raw.post(
        "/v2/models/simple/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(len(body)), "Content-Type": "application/json", "Expect": ""},
    )
    assert response.status_code == 200
    length = int(response.headers["inference-header-content-length"])
    assert "id" not in json.loads(response.content[:length])


def test_raw_binary_request(raw):
    data = np.arange(6, dtype=np.float32)
    response = raw.post(
        "/v2/models/id_FP32/infer", content=data.tobytes(), headers={"Inference-Header-Content-Length": "0"}
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    assert json.loads(response.content[:length])["outputs"][0]["shape"] == [1, 6]
    assert response.content[length:] == data.tobytes()
    _error(
        raw.post("/v2/models/simple/infer", content=b"\0" * 64, headers={"Inference-Header-Content-Length": "0"}),
        400,
        "Raw request must only have 1 input (found 1) to be deduced but got 2 inputs",
    )


def test_compressed_raw_bodies_and_unsupported_encoding(raw):
    body = json.dumps(SIMPLE_JSON).encode()
    for encoding, packed in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        response = raw.post("/v2/models/simple/infer", content=packed, headers={"Content-Encoding": encoding})
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"][:2] == [2, 4]
    response = raw.post("/v2/models/simple/infer", content=body, headers={"Content-Encoding": "br"})
    _error(response, 501, "Unsupported compression type")
    assert response.headers["accept-encoding"] == "gzip, deflate"


def test_accept_encoding_br_alone_is_ignored(raw):
    response = raw.post("/v2/models/simple/infer", json=SIMPLE_JSON, headers={"Accept-Encoding": "br"})
    assert response.status_code == 200 and "content-encoding" not in response.headers
    response = raw.post("/v2/models/simple/infer", json=SIMPLE_JSON, headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip" and response.json()["model_name"] == "simple"
    assert raw.get("/v2", headers={"Accept-Encoding": "gzip"}).headers.get("content-encoding") is None


def _binary_request(size_declared, payload):
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "INPUT",
                    "shape": [1, 2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": size_declared},
                }
            ]
        }
    ).encode()
    return header + payload, {"Inference-Header-Content-Length": str(len(header))}


BAD_JSON_BODIES = [
    (b"{not json", "failed to parse the request JSON"),
    (b"", "empty request body"),
    (b'{"inputs":{}}', "Unable to parse 'inputs'"),
    (b'{"inputs":[{"shape":[1,2],"datatype":"FP32","data":[1,2]}]}', "Unable to parse 'name'"),
    (b'{"inputs":[{"name":"INPUT","shape":[1,2],"data":[1,2]}]}', "Unable to parse 'datatype'"),
    (b'{"inputs":[{"name":"INPUT","datatype":"FP32","data":[1,2]}]}', "Unable to parse 'shape'"),
    (
        b'{"inputs":[{"name":"INPUT","shape":[2,-5],"datatype":"FP32","data":[1,2]}]}',
        "non-unsigned-integer as unsigned-integer",
    ),
    (b'{"inputs":[{"name":"INPUT","shape":[1,2],"datatype":"FP32","data":["a","b"]}]}', "non-number as number"),
    (b'{"inputs":[{"name":"INPUT","shape":[1,2],"datatype":"FP32","data":[1]}]}', "shape does not match true shape"),
    (
        b'{"inputs":[{"name":"INPUT","shape":[1,2],"datatype":"FP32","data":[1,2,3]}]}',
        "Shape does not match true shape",
    ),
    (b'{"inputs":[{"name":"INPUT","shape":[1,2],"datatype":"FP9","data":[1,2]}]}', "invalid datatype for input INPUT"),
    (b'{"inputs":[{"name":"INPUT","shape":[1,2],"datatype":"FP16","data":[1,2]}]}', "receiving FP16 data via JSON"),
    (b'{"inputs":[{"name":"INPUT","shape":[1,2],"datatype":"FP32"}]}', "But no field is set"),
    (b'{"inputs":[],"parameters":{"triton_x":1}}', "reserved for Triton usage"),
    (
        b'{"inputs":[{"name":"INPUT","shape":[1,2],"datatype":"FP32","data":[1,2]}],"outputs":[{"name":"OUTPUT"},{"name":"OUTPUT"}]}',
        "output 'OUTPUT' already exists in request",
    ),
    (
        b'{"inputs":[{"name":"INPUT","shape":[1,2],"datatype":"FP32","data":[1,2]},{"name":"INPUT","shape":[1,2],"datatype":"FP32","data":[1,2]}]}',
        "input 'INPUT' already exists",
    ),
    (
        b'{"inputs":[{"name":"INPUT","shape":[1],"datatype":"FP32","data":' + b"[" * 120 + b"1" + b"]" * 120 + b"}]}",
        "JSON nesting depth exceeds maximum allowed limit (100)",
    ),
    (
        b'{"inputs":[{"name":"INPUT","shape":[1],"datatype":"FP32","data":'
        + b"[" * 250_000
        + b"1"
        + b"]" * 250_000
        + b"}]}",
        "nesting depth",
    ),
    (
        b'{"inputs":[{"name":"INPUT","shape":[1,2],"datatype":"FP32","data":[1,2]},{"name":"EXTRA","shape":[1,1],"datatype":"FP32","data":[1]}]}',
        "unexpected inference input 'EXTRA'",
    ),
    (
        b'{"inputs":[{"name":"INPUT","shape":[1,2],"datatype":"INT32","data":[1,2]}]}',
        "data-type is 'INT32', but model 'id_FP32' expects 'FP32'",
    ),
]


@pytest.mark.parametrize("body,match", BAD_JSON_BODIES, ids=[m for _, m in BAD_JSON_BODIES])
def test_bad_json_requests_are_400_and_the_server_keeps_serving(raw, client, body, match):
    message = _error(raw.post("/v2/models/id_FP32/infer", content=body), 400, match)
    assert "id_FP32" in message  # every message names the model
    _healthy(client)


@pytest.mark.parametrize(
    "header,match",
    [
        ("abc", "Unable to parse Inference-Header-Content-Length"),
        ("99999999999", "inference header size should be in range"),
    ],
)
def test_bad_header_length(raw, client, header, match):
    body, _ = _binary_request(8, b"\0" * 8)
    _error(
        raw.post("/v2/models/id_FP32/infer", content=body, headers={"Inference-Header-Content-Length": header}),
        400,
        match,
    )
    _healthy(client)


def test_binary_extension_errors(raw, client):
    body, headers = _binary_request(12, b"\0" * 8)
    _error(raw.post("/v2/models/id_FP32/infer", content=body, headers=headers), 400, "expecting 12 additional bytes")
    body, headers = _binary_request(4, b"\0" * 4)
    _error(
        raw.post("/v2/models/id_FP32/infer", content=body, headers=headers),
        400,
        "input byte size mismatch for input 'INPUT'",
    )
    body, headers = _binary_request(8, b"\0" * 9)
    _error(raw.post("/v2/models/id_FP32/infer", content=body, headers=headers), 400, "unexpected additional input data")
    strings = struct.pack("<I", 1) + b"a" + b"\x05\x00"
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "INPUT",
                    "shape": [1, 2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(strings)},
                }
            ]
        }
    ).encode()
    response = raw.post(
        "/v2/models/id_BYTES/infer",
        content=header + strings,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    _error(response, 400, "incomplete string length indicator")
    _healthy(client)


def test_zero_sized_outputs_have_no_header(raw):
    body = {
        "inputs": [{"name": "INPUT", "shape": [1, 0], "datatype": "FP32", "data": []}],
        "parameters": {"binary_data_output": True},
    }
    response = raw.post("/v2/models/id_FP32/infer", json=body)
    assert response.status_code == 200, response.text
    assert "inference-header-content-length" not in response.headers
    assert response.json()["outputs"][0] == {
        "name": "OUTPUT",
        "datatype": "FP32",
        "shape": [1, 0],
        "parameters": {"binary_data_size": 0},
    }


def test_chunked_request_body(raw):
    payload = json.dumps(SIMPLE_JSON).encode()

    def chunks():
        for i in range(0, len(payload), 7):
            yield payload[i : i + 7]

    response = raw.post("/v2/models/simple/infer", content=chunks())  # no Content-Length: chunked
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][1]["data"] == [0] * 16


def test_keep_alive_connection_serves_many_requests(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=WAIT_S) as sock:
        stream = sock.makefile("rb")
        for _ in range(20):
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            status = stream.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            while stream.readline() not in (b"\r\n", b""):
                pass


def test_garbage_request_line_does_not_hurt(server, client):
    for junk in (
        b"BLAH /v2 HTTP/1.1\r\n\r\n",
        b"GET /v2 HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
        b"GET " + b"/a" * 5000 + b" HTTP/1.1\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=WAIT_S) as sock:
            sock.sendall(junk)
            sock.recv(65536)  # an answer or a close; never a hang (bounded by the timeout)
    _healthy(client)


# --- cancellation --------------------------------------------------------------------------------------


class _LogEvent(logging.Handler):
    def __init__(self, needle: str):
        super().__init__(logging.DEBUG)
        self.needle = needle
        self.event = threading.Event()

    def emit(self, record):
        if self.needle in record.getMessage():
            self.event.set()


def test_client_disconnect_drops_the_queued_request(triton_server):
    started, release = threading.Event(), threading.Event()
    seen = []

    def slow(requests):
        seen.extend(int(r["INPUT"][0]) for r in requests)
        started.set()
        release.wait(WAIT_S)
        return [{"OUTPUT": r["INPUT"]} for r in requests]

    triton = triton_server()
    triton.bind(
        "slow",
        slow,
        inputs=[Tensor(name="INPUT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="OUTPUT", shape=(1,), dtype=np.int32)],
        config=ModelConfig(batching=False),
    )
    logger = logging.getLogger("pytriton_lite.http")
    watcher = _LogEvent("Client disconnected; cancelled its infer request for model 'slow'")
    old_level = logger.level
    logger.addHandler(watcher)
    logger.setLevel(logging.DEBUG)
    try:
        results = {}

        def first():
            with httpx.Client(base_url=triton.http_url, timeout=WAIT_S) as c:
                results["first"] = c.post(
                    "/v2/models/slow/infer",
                    json={"inputs": [{"name": "INPUT", "shape": [1], "datatype": "INT32", "data": [1]}]},
                )

        worker = threading.Thread(target=first)
        worker.start()
        assert started.wait(WAIT_S)  # the only instance is busy with request 1
        body = json.dumps({"inputs": [{"name": "INPUT", "shape": [1], "datatype": "INT32", "data": [2]}]}).encode()
        with socket.create_connection(("127.0.0.1", triton.http_port), timeout=WAIT_S) as sock:
            sock.sendall(
                b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            wait_until(lambda: model_statistics(triton, "slow").pending >= 1, WAIT_S)  # request 2 is queued
            assert model_statistics(triton, "slow").pending == 1
        # the client went away while its request was queued: the server notices (uvicorn marks the request's
        # cycle disconnected, or the fallback watcher task logs it) before the instance frees up

        def noticed():
            return watcher.event.is_set() or queue_state(triton, "slow") == (1, 1)

        deadline = time.monotonic() + WAIT_S
        while not noticed():
            assert time.monotonic() < deadline, "the server did not notice the disconnect"
            time.sleep(0.005)
        release.set()
        worker.join(WAIT_S)
        assert results["first"].status_code == 200
        with httpx.Client(base_url=triton.http_url, timeout=WAIT_S) as c:
            third = c.post(
                "/v2/models/slow/infer",
                json={"inputs": [{"name": "INPUT", "shape": [1], "datatype": "INT32", "data": [3]}]},
            )
        assert third.json()["outputs"][0]["data"] == [3]
        assert seen == [1, 3], "the request of the departed client still ran"
    finally:
        release.set()
        logger.removeHandler(watcher)
        logger.setLevel(old_level)


# --- generate extension --------------------------------------------------------------------------------


def test_generate(raw):
    response = raw.post("/v2/models/echo/generate", json={"PROMPT": "ab", "N": 2, "id": "7", "temperature": 0.5})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == b'{"LEN":4,"TEXT":"abab","id":"7","model_name":"echo","model_version":"1"}'
    response = raw.post("/v2/models/echo/versions/1/generate", json={"PROMPT": "x"})
    assert response.json() == {"LEN": 1, "TEXT": "x", "model_name": "echo", "model_version": "1"}


def test_generate_errors(raw, client):
    _error(raw.post("/v2/models/echo/generate", json={}), 400, "expected number of inputs between 1 and 2 but got 0")
    _error(raw.post("/v2/models/echo/generate", json={"PROMPT": 5}), 400, "attempt to access JSON non-string as string")
    _error(
        raw.post("/v2/models/echo/generate", content=b'{"PROMPT":"a","PROMPT":"b"}'),
        400,
        "input 'PROMPT' already exists in request",
    )
    _error(
        raw.post("/v2/models/echo/generate", json={"PROMPT": "a", "parameters": 1}),
        400,
        "Expected JSON object for keyword: 'parameters'",
    )
    _error(
        raw.post("/v2/models/streamer/generate", json={"COUNT": 3}),
        400,
        "generate expects model to produce exactly 1 response",
    )
    _error(
        raw.post("/v2/models/streamer/generate", json={"COUNT": 0}),
        400,
        "generate expects model to produce exactly 1 response",
    )
    _error(raw.post("/v2/models/nope/generate", json={}), 404, "unknown model")
    _healthy(client)


def _events(response):
    body = response.read()
    assert body.endswith(b"\n\n")
    events = body.split(b"\n\n")[:-1]
    assert all(e.startswith(b"data: ") for e in events), body
    return [json.loads(e[len(b"data: ") :]) for e in events]


def test_generate_stream_events(server, raw):
    with raw.stream("POST", "/v2/models/streamer/generate_stream", json={"COUNT": 3}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        events = _events(response)
    assert [e["TEXT"] for e in events] == ["tok0", "tok1", "tok2"]
    assert all(e["model_name"] == "streamer" for e in events)
    with raw.stream("POST", "/v2/models/echo/generate_stream", json={"PROMPT": "hi", "id": "s"}) as response:
        assert _events(response) == [{"LEN": 2, "TEXT": "hi", "id": "s", "model_name": "echo", "model_version": "1"}]
    response = raw.post("/v2/models/echo/generate_stream", json={"PROMPT": 1})
    _error(response, 400, "non-string as string")  # errors before the first response are plain JSON errors


def test_generate_stream_error_mid_stream(triton_server):
    triton = triton_server()
    _bind_streamer(triton, fail_after=1)
    with httpx.Client(base_url=triton.http_url, timeout=WAIT_S) as raw:
        with raw.stream("POST", "/v2/models/streamer/generate_stream", json={"COUNT": 3}) as response:
            assert response.status_code == 200
            events = _events(response)
        assert events[0]["TEXT"] == "tok0"
        assert "An Error Occurred" in events[1]["error"] and len(events) == 2
        assert raw.get("/v2/health/live").status_code == 200


def test_generate_stream_disconnect_stops_the_generator(triton_server):
    stopped = threading.Event()

    def endless(requests):
        try:
            for i in range(100_000):  # bounded: the test expects it to stop after a handful
                yield [{"TEXT": np.array([b"t%d" % i], dtype=object)}]
                time.sleep(0.001)
        finally:
            stopped.set()

    triton = triton_server()
    triton.bind(
        "endless",
        endless,
        inputs=[Tensor(name="COUNT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="TEXT", shape=(1,), dtype=bytes)],
        config=ModelConfig(batching=False, decoupled=True),
    )
    with httpx.Client(base_url=triton.http_url, timeout=WAIT_S) as raw:
        with raw.stream("POST", "/v2/models/endless/generate_stream", json={"COUNT": 1}) as response:
            first = next(response.iter_bytes())
            assert first.startswith(b"data: ")
        # leaving the block closes the connection mid-stream
    assert stopped.wait(WAIT_S), "the generator kept running after the client went away"
    with httpx.Client(base_url=triton.http_url, timeout=WAIT_S) as raw:
        assert raw.get("/v2/health/live").status_code == 200


# --- configuration -------------------------------------------------------------------------------------


def test_restricted_api_needs_the_header(triton_server):
    triton = triton_server(TritonConfig(http_restricted_api="model-config,statistics:my-token=s3cret"))
    bind_params(triton)
    with httpx.Client(base_url=triton.http_url, timeout=WAIT_S) as raw:
        _error(raw.get("/v2/models/params/config"), 403, "This API is restricted, expecting header 'my-token'")
        _error(raw.get("/v2/models/stats"), 403, "expecting header 'my-token'")
        assert raw.get("/v2/models/params/config", headers={"my-token": "s3cret"}).status_code == 200
        assert raw.get("/v2/models/params").status_code == 200  # metadata is not restricted


def test_busy_port_raises_oserror_and_port_zero_works():
    from pytriton_lite.frontends.http import HttpFrontend

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]

        async def start_busy():
            await HttpFrontend(object(), host="127.0.0.1", port=port).start()

        with pytest.raises(OSError) as info:
            asyncio.run(start_busy())
    assert str(port) in str(info.value)

    async def start_free():
        frontend = HttpFrontend(object(), host="127.0.0.1", port=0)
        await frontend.start()
        assert frontend.port
        reader, writer = await asyncio.open_connection("127.0.0.1", frontend.port)
        writer.write(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), WAIT_S)
        writer.close()
        await frontend.stop()
        return status

    assert asyncio.run(start_free()).startswith(b"HTTP/1.1 404")


def test_options_from_triton_config():
    from pytriton_lite.frontends.http import HttpFrontend

    config = TritonConfig(http_address="127.0.0.1", http_port=0, http_header_forward_pattern="^x-")
    frontend = HttpFrontend.from_triton_config(object(), config)
    assert (frontend.host, frontend.requested_port) == ("127.0.0.1", 0)
    defaults = HttpFrontend.from_triton_config(object(), TritonConfig())
    assert (defaults.host, defaults.requested_port) == ("0.0.0.0", 8000)


def test_http_disabled(triton_server):
    triton = triton_server(TritonConfig(allow_http=False))
    assert triton.http_port is None


# --- the error boundary: typed errors mapped in one place -------------------------------------------


class _PlaneForBoundary:
    """A data plane for the boundary tests: one plain model whose inference raises ``infer_error``."""

    server_id = "triton"
    shared_memory = None  # no region registry: the codec refuses shared-memory tensors

    def __init__(self, infer_error=None):
        self.infer_error = infer_error

    def live(self):
        return True

    def model(self, name, version=""):
        from pytriton_lite.types import ModelInfo, ModelState, TensorInfo

        inputs = (TensorInfo("INPUT", "FP32", (-1,)),)
        return ModelInfo(name, 1, ModelState.READY, "", False, 0, inputs, inputs, None)

    async def infer(self, request, is_gone=None):
        raise self.infer_error


def _asgi(app, method, path, *, headers=(), body=b"", fail_send_on=None):
    """Drive ``app`` with one request; returns the ASGI messages it sent. ``fail_send_on``: a message type
    whose send raises ConnectionResetError (what a transport does when the peer is gone)."""
    sent = []

    async def main():
        never = asyncio.Event()
        bodies = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            if bodies:
                return bodies.pop()
            await never.wait()  # no disconnect: the client stays

        async def send(message):
            sent.append(message)
            if message["type"] == fail_send_on:
                raise ConnectionResetError("peer went away")

        scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
        await asyncio.wait_for(app(scope, receive, send), WAIT_S)

    asyncio.run(main())
    return sent


def _starts(sent):
    return [m for m in sent if m["type"] == "http.response.start"]


def test_an_error_after_the_response_started_is_logged_never_answered(caplog):
    from pytriton_lite.frontends.http import HttpApp

    # before: a second http.response.start with a 500 went out after the first (a protocol error in uvicorn)
    with caplog.at_level(logging.ERROR, logger="pytriton_lite.http"):
        sent = _asgi(HttpApp(_PlaneForBoundary()), "GET", "/v2/health/live", fail_send_on="http.response.body")
    assert [m["status"] for m in _starts(sent)] == [200]
    logged = [r for r in caplog.records if r.name == "pytriton_lite.http"]
    assert len(logged) == 1 and "after its response started" in logged[0].getMessage()
    assert isinstance(logged[0].exc_info[1], ConnectionResetError)


def test_decoupled_refusal_from_the_data_plane_has_triton_wording():
    from pytriton_lite.exceptions import DecoupledModelError
    from pytriton_lite.frontends.http import DECOUPLED_ON_INFER, HttpApp

    app = HttpApp(_PlaneForBoundary(DecoupledModelError("m")))
    body = json.dumps({"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [1], "data": [1.0]}]}).encode()
    sent = _asgi(app, "POST", "/v2/models/m/infer", body=body)
    assert [m["status"] for m in _starts(sent)] == [501]
    assert json.loads(sent[-1]["body"]) == {"error": DECOUPLED_ON_INFER}


def test_unexpected_errors_are_500_with_their_text_logged_once(caplog):
    from pytriton_lite.frontends.http import HttpApp

    app = HttpApp(_PlaneForBoundary(RuntimeError("boom")))
    body = json.dumps({"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [1], "data": [1.0]}]}).encode()
    with caplog.at_level(logging.ERROR, logger="pytriton_lite.http"):
        sent = _asgi(app, "POST", "/v2/models/m/infer", body=body)
    assert [m["status"] for m in _starts(sent)] == [500]
    assert json.loads(sent[-1]["body"]) == {"error": "RuntimeError: boom"}
    assert len([r for r in caplog.records if r.name == "pytriton_lite.http"]) == 1


def test_own_answers_go_through_the_boundary_with_their_headers():
    from pytriton_lite.frontends.http import HttpApp

    app = HttpApp(_PlaneForBoundary(), restricted_api="health:k=v")
    cases = [
        (("GET", "/nowhere"), {}, 404, "Not Found"),
        (("POST", "/v2/health/live"), {}, 405, "Method Not Allowed"),
        (("GET", "/v2/health/live"), {}, 403, "This API is restricted, expecting header 'k'"),
        (("POST", "/v2/models/m/infer"), {b"content-encoding": b"br"}, 501, "Unsupported compression type"),
    ]
    for (method, path), headers, status, message in cases:
        sent = _asgi(app, method, path, headers=headers.items())
        (start,) = _starts(sent)
        assert (start["status"], json.loads(sent[-1]["body"])) == (status, {"error": message})
        assert ((b"accept-encoding", b"gzip, deflate") in start["headers"]) == (status == 501)


def test_restricted_api_value_may_contain_a_colon():
    from pytriton_lite.frontends.http import HttpApp

    # before: "Invalid http restricted api specification" (the groups ended at the last ':')
    app = HttpApp(_PlaneForBoundary(), restricted_api="health:k=a:b")
    assert _starts(_asgi(app, "GET", "/v2/health/live"))[0]["status"] == 403
    assert _starts(_asgi(app, "GET", "/v2/health/live", headers=[(b"k", b"a:b")]))[0]["status"] == 200


def test_generate_stream_first_response_error_is_an_sse_event_with_the_models_message(triton_server):
    """A model that fails before its first response: Triton streams the error as an event under the 200,
    carrying the exception's own message (no ``RuntimeError:`` prefix)."""
    triton = triton_server()
    _bind_streamer(triton, fail_after=0)
    with httpx.Client(base_url=triton.http_url, timeout=WAIT_S) as raw:
        with raw.stream("POST", "/v2/models/streamer/generate_stream", json={"COUNT": 3}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            events = _events(response)
        assert events == [{"error": "An Error Occurred"}]
        response = raw.post("/v2/models/streamer/generate_stream", json={"COUNT": "x"})
        assert response.status_code == 400  # a request error before the model runs stays a plain JSON error
        assert raw.get("/v2/health/live").status_code == 200
