"""HTTP hardening (issue 10): idle and slow connections, the connection cap, sizes checked before data is
read, and the framing the server refuses. Raw sockets and tritonclient against a loopback server; every
loop is bounded in count and time."""

from __future__ import annotations

import gzip
import json
import socket
import time

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor

WAIT_S = 10.0  # bound on every wait for an answer or a close


class Calls:
    def __init__(self):
        self.count = 0


def _bind_identity(triton, calls=None):
    @batch
    def infer(INPUT):
        if calls is not None:
            calls.count += 1
        return {"OUTPUT": INPUT}

    triton.bind(
        "identity",
        infer,
        inputs=[Tensor(name="INPUT", shape=(-1,), dtype=np.float32)],
        outputs=[Tensor(name="OUTPUT", shape=(-1,), dtype=np.float32)],
        config=ModelConfig(max_batch_size=8),
    )


def _server(triton_server, calls=None, **fields):
    triton = triton_server(TritonConfig(allow_grpc=False, allow_metrics=False, **fields))
    _bind_identity(triton, calls)
    return triton


def _connect(triton) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", triton.http_port), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (bounded by the socket timeout)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _status_and_error(raw: bytes):
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"connection: close" in head.lower(), head
    return status, json.loads(body)["error"]


def _infer_ok(triton) -> None:
    """A well-behaved client is still served."""
    with httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}", network_timeout=WAIT_S) as client:
        data = np.arange(4, dtype=np.float32).reshape(1, 4)
        tensor = httpclient.InferInput("INPUT", [1, 4], "FP32")
        tensor.set_data_from_numpy(data)
        result = client.infer("identity", [tensor])
        np.testing.assert_array_equal(result.as_numpy("OUTPUT"), data)


def _infer_head(length: int, extra: bytes = b"") -> bytes:
    return (
        b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % length
    )


def _json_body(n: int) -> bytes:
    return json.dumps({"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [1, n], "data": [1.0] * n}]}).encode()


# --- connections ---------------------------------------------------------------------------------------


def test_idle_connections_are_closed_after_the_keepalive_timeout(triton_server):
    triton = _server(triton_server, http_keepalive_timeout_secs=0.5)
    sockets = [_connect(triton) for _ in range(20)]  # never send a byte
    try:
        started = time.monotonic()
        for sock in sockets:
            assert _read_all(sock) == b""  # closed by the server, without an answer
        assert time.monotonic() - started < WAIT_S
    finally:
        for sock in sockets:
            sock.close()
    _infer_ok(triton)


def test_a_head_sent_a_byte_at_a_time_is_cut_off(triton_server):
    triton = _server(triton_server, http_header_timeout_secs=1.0)
    head = _infer_head(10)
    with _connect(triton) as sock:
        started = time.monotonic()
        sent = 0
        for byte in head[:-4]:  # never completes the head; bounded by its length and the time
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            time.sleep(0.2)
            if time.monotonic() - started > 3.0:
                break
        status, error = _status_and_error(_read_all(sock))
    assert status == 408 and "request head not received within 1 s" in error
    assert sent < len(head) - 4
    _infer_ok(triton)


def test_a_body_that_trickles_is_cut_off(triton_server):
    calls = Calls()
    triton = _server(triton_server, calls, http_body_timeout_secs=1.0)
    body = _json_body(4)
    with _connect(triton) as sock:
        sock.sendall(_infer_head(len(body)))
        started = time.monotonic()
        for byte in body[:10]:
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.3)
            if time.monotonic() - started > 2.5:
                break
        status, error = _status_and_error(_read_all(sock))
    assert status == 408 and "request body not received within 1 s" in error
    assert calls.count == 0
    _infer_ok(triton)


def test_many_idle_sockets_do_not_lock_out_other_clients(triton_server):
    limit, opened = 50, 250
    triton = _server(triton_server, http_max_connections=limit, http_keepalive_timeout_secs=3.0)
    sockets = []
    try:
        for _ in range(opened):
            sockets.append(_connect(triton))
        # beyond the cap a connection is answered at once with 503 and closed
        refused = _read_all(sockets[-1])
        status, error = _status_and_error(refused)
        assert status == 503 and f"limit of {limit} open connections" in error
        with pytest.raises(InferenceServerException):
            _infer_ok(triton)  # the cap holds for everyone while the idle sockets are open
        # the idle ones are closed by the server after the keep-alive timeout; then others are served. Which
        # ones were taken is the kernel's choice when front-end workers split the cap, so they are counted
        started = time.monotonic()
        answers = [_read_all(sock) for sock in sockets[:-1]]
        assert sum(answer == b"" for answer in answers) == limit
        assert time.monotonic() - started < WAIT_S
    finally:
        for sock in sockets:
            sock.close()
    _infer_ok(triton)


# --- sizes ---------------------------------------------------------------------------------------------


def test_content_length_over_the_limit_is_refused_before_the_body(triton_server):
    calls = Calls()
    triton = _server(triton_server, calls, http_max_input_size=1 << 20)
    for expect in (b"", b"Expect: 100-continue\r\n"):
        with _connect(triton) as sock:
            sock.sendall(_infer_head(1 << 30, expect))  # 1 GiB announced, not a byte of it sent
            status, error = _status_and_error(_read_all(sock))
        assert status == 413
        assert error == (
            f"request body of {1 << 30} bytes exceeds the maximum allowed input size of {1 << 20} bytes "
            "(TritonConfig.http_max_input_size, --http-max-input-size)"
        )
    assert calls.count == 0
    _infer_ok(triton)


def test_a_chunked_body_is_cut_at_the_limit(triton_server):
    calls = Calls()
    triton = _server(triton_server, calls, http_max_input_size=1 << 20)
    head = b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n" % 65536 + b" " * 65536 + b"\r\n"
    with _connect(triton) as sock:
        sock.sendall(head)
        sent = 0
        for _ in range(64):  # 4 MiB at most; the server cuts at 1 MiB
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 65536
        status, error = _status_and_error(_read_all(sock))
    assert status == 413 and "chunked request body exceeds the maximum allowed input size of 1048576" in error
    assert calls.count == 0
    _infer_ok(triton)


def test_the_limit_covers_binary_tensors(triton_server):
    calls = Calls()
    triton = _server(triton_server, calls, http_max_input_size=1 << 20)
    with httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}", network_timeout=WAIT_S) as client:
        data = np.zeros((1, 1 << 19), dtype=np.float32)  # 2 MiB binary tensor
        tensor = httpclient.InferInput("INPUT", list(data.shape), "FP32")
        tensor.set_data_from_numpy(data, binary_data=True)
        with pytest.raises(InferenceServerException, match="exceeds the maximum allowed input size") as info:
            client.infer("identity", [tensor])
        assert info.value.status() == "413"
    assert calls.count == 0
    _infer_ok(triton)


@pytest.mark.parametrize("complete", [True, False])
def test_the_request_head_size_is_capped(triton_server, complete):
    triton = _server(triton_server, http_max_header_size=16 * 1024)
    with _connect(triton) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(64):  # 4 MiB at most; cut after 16 KiB and one read
            try:
                sock.sendall(b"a" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                break
            if complete:
                sock.sendall(b"\r\n\r\n")
                break
        status, error = _status_and_error(_read_all(sock))
    assert status == 431 and "request head exceeds the maximum allowed size of 16384 bytes" in error
    _infer_ok(triton)


def test_data_after_the_end_of_a_gzip_member_is_refused(triton_server):
    calls = Calls()
    triton = _server(triton_server, calls)
    body = gzip.compress(_json_body(4)) + b"trailing garbage"
    with _connect(triton) as sock:
        sock.sendall(_infer_head(len(body), b"Content-Encoding: gzip\r\nConnection: close\r\n") + body)
        head, _, payload = _read_all(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert "data after the end of the gzip stream" in json.loads(payload)["error"]
    assert calls.count == 0


# --- framing -------------------------------------------------------------------------------------------

FRAMINGS = [
    (b"Transfer-Encoding: gzip, chunked\r\n", 501, "Transfer-Encoding 'gzip' is not supported; only chunked is"),
    (b"Transfer-Encoding: gzip\r\n", 400, "Transfer-Encoding must end with chunked"),
    (b"Transfer-Encoding: chunked, chunked\r\n", 400, "Transfer-Encoding"),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400, "Content-Length"),
    (b"Transfer-Encoding: identity\r\n", 400, "Transfer-Encoding"),
]


@pytest.mark.parametrize(("header", "status", "text"), FRAMINGS)
def test_transfer_encodings_other_than_chunked_are_refused(triton_server, header, status, text):
    calls = Calls()
    triton = _server(triton_server, calls)
    body = _json_body(4)
    request = b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n"
    request += b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    with _connect(triton) as sock:
        sock.sendall(request)
        got_status, error = _status_and_error(_read_all(sock))
    assert got_status == status and text in error
    assert calls.count == 0
    _infer_ok(triton)


# --- configuration -------------------------------------------------------------------------------------


def test_limits_come_from_triton_config_and_its_environment(monkeypatch):
    from pytriton_lite.frontends._http_limits import HttpLimits, default_max_connections

    monkeypatch.setenv("PYTRITON_TRITON_CONFIG_HTTP_HEADER_TIMEOUT_SECS", "2.5")
    monkeypatch.setenv("PYTRITON_TRITON_CONFIG_HTTP_MAX_CONNECTIONS", "7")
    limits = HttpLimits.from_triton_config(TritonConfig.from_env())
    assert (limits.header_timeout_s, limits.max_connections) == (2.5, 7)
    defaults = HttpLimits.from_triton_config(TritonConfig())
    assert defaults.max_body_size == 1 << 26 and defaults.keepalive_timeout_s == 75.0
    assert defaults.max_connections == default_max_connections() <= 1000
    with pytest.raises(ValueError, match="header_timeout_s must be a positive number"):
        HttpLimits.from_triton_config(TritonConfig(http_header_timeout_secs=0))


def test_a_request_asking_to_close_gets_its_answer_and_the_close(triton_server):
    calls = Calls()
    triton = _server(triton_server, calls)
    body = _json_body(4)
    with _connect(triton) as sock:
        sock.sendall(_infer_head(len(body), b"Connection: keep-alive, Close\r\n") + body)
        head, _, payload = _read_all(sock).partition(b"\r\n\r\n")  # returns only once the server closed
    assert head.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in head.lower()
    assert json.loads(payload)["outputs"]
    assert calls.count == 1
