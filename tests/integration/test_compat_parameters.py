"""Reserved names in forwarded headers are refused as Triton does (issue 11): 400 / INVALID_ARGUMENT, and the
model never sees them. Request parameters with those names are Triton's own (consumed, or refused for
``triton_*``), which the codec tests cover; ``triton_grpc_error`` stays the gRPC option it is."""

from __future__ import annotations

import http.client
import json
import queue
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.protocol.reserved import RESERVED_PARAMETERS
from pytriton_lite.testing import running_triton
from pytriton_lite.triton import TritonConfig

RESERVED_HEADERS = sorted(RESERVED_PARAMETERS) + ["triton_injected_via_header", "Triton_Upper"]
BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]}).encode()


@pytest.fixture(scope="module")
def server():
    seen: List[Dict[str, Any]] = []

    def echo_params(requests):
        seen.extend(dict(r.parameters) for r in requests)
        return [{"y": r["x"]} for r in requests]

    config = TritonConfig(http_header_forward_pattern=".*", grpc_header_forward_pattern=".*", allow_metrics=False)
    with running_triton(config) as triton:
        spec = [Tensor(name="x", shape=(-1,), dtype=np.float32)], [Tensor(name="y", shape=(-1,), dtype=np.float32)]
        triton.bind("m", echo_params, *spec, config=ModelConfig(max_batch_size=4))
        yield triton, seen


def _raw_post(port: int, headers: Dict[str, str]) -> Tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v2/models/m/infer", BODY, {"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("name", RESERVED_HEADERS)
def test_a_forwarded_reserved_header_is_a_400_and_never_reaches_the_model(server, name):
    triton, seen = server
    seen.clear()
    status, raw = _raw_post(triton.http_port, {name: "dummy-value"})
    body = json.loads(raw)
    assert status == 400
    assert "reserved for Triton usage" in body["error"] and name.lower() in body["error"]
    assert seen == []
    status, raw = _raw_post(triton.http_port, {"my_header": "v"})  # the server keeps serving; plain headers pass
    assert status == 200 and raw
    assert seen and seen[-1]["my_header"] == "v"


def _grpc_input() -> grpcclient.InferInput:
    inp = grpcclient.InferInput("x", [1, 1], "FP32")
    inp.set_data_from_numpy(np.ones((1, 1), np.float32))
    return inp


@pytest.mark.parametrize("name", ["sequence_id", "priority", "timeout", "headers", "triton_injected_via_header"])
def test_tritonclient_headers_with_reserved_names_are_refused_over_both_protocols(server, name):
    triton, seen = server
    seen.clear()
    hclient = httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}", network_timeout=30)
    gclient = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}")
    try:
        hin = httpclient.InferInput("x", [1, 1], "FP32")
        hin.set_data_from_numpy(np.ones((1, 1), np.float32))
        with pytest.raises(InferenceServerException, match="reserved for Triton usage") as http_error:
            hclient.infer("m", [hin], headers={name: "dummy-value"})
        assert http_error.value.status() == "400"
        with pytest.raises(InferenceServerException, match="reserved for Triton usage") as grpc_error:
            gclient.infer("m", [_grpc_input()], headers={name: "dummy-value"}, client_timeout=30)
        assert grpc_error.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert seen == []
        result = gclient.infer("m", [_grpc_input()], headers={"my_header": "g"}, client_timeout=30)
        assert result.as_numpy("y").tolist() == [[1.0]] and seen[-1]["my_header"] == "g"
    finally:
        hclient.close()
        gclient.close()


def test_a_stream_with_a_reserved_header_is_refused_and_triton_grpc_error_is_not_a_parameter(server):
    triton, seen = server
    seen.clear()
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}")
    results: queue.Queue[Any] = queue.Queue()
    try:
        client.start_stream(callback=lambda result, error: results.put(error or result), headers={"priority": "1"})
        try:
            client.async_stream_infer("m", [_grpc_input()])
        except InferenceServerException:
            pass  # the call may already have ended with the refusal: the callback has the reason
        error = results.get(timeout=30)
        assert isinstance(error, InferenceServerException) and "reserved for Triton usage" in str(error)
        client.stop_stream()
        # triton_grpc_error is Triton's stream option: matched by ".*", still not refused nor forwarded
        client.start_stream(
            callback=lambda result, error: results.put(error or result), headers={"triton_grpc_error": "true"}
        )
        client.async_stream_infer("m", [_grpc_input()])
        result = results.get(timeout=30)
        assert not isinstance(result, InferenceServerException), result
        assert result.as_numpy("y").tolist() == [[1.0]]
        assert seen and "triton_grpc_error" not in seen[-1]
    finally:
        client.stop_stream()
        client.close()
