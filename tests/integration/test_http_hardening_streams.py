"""HTTP hardening (issue 10), the request's life: a client that leaves is never run, large bodies are decoded
off the serving loop, a stalled SSE reader makes the generator wait, and HTTPS (with mutual TLS) through
tritonclient. Loopback only; every loop bounded in count and time."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.testing import queue_state, wait_until

WAIT_S = 10.0


def _config(**fields) -> TritonConfig:
    return TritonConfig(allow_grpc=False, allow_metrics=False, **fields)


def _bind_gated(triton, calls, gate):
    """Identity that counts its calls and holds the first one until ``gate`` is set."""

    @batch
    def infer(INPUT):
        calls.append(INPUT.shape)
        if len(calls) == 1:
            gate.wait(WAIT_S)
        return {"OUTPUT": INPUT}

    triton.bind(
        "gated",
        infer,
        inputs=[Tensor(name="INPUT", shape=(-1,), dtype=np.float32)],
        outputs=[Tensor(name="OUTPUT", shape=(-1,), dtype=np.float32)],
        config=ModelConfig(max_batch_size=1),
    )


def _infer(port, data, model="gated", **client_kwargs):
    url = client_kwargs.pop("url", f"127.0.0.1:{port}")
    with httpclient.InferenceServerClient(url, network_timeout=WAIT_S, **client_kwargs) as client:
        tensor = httpclient.InferInput("INPUT", list(data.shape), "FP32")
        tensor.set_data_from_numpy(data, binary_data=False)
        return client.infer(model, [tensor]).as_numpy("OUTPUT")


@pytest.mark.parametrize("elements", [16, 1 << 16])  # a small body and one of ~400 KiB (> 64 KiB)
def test_a_request_whose_client_left_is_dropped_before_it_runs(triton_server, elements):
    calls, gate = [], threading.Event()
    triton = triton_server(_config())
    _bind_gated(triton, calls, gate)
    first = threading.Thread(target=_infer, args=(triton.http_port, np.ones((1, 2), np.float32)))
    first.start()
    try:
        wait_until(lambda: len(calls) == 1, WAIT_S)  # the one instance is busy
        body = json.dumps(
            {"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [1, elements], "data": [1.0] * elements}]}
        ).encode()
        head = b"POST /v2/models/gated/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        with socket.create_connection(("127.0.0.1", triton.http_port), timeout=WAIT_S) as sock:
            sock.sendall(head + body)
            wait_until(lambda: queue_state(triton, "gated").queued == 1, WAIT_S)
        # the server sees the close while the request waits, whatever the body's size
        wait_until(lambda: queue_state(triton, "gated").abandoned == 1, WAIT_S)
    finally:
        gate.set()
        first.join(WAIT_S)
    wait_until(lambda: queue_state(triton, "gated").queued == 0, WAIT_S)
    assert len(calls) == 1  # the departed client's request never ran
    np.testing.assert_array_equal(_infer(triton.http_port, np.ones((1, 3), np.float32)), np.ones((1, 3)))


@pytest.mark.in_process  # the codec threads live in the workers then
def test_large_bodies_are_decoded_and_answered_off_the_loop(triton_server):
    calls, gate = [], threading.Event()
    gate.set()
    triton = triton_server(_config(http_offload_bytes=64 * 1024))
    _bind_gated(triton, calls, gate)
    data = np.arange(1 << 17, dtype=np.float32).reshape(1, -1)  # ~1.5 MiB of JSON each way
    np.testing.assert_array_equal(_infer(triton.http_port, data), data)
    assert any(t.name.startswith("pytriton_lite-http-codec") for t in threading.enumerate())
    small = np.ones((1, 2), np.float32)
    np.testing.assert_array_equal(_infer(triton.http_port, small), small)


def _bind_flood(triton, produced, closed):
    """Decoupled: yields up to 3,000 responses of 64 KiB each, counting them."""

    def infer(requests):
        try:
            for _ in range(3000):
                produced.append(1)
                yield [{"TEXT": np.array([b"x" * 65536], dtype=object)}]
        finally:
            closed.set()

    triton.bind(
        "flood",
        infer,
        inputs=[Tensor(name="COUNT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="TEXT", shape=(1,), dtype=bytes)],
        config=ModelConfig(batching=False, decoupled=True),
    )


def test_a_stalled_sse_reader_makes_the_generator_wait(triton_server):
    produced, closed = [], threading.Event()
    triton = triton_server(_config())
    _bind_flood(triton, produced, closed)
    body = b'{"COUNT": 1}'
    request = b"POST /v2/models/flood/generate_stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(WAIT_S)
    try:
        sock.connect(("127.0.0.1", triton.http_port))
        sock.sendall(request + body)
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        wait_until(lambda: len(produced) > 10, WAIT_S)
        # the reader stalls: production stops at a bound (socket buffers + the core's window), not at 3,000
        previous, deadline = -1, time.monotonic() + WAIT_S
        while len(produced) != previous and time.monotonic() < deadline:
            previous = len(produced)
            time.sleep(0.5)
        assert len(produced) == previous < 500
    finally:
        sock.close()
    assert closed.wait(WAIT_S)  # the client left: the generator was closed
    assert len(produced) < 500


# --- TLS -----------------------------------------------------------------------------------------------


def _self_signed(directory, name):
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@needs_openssl
def test_https_with_a_self_signed_certificate(triton_server, tmp_path):
    cert, key = _self_signed(tmp_path, "server")
    calls, gate = [], threading.Event()
    gate.set()
    triton = triton_server(_config(http_ssl_cert=cert, http_ssl_key=key))
    _bind_gated(triton, calls, gate)
    data = np.ones((1, 4), np.float32)
    got = _infer(triton.http_port, data, ssl=True, ssl_options={"ca_certs": str(cert)})
    np.testing.assert_array_equal(got, data)
    with socket.create_connection(("127.0.0.1", triton.http_port), timeout=WAIT_S) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on the TLS port
        try:
            answer = sock.recv(1024)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"HTTP/1.1 200")


@needs_openssl
def test_mutual_tls_requires_a_client_certificate(triton_server, tmp_path):
    cert, key = _self_signed(tmp_path, "server")
    client_cert, client_key = _self_signed(tmp_path, "client")
    calls, gate = [], threading.Event()
    gate.set()
    triton = triton_server(_config(http_ssl_cert=cert, http_ssl_key=key, http_ssl_root_cert=client_cert))
    _bind_gated(triton, calls, gate)
    data = np.ones((1, 4), np.float32)
    with pytest.raises((InferenceServerException, OSError, http.client.HTTPException)):  # refused handshake
        _infer(triton.http_port, data, ssl=True, ssl_options={"ca_certs": str(cert)})
    options = {"ca_certs": str(cert), "certfile": str(client_cert), "keyfile": str(client_key)}
    np.testing.assert_array_equal(_infer(triton.http_port, data, ssl=True, ssl_options=options), data)
    assert len(calls) == 1


def test_tls_options_are_checked_at_start(tmp_path):
    from pytriton_lite.frontends.http import HttpFrontend

    with pytest.raises(ValueError, match="needs both http_ssl_cert and http_ssl_key"):
        HttpFrontend.from_triton_config(object(), _config(http_ssl_cert=tmp_path / "x.pem"))
    with pytest.raises(ValueError, match="is not a readable file"):
        HttpFrontend.from_triton_config(object(), _config(http_ssl_cert=tmp_path / "x", http_ssl_key=tmp_path / "y"))
