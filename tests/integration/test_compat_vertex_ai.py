"""Vertex AI mode (issue 11): PyTriton's ``allow_vertex_ai`` serves Triton's prediction and health routes on
their own port; SageMaker is refused at construction rather than accepted with nothing listening."""

from __future__ import annotations

import http.client
import json
from typing import Dict, Optional, Tuple

import numpy as np
import pytest
import tritonclient.http as httpclient

from pytriton_lite.config import VertextAILifecyclePolicy
from pytriton_lite.decorators import batch
from pytriton_lite.exceptions import PyTritonError, PyTritonValidationError
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.testing import loopback_config
from pytriton_lite.triton import Triton, TritonConfig

BINARY = "application/vnd.vertex-ai-triton.binary+json;json-header-size="


@batch
def add_sub(INPUT_1, INPUT_2):
    return {"add": INPUT_1 + INPUT_2, "sub": INPUT_1 - INPUT_2}


def _bind(triton: Triton, name: str = "AddSub") -> None:
    triton.bind(
        name,
        add_sub,
        inputs=[Tensor(dtype=np.float32, shape=(-1,))] * 2,
        outputs=[Tensor(name="add", dtype=np.float32, shape=(-1,)), Tensor(name="sub", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(max_batch_size=8),
        strict=True,
    )


def _request(
    port: int, method: str, path: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None
) -> Tuple[int, Dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _json_body(binary_input: bool = False, binary_output: bool = False) -> Tuple[bytes, Optional[int]]:
    a = np.array([[1, 2, 3, 4]], np.float32)
    inputs = []
    for name in ("INPUT_1", "INPUT_2"):
        inp = httpclient.InferInput(name, list(a.shape), "FP32")
        inp.set_data_from_numpy(a, binary_data=binary_input and name == "INPUT_1")
        inputs.append(inp)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary_output) for n in ("add", "sub")]
    body, header_length = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
    return body, header_length


@pytest.fixture
def vertex_env(monkeypatch):
    monkeypatch.setenv("AIP_MODE", "PREDICTION")
    monkeypatch.setenv("AIP_PREDICT_ROUTE", "/v2/models/AddSub/infer")  # PyTriton's example routes
    monkeypatch.setenv("AIP_HEALTH_ROUTE", "/v2/health/ready")
    monkeypatch.delenv("AIP_HTTP_PORT", raising=False)


def test_pytriton_vertex_example_flow_predicts_and_answers_health(vertex_env):
    config = loopback_config(TritonConfig(allow_http=True, allow_vertex_ai=True, vertex_ai_port=0))
    with Triton(config=config) as triton:  # the Vertex AI policy: nothing listens until serve()/run()
        assert triton._policy == VertextAILifecyclePolicy and triton.vertex_ai_port is None
        _bind(triton)
        triton.run()
        port = triton.vertex_ai_port
        assert port and port != triton.http_port
        status, _, body = _request(port, "GET", "/v2/health/ready")
        assert status == 200 and body == b""
        # the curl of infer_vertex_ai_endpoint.sh: PyTriton's data.json
        data = {
            "id": "0",
            "inputs": [
                {"name": n, "shape": [1, 4], "datatype": "FP32", "parameters": {}, "data": [[1, 2, 3, 4]]}
                for n in ("INPUT_1", "INPUT_2")
            ],
        }
        status, headers, body = _request(
            port, "POST", "/v2/models/AddSub/infer", json.dumps(data).encode(), {"Content-Type": "application/json"}
        )
        assert status == 200, body
        answer = json.loads(body)
        assert answer["id"] == "0" and answer["model_name"] == "AddSub"
        outputs = {o["name"]: o["data"] for o in answer["outputs"]}
        assert outputs == {"add": [2.0, 4.0, 6.0, 8.0], "sub": [0.0, 0.0, 0.0, 0.0]}
        status, _, body = _request(port, "GET", "/v2/models/AddSub/config")  # only the two routes
        assert status == 404 and json.loads(body) == {"error": "Not Found"}


def test_default_model_binary_content_type_and_redirect(monkeypatch):
    monkeypatch.setenv("AIP_PREDICT_ROUTE", "/predict")
    monkeypatch.setenv("AIP_HEALTH_ROUTE", "/health")
    config = loopback_config(TritonConfig(allow_vertex_ai=True, vertex_ai_port=0, allow_grpc=False))
    triton = Triton(config=config, triton_lifecycle_policy=None)
    _bind(triton)
    triton.run()
    try:
        port = triton.vertex_ai_port
        assert port is not None
        body, header_length = _json_body(binary_input=True)
        status, _, raw = _request(port, "POST", "/predict", body, {"Content-Type": f"{BINARY}{header_length}"})
        assert status == 200, raw
        result = httpclient.InferenceServerClient.parse_response_body(raw)
        assert result.as_numpy("add").tolist() == [[2.0, 4.0, 6.0, 8.0]]
        body, _ = _json_body(binary_output=True)
        status, headers, raw = _request(port, "POST", "/predict", body, {"Content-Type": "application/json"})
        assert status == 200
        result = httpclient.InferenceServerClient.parse_response_body(
            raw, header_length=int(headers["inference-header-content-length"])
        )
        assert result.as_numpy("add").tolist() == [[2.0, 4.0, 6.0, 8.0]]
        for bad in (
            "additional-string/" + BINARY + str(header_length),
            BINARY + "x12",
            BINARY + "-123",
            BINARY + "12345",
        ):
            body, header_length = _json_body(binary_input=True)
            status, _, raw = _request(port, "POST", "/predict", body, {"Content-Type": bad})
            assert status == 400 and "error" in json.loads(raw), bad
        _bind(triton, "Other")  # two models now: the default is ambiguous unless a redirect names one
        body, _ = _json_body()
        status, _, raw = _request(port, "POST", "/predict", body, {"Content-Type": "application/json"})
        assert status == 400 and "only a single model if default model is not specified" in json.loads(raw)["error"]
        redirect = {"Content-Type": "application/json", "X-Vertex-Ai-Triton-Redirect": "v2/models/Other/infer"}
        status, _, raw = _request(port, "POST", "/predict", body, redirect)
        assert status == 200 and json.loads(raw)["model_name"] == "Other"
        status, _, raw = _request(
            port, "POST", "/predict", b"", {"X-Vertex-Ai-Triton-Redirect": "v2/models/Other/ready"}
        )
        assert status == 405  # the redirected route's own answer: /ready is a GET
        status, _, _ = _request(port, "GET", "/health")
        assert status == 200
        # a redirect passes the same access checks as the HTTP port (model-repository is token-protected)
        index = {"X-Vertex-Ai-Triton-Redirect": "v2/repository/index"}
        status, _, raw = _request(port, "POST", "/predict", b"{}", index)
        assert status == 403 and "triton-access-token" in json.loads(raw)["error"]
        token = {**index, "triton-access-token": triton.get_access_token() or ""}
        status, _, raw = _request(port, "POST", "/predict", b"{}", token)
        assert status == 200 and {m["name"] for m in json.loads(raw)} == {"AddSub", "Other"}
    finally:
        triton.stop()
    assert triton.vertex_ai_port is None or not _port_open(triton.vertex_ai_port)


def test_vertex_default_model_setting_and_missing_routes_fail_the_start(monkeypatch):
    monkeypatch.delenv("AIP_PREDICT_ROUTE", raising=False)
    monkeypatch.setenv("AIP_HEALTH_ROUTE", "/health")
    triton = Triton(config=loopback_config(TritonConfig(allow_vertex_ai=True, vertex_ai_port=0)))
    with pytest.raises(PyTritonError, match="API_PREDICT_ROUTE is not defined for Vertex AI endpoint"):
        triton.run()
    monkeypatch.setenv("AIP_PREDICT_ROUTE", "/predict")
    config = TritonConfig(allow_vertex_ai=True, vertex_ai_port=0, vertex_ai_default_model="Second")
    triton = Triton(config=loopback_config(config))
    _bind(triton)
    _bind(triton, "Second")
    triton.run()
    try:
        body, _ = _json_body()
        status, _, raw = _request(triton.vertex_ai_port, "POST", "/predict", body, {"Content-Type": "application/json"})
        assert status == 200 and json.loads(raw)["model_name"] == "Second"
    finally:
        triton.stop()


def test_sagemaker_is_refused_at_construction(monkeypatch):
    with pytest.raises(PyTritonValidationError, match="allow_sagemaker is not supported"):
        Triton(config=TritonConfig(allow_sagemaker=True, sagemaker_port=8080))
    monkeypatch.setenv("PYTRITON_TRITON_CONFIG_ALLOW_SAGEMAKER", "true")
    with pytest.raises(PyTritonValidationError, match="nothing would listen on sagemaker_port"):
        Triton()


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0
