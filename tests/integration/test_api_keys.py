"""API keys (TritonSecurityConfig.api_keys): checked on HTTP, gRPC and metrics; sent by every client.

Servers on 127.0.0.1, driven with tritonclient, raw HTTP (urllib) and the pytriton_lite clients.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Dict, Optional, Tuple

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.client import (
    AsyncioDecoupledModelClient,
    AsyncioModelClient,
    DecoupledModelClient,
    FuturesModelClient,
    ModelClient,
)
from pytriton_lite.client.exceptions import PyTritonClientError
from pytriton_lite.exceptions import PyTritonValidationError
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import TRITON_ACCESS_HEADER, TritonSecurityConfig

FP32 = np.float32
IN = [Tensor(name="x", shape=(-1,), dtype=FP32)]
OUT = [Tensor(name="y", shape=(-1,), dtype=FP32)]
KEYS = ["key-one-0123456789", "key-two-9876543210"]


def identity(requests):
    return [{"y": r["x"]} for r in requests]


def stream(requests):
    for i in range(2):
        yield [{"y": r["x"] + i} for r in requests]


def _server(triton_server, **security):
    security.setdefault("restricted_endpoints", [])
    triton = triton_server(security_config=TritonSecurityConfig(**security))
    triton.bind("m", identity, IN, OUT, config=ModelConfig(max_batch_size=4))
    triton.bind("gen", stream, IN, OUT, config=ModelConfig(decoupled=True, batching=False))
    return triton


def _http(url: str, path: str, headers: Optional[Dict[str, str]] = None, body: Optional[bytes] = None):
    """(status, headers, body) of one raw HTTP request."""
    request = urllib.request.Request(url + path, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


INFER = json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}).encode()


def test_http_missing_key_is_401_with_www_authenticate_and_a_wrong_one_403(triton_server):
    triton = _server(triton_server, api_keys=KEYS)
    url = triton.http_url
    status, headers, body = _http(url, "/v2/models/m/infer", body=INFER)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="pytriton_lite"'
    assert "API key required" in json.loads(body)["error"]
    status, headers, body = _http(url, "/v2/models/m/infer", {"Authorization": "Bearer nope"}, INFER)
    assert (status, json.loads(body)) == (403, {"error": "Invalid API key"})
    assert "WWW-Authenticate" not in headers
    assert _http(url, "/v2/models/m/infer", {"X-API-Key": "nope"}, INFER)[0] == 403
    assert _http(url, "/v2/models/m/infer", {"Authorization": "Basic a2V5"}, INFER)[0] == 401  # not a bearer key
    for headers_ok in ({"Authorization": f"Bearer {KEYS[0]}"}, {"authorization": f"bearer {KEYS[1]}"}):
        status, _, body = _http(url, "/v2/models/m/infer", headers_ok, INFER)
        assert status == 200 and json.loads(body)["outputs"][0]["data"] == [1.0, 2.0]
    assert _http(url, "/v2/models/m/infer", {"X-API-Key": KEYS[1]}, INFER)[0] == 200
    # one good key among wrong ones admits the request
    both = {"X-API-Key": "nope", "Authorization": f"Bearer {KEYS[0]}"}
    assert _http(url, "/v2/models/m/infer", both, INFER)[0] == 200
    # every group but health by default
    assert _http(url, "/v2/health/ready")[0] == 200
    assert _http(url, "/v2/models/m/ready")[0] == 200
    for path in ("/v2", "/v2/models/m", "/v2/models/m/config", "/v2/models/stats"):
        assert _http(url, path)[0] == 401, path
        assert _http(url, path, {"X-API-Key": KEYS[0]})[0] == 200, path
    assert _http(url, "/v2/repository/index", body=b"{}")[0] == 401
    assert _http(triton.metrics_url, "/metrics")[0] == 200  # the metrics port only when asked


def test_grpc_missing_key_is_unauthenticated_and_a_wrong_one_permission_denied(triton_server):
    triton = _server(triton_server, api_keys=KEYS)
    client = grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])
    data = np.ones((1, 2), FP32)
    inputs = [grpcclient.InferInput("x", list(data.shape), "FP32")]
    inputs[0].set_data_from_numpy(data)
    with pytest.raises(InferenceServerException) as missing:
        client.infer("m", inputs)
    assert missing.value.status() == "StatusCode.UNAUTHENTICATED"
    assert "API key required" in missing.value.message()
    for headers in ({"authorization": "Bearer nope"}, {"x-api-key": "nope"}):
        with pytest.raises(InferenceServerException) as wrong:
            client.infer("m", inputs, headers=headers)
        assert wrong.value.status() == "StatusCode.PERMISSION_DENIED"
    for headers in ({"authorization": f"Bearer {KEYS[0]}"}, {"x-api-key": KEYS[1]}):
        assert client.infer("m", inputs, headers=headers).as_numpy("y").tolist() == [[1.0, 1.0]]
    assert client.is_server_live() and client.is_model_ready("m")  # health stays open
    with pytest.raises(InferenceServerException, match="API key required"):
        client.get_model_metadata("m")
    client.close()


def test_grpc_unauthenticated_carries_www_authenticate_in_trailing_metadata(triton_server):
    triton = _server(triton_server, api_keys=KEYS)
    with grpc.insecure_channel(triton.grpc_url[len("grpc://") :]) as channel:
        from tritonclient.grpc import service_pb2, service_pb2_grpc

        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ServerMetadata(service_pb2.ServerMetadataRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert ("www-authenticate", 'Bearer realm="pytriton_lite"') in tuple(refused.value.trailing_metadata())
        reply = stub.ServerMetadata(
            service_pb2.ServerMetadataRequest(), metadata=(("authorization", f"Bearer {KEYS[0]}"),), timeout=10
        )
        assert reply.name


def test_health_and_metrics_are_guarded_when_asked(triton_server):
    triton = _server(triton_server, api_keys=KEYS[:1], api_key_groups=["inference", "health", "metrics"])
    assert _http(triton.http_url, "/v2/health/live")[0] == 401
    assert _http(triton.http_url, "/v2/health/live", {"X-API-Key": KEYS[0]})[0] == 200
    assert _http(triton.http_url, "/v2")[0] == 200  # metadata not in the chosen groups
    status, headers, _ = _http(triton.metrics_url, "/metrics")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert _http(triton.metrics_url, "/metrics", {"Authorization": "Bearer wrong"})[0] == 403
    status, _, body = _http(triton.metrics_url, "/metrics", {"Authorization": f"Bearer {KEYS[0]}"})
    assert status == 200 and b"nv_inference_count" in body
    client = grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])
    with pytest.raises(InferenceServerException, match="API key required"):
        client.is_server_live()
    assert client.is_server_live(headers={"x-api-key": KEYS[0]})
    client.close()


def test_keys_from_an_environment_variable_and_a_file_with_a_custom_header(triton_server, monkeypatch, tmp_path):
    monkeypatch.setenv("TEST_PYTRITON_API_KEYS", "env-key-1, env-key-2")
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# one key per line\nfile-key-1\n\n  file-key-2  \n")
    triton = _server(
        triton_server, api_keys_env="TEST_PYTRITON_API_KEYS", api_keys_file=key_file, api_key_header="X-Token"
    )
    url = triton.http_url
    for key in ("env-key-1", "env-key-2", "file-key-1", "file-key-2"):
        assert _http(url, "/v2", {"X-Token": key})[0] == 200, key
        assert _http(url, "/v2", {"Authorization": f"Bearer {key}"})[0] == 200, key
    assert _http(url, "/v2", {"X-API-Key": "env-key-1"})[0] == 401  # the default header is not this server's
    assert "'x-token: <key>'" in json.loads(_http(url, "/v2")[2])["error"]  # the refusal names the header


def test_key_and_token_are_both_needed_where_both_apply(triton_server):
    triton = _server(triton_server, api_keys=KEYS, restricted_endpoints=None, access_token="tok")
    url = triton.http_url
    assert _http(url, "/v2/models/stats")[0] == 401
    assert _http(url, "/v2/models/stats", {"X-API-Key": KEYS[0]})[0] == 403  # the token is missing
    assert _http(url, "/v2/models/stats", {TRITON_ACCESS_HEADER: "tok"})[0] == 401  # the key is missing
    assert _http(url, "/v2/models/stats", {TRITON_ACCESS_HEADER: "tok", "X-API-Key": KEYS[0]})[0] == 200
    with ModelClient(url, "m", api_key=KEYS[0], access_token="tok") as client:
        assert client.infer_sample(np.ones(2, FP32))["y"].tolist() == [1.0, 1.0]
        stats = httpclient.InferenceServerClient(url[len("http://") :])
        headers = {TRITON_ACCESS_HEADER: "tok", "Authorization": f"Bearer {KEYS[1]}"}
        assert stats.get_inference_statistics("m", headers=headers)["model_stats"][0]["name"] == "m"
        stats.close()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_model_clients_send_the_key(triton_server, protocol):
    triton = _server(triton_server, api_keys=KEYS)
    url = triton.http_url if protocol == "http" else triton.grpc_url
    sample = np.array([1.0, 2.0], FP32)
    with ModelClient(url, "m", api_key=KEYS[0], init_timeout_s=10) as client:
        assert client.infer_sample(sample)["y"].tolist() == [1.0, 2.0]
        with ModelClient.from_existing_client(client) as copy:  # the key travels with the copy
            assert copy.infer_batch(sample[None])["y"].tolist() == [[1.0, 2.0]]
    with FuturesModelClient(url, "m", api_key=KEYS[1], max_workers=2) as futures:
        assert futures.infer_sample(sample).result(timeout=30)["y"].tolist() == [1.0, 2.0]

    async def use_asyncio() -> Tuple[list, ...]:
        async with AsyncioModelClient(url, "m", api_key=KEYS[0], init_timeout_s=10) as client:
            return ((await client.infer_sample(sample))["y"].tolist(),)

    assert asyncio.run(asyncio.wait_for(use_asyncio(), 60)) == ([1.0, 2.0],)
    with ModelClient(url, "m", api_key="wrong", init_timeout_s=2) as client:
        with pytest.raises(PyTritonClientError, match="Invalid API key"):
            client.infer_sample(sample)


def test_decoupled_clients_send_the_key(triton_server):
    triton = _server(triton_server, api_keys=KEYS)
    sample = np.array([1.0], FP32)
    with DecoupledModelClient(triton.grpc_url, "gen", api_key=KEYS[0], init_timeout_s=10) as client:
        assert [r["y"].tolist() for r in client.infer_sample(sample)] == [[1.0], [2.0]]

    async def use() -> list:
        async with AsyncioDecoupledModelClient(triton.grpc_url, "gen", api_key=KEYS[1], init_timeout_s=10) as client:
            return [r["y"].tolist() async for r in client.infer_sample(sample)]

    assert asyncio.run(asyncio.wait_for(use(), 60)) == [[1.0], [2.0]]
    # the stream RPC is guarded too: the call ends at once with UNAUTHENTICATED, reported to the callback
    grpc_client = grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])
    errors: list = []
    try:
        grpc_client.start_stream(callback=lambda result, error: errors.append(error))
        inputs = [grpcclient.InferInput("x", [1], "FP32")]
        inputs[0].set_data_from_numpy(sample)
        try:
            grpc_client.async_stream_infer("gen", inputs)
        except InferenceServerException:
            pass  # the refusal may already have ended the stream
        grpc_client.stop_stream()
    finally:
        grpc_client.close()
    assert errors and "API key required" in str(errors[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_keys": []}, "api_keys is empty"),
        ({"api_keys": ["has space"]}, "character a header cannot carry"),
        ({"api_keys": ["a,b"]}, "character a header cannot carry"),
        ({"api_keys": [""]}, "is empty"),
        ({"api_keys_env": "TEST_PYTRITON_UNSET_VARIABLE"}, "is not set or holds no key"),
        ({"api_keys": ["k"], "api_key_groups": ["inference", "nope"]}, "Invalid api_key_groups: nope"),
        ({"api_keys": ["k"], "api_key_header": "Authorization"}, "Invalid api_key_header"),
        ({"api_keys": ["k"], "api_key_header": "bad header"}, "Invalid api_key_header"),
    ],
)
def test_bad_key_settings_are_refused_at_construction(kwargs, message, monkeypatch):
    monkeypatch.delenv("TEST_PYTRITON_UNSET_VARIABLE", raising=False)
    with pytest.raises(PyTritonValidationError, match=message):
        TritonSecurityConfig(**kwargs)


def test_a_missing_or_empty_key_file_is_refused_and_keys_never_show(tmp_path):
    with pytest.raises(PyTritonValidationError, match="cannot read"):
        TritonSecurityConfig(api_keys_file=tmp_path / "absent.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n")
    with pytest.raises(PyTritonValidationError, match="holds no key"):
        TritonSecurityConfig(api_keys_file=empty)
    with pytest.raises(PyTritonValidationError) as refused:
        TritonSecurityConfig(api_keys=["good-key", "bad key-s3cret"])
    assert "s3cret" not in str(refused.value)
    security = TritonSecurityConfig(api_keys=["visible-s3cret"])
    assert "visible-s3cret" not in repr(security)
    assert "visible-s3cret" not in repr(security.read_api_keys())


def test_clients_refuse_an_empty_key():
    for make in (
        lambda: ModelClient("http://127.0.0.1:1", "m", api_key=""),
        lambda: AsyncioModelClient("grpc://127.0.0.1:1", "m", api_key=""),
        lambda: FuturesModelClient("http://127.0.0.1:1", "m", api_key=""),
    ):
        with pytest.raises(ValueError, match="api_key cannot be None or empty"):
            make()


# --- the serve CLI: open by default as tritonserver, keys and restricted APIs on request ------------------


def _serve(tmp_path, *flags: str, env: Optional[Dict[str, str]] = None):
    """Start ``python -m pytriton_lite serve`` on an empty repository; return (process, http url, stderr lines)."""
    import os
    import subprocess
    import sys
    import time

    (tmp_path / "repo").mkdir(exist_ok=True)
    command = [sys.executable, "-m", "pytriton_lite", "serve", f"--model-repository={tmp_path / 'repo'}"]
    command += ["--http-port=0", "--grpc-port=0", "--metrics-port=0", "--allow-grpc=false", "--allow-metrics=false"]
    command += ["--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1", *flags]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL
    )
    lines, url, deadline = [], None, time.monotonic() + 60
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Started HTTPService at "):
            url = "http://" + line.split(" at ")[1].strip()
        if line.startswith("Auth:"):
            return process, url, lines
    process.kill()
    process.communicate(timeout=10)
    raise AssertionError("serve did not start: " + "\n".join(lines))


def _stop(process) -> None:
    import signal

    process.send_signal(signal.SIGINT)
    try:
        process.communicate(timeout=30)  # drains and closes stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_serve_cli_is_open_by_default_and_says_so(tmp_path):
    process, url, lines = _serve(tmp_path)
    try:
        assert lines[-1] == "Auth: off, every endpoint is open"
        assert _http(url, "/v2/repository/index", body=b"{}")[0] == 200  # tritonserver restricts nothing
        assert _http(url, "/v2/models/stats")[0] == 200
    finally:
        _stop(process)


def test_serve_cli_takes_api_keys_and_restricted_api_flags(tmp_path):
    flags = ("--api-keys-env=TEST_CLI_KEYS", "--http-restricted-api=model-repository:admin-key=s3cret")
    process, url, lines = _serve(tmp_path, *flags, env={"TEST_CLI_KEYS": "cli-key"})
    try:
        assert lines[-1].startswith("Auth: on; API keys required on inference,")
        assert lines[-1].endswith("; HTTP restricted API: model-repository")
        assert "cli-key" not in "\n".join(lines) and "s3cret" not in "\n".join(lines)
        assert _http(url, "/v2")[0] == 401
        assert _http(url, "/v2", {"Authorization": "Bearer cli-key"})[0] == 200
        assert _http(url, "/v2/health/ready")[0] == 200
        index = "/v2/repository/index"
        assert _http(url, index, {"X-API-Key": "cli-key"}, b"{}")[0] == 403
        assert _http(url, index, {"X-API-Key": "cli-key", "admin-key": "s3cret"}, b"{}")[0] == 200
    finally:
        _stop(process)
