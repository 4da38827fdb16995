"""Issue 10, gRPC: connection limits and timeouts, message size limits both ways, malformed protobuf.

Hostile clients are raw sockets and grpc's generic channel (bytes in, bytes out) on 127.0.0.1; every loop is
bounded in count and time. Before these limits 300 idle sockets all stayed open (17 s and counting), a
malformed message answered UNKNOWN with "Unexpected <class 'google.protobuf.message.DecodeError'>", and an
oversized response ended a whole ModelStreamInfer call.
"""

from __future__ import annotations

import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
from typing import List

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.decorators import batch
from pytriton_lite.frontends.grpc import MAX_MESSAGE_SIZE, GrpcFrontend
from pytriton_lite.model_config import ModelConfig, Tensor

WAIT_S = 10.0
INFER = "/inference.GRPCInferenceService/ModelInfer"
STREAM = "/inference.GRPCInferenceService/ModelStreamInfer"
METADATA = "/inference.GRPCInferenceService/ModelMetadata"
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS


@batch
def _grow(INPUT):
    return {"OUTPUT": np.repeat(INPUT, 100, axis=1)}  # 100x the input: a response can pass the send limit


def _bind_grow(triton):
    triton.bind(
        "grow",
        _grow,
        inputs=[Tensor(name="INPUT", shape=(-1,), dtype=np.float32)],
        outputs=[Tensor(name="OUTPUT", shape=(-1,), dtype=np.float32)],
        config=ModelConfig(max_batch_size=8),
    )


def _target(triton) -> str:
    return triton.grpc_url[len("grpc://") :]


def _input(n: int):
    tensor = grpcclient.InferInput("INPUT", [1, n], "FP32")
    tensor.set_data_from_numpy(np.ones((1, n), dtype=np.float32))
    return tensor


def _request_bytes(n: int) -> bytes:
    request = service_pb2.ModelInferRequest(model_name="grow")
    request.inputs.add(name="INPUT", datatype="FP32", shape=[1, n])
    request.raw_input_contents.append(np.ones(n, dtype=np.float32).tobytes())
    return request.SerializeToString()


def _live(target: str, timeout: float = 3.0) -> bool:
    try:
        with grpcclient.InferenceServerClient(target) as client:
            return bool(client.is_server_live(client_timeout=timeout))
    except InferenceServerException:
        return False


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the peer closed (EOF or reset); GOAWAY and other frames before that are read and dropped."""
    while True:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            if sock.recv(65536) == b"":
                return True
        except OSError:
            return True


def _wait_closed(socks: List[socket.socket], want: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    closed: set = set()
    while time.monotonic() < deadline:
        closed.update(i for i, s in enumerate(socks) if i not in closed and _closed_by_server(s))
        if len(closed) >= want:
            break
        time.sleep(0.05)
    return len(closed)


def _open(target: str, count: int, preface: bool = False) -> List[socket.socket]:
    host, port = target.rsplit(":", 1)
    socks = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
        if preface:
            sock.sendall(H2_PREFACE)
        socks.append(sock)
    return socks


@pytest.fixture
def sockets():
    opened: List[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


# --- connections ---------------------------------------------------------------------------------------


def test_connections_over_the_limit_are_closed_at_once(triton_server, sockets):
    triton = triton_server(TritonConfig(grpc_max_connections=20, grpc_handshake_timeout=60_000))
    sockets.extend(_open(_target(triton), 60))
    assert _wait_closed(sockets, 40, WAIT_S) >= 40  # the 40 over the limit; the others wait for a handshake


def test_silent_sockets_closed_after_the_handshake_timeout(triton_server, sockets):
    triton = triton_server(TritonConfig(grpc_handshake_timeout=500))
    sockets.extend(_open(_target(triton), 30))
    assert _wait_closed(sockets, 30, WAIT_S) == 30
    assert _live(_target(triton))


def test_idle_connections_get_goaway_and_close(triton_server, sockets):
    triton = triton_server(TritonConfig(grpc_max_connection_idle=500, grpc_handshake_timeout=60_000))
    sockets.extend(_open(_target(triton), 30, preface=True))
    assert _wait_closed(sockets, 30, WAIT_S) == 30
    assert _live(_target(triton))


def test_idle_timeout_is_transparent_to_a_client(triton_server):
    triton = triton_server(TritonConfig(grpc_max_connection_idle=300))
    _bind_grow(triton)
    with grpcclient.InferenceServerClient(_target(triton)) as client:
        for _ in range(3):
            assert client.infer("grow", [_input(2)]).as_numpy("OUTPUT").shape == (1, 200)
            time.sleep(0.8)  # the connection went idle and was closed; the channel reconnects


_LOCKOUT_SERVER = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
from pytriton_lite.config import TritonConfig
from pytriton_lite.testing import running_triton
config = TritonConfig(grpc_handshake_timeout=2000, grpc_max_connection_idle=2000, allow_metrics=False)
with running_triton(config) as triton:
    print(triton.grpc_port, flush=True)
    sys.stdin.read()  # until the test closes it
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE")
@pytest.mark.parametrize("preface", [False, True], ids=["silent", "http2-idle"])
def test_one_client_with_300_sockets_cannot_lock_out_others(sockets, preface):
    """The server runs with 256 descriptors (a subprocess): 300 idle sockets would exhaust them for good;
    with the default connection cap (a quarter of the limit) and the timeouts, others get in."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOCKOUT_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
        target = f"127.0.0.1:{int(lines.get(timeout=60))}"
        sockets.extend(_open(target, 300, preface=preface))  # held open by the hostile client throughout
        deadline = time.monotonic() + 30
        while not _live(target, timeout=2) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert time.monotonic() < deadline, "another client was locked out for 30 s"
        assert proc.poll() is None
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_limits_from_triton_config_and_defaults():
    options = dict(GrpcFrontend.from_triton_config(object(), TritonConfig()).options)
    assert options["grpc.max_send_message_length"] == options["grpc.max_receive_message_length"] == MAX_MESSAGE_SIZE
    assert 16 <= options["grpc.max_allowed_incoming_connections"] <= 1000
    assert options["grpc.max_connection_idle_ms"] == 30_000
    assert options["grpc.server_handshake_timeout_ms"] == 10_000
    assert options["grpc.max_concurrent_streams"] == 1024
    assert "grpc.max_connection_age_ms" not in options
    config = TritonConfig(
        grpc_max_connections=0,
        grpc_max_connection_idle=0,
        grpc_max_connection_age=30_000,
        grpc_max_connection_age_grace=5_000,
        grpc_max_concurrent_streams=8,
        grpc_max_receive_message_size=1 << 20,
        grpc_max_send_message_size=2 << 20,
    )
    options = dict(GrpcFrontend.from_triton_config(object(), config).options)
    assert "grpc.max_allowed_incoming_connections" not in options and "grpc.max_connection_idle_ms" not in options
    assert options["grpc.max_connection_age_ms"] == 30_000 and options["grpc.max_connection_age_grace_ms"] == 5_000
    assert options["grpc.max_concurrent_streams"] == 8
    assert options["grpc.max_receive_message_length"] == 1 << 20
    assert options["grpc.max_send_message_length"] == 2 << 20


@pytest.mark.parametrize(
    "field, value",
    [("grpc_max_connections", -1), ("grpc_max_receive_message_size", 0), ("grpc_max_send_message_size", 2**31)],
)
def test_invalid_limits_are_refused(field, value):
    from pytriton_lite.exceptions import PyTritonError

    with pytest.raises(PyTritonError, match=field.replace("grpc_", "")):
        GrpcFrontend.from_triton_config(object(), TritonConfig(**{field: value}))


def test_limits_from_environment(monkeypatch):
    monkeypatch.setenv("PYTRITON_TRITON_CONFIG_GRPC_MAX_CONNECTIONS", "7")
    options = dict(GrpcFrontend.from_triton_config(object(), TritonConfig.from_env()).options)
    assert options["grpc.max_allowed_incoming_connections"] == 7


# --- message sizes -------------------------------------------------------------------------------------


@pytest.fixture
def small_limits(triton_server):
    triton = triton_server(TritonConfig(grpc_max_receive_message_size=50_000, grpc_max_send_message_size=100_000))
    _bind_grow(triton)
    return triton


def test_receive_limit(small_limits):
    with grpcclient.InferenceServerClient(_target(small_limits)) as client:
        assert client.infer("grow", [_input(10)]).as_numpy("OUTPUT").shape == (1, 1000)
        with pytest.raises(InferenceServerException) as info:
            client.infer("grow", [_input(20_000)])  # 80 KB
        assert info.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
        assert "larger than max" in info.value.message()


def test_send_limit_unary(small_limits):
    with grpcclient.InferenceServerClient(_target(small_limits)) as client:
        with pytest.raises(InferenceServerException) as info:
            client.infer("grow", [_input(1000)])  # a 400 KB response
        assert info.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
        assert "exceeds the maximum message size of 100000 bytes (grpc_max_send_message_size)" in info.value.message()
        assert client.infer("grow", [_input(10)]).as_numpy("OUTPUT").shape == (1, 1000)


def test_send_limit_fails_one_stream_response_only(small_limits):
    results: queue.Queue = queue.Queue()
    with grpcclient.InferenceServerClient(_target(small_limits)) as client:
        client.start_stream(lambda result, error: results.put((result, error)))
        try:
            for n in (10, 1000, 10):
                client.async_stream_infer("grow", [_input(n)])
                result, error = results.get(timeout=WAIT_S)
                if n == 1000:
                    assert error is not None and "grpc_max_send_message_size" in error.message()
                else:
                    assert error is None and result.as_numpy("OUTPUT").shape == (1, 100 * n)
        finally:
            client.stop_stream()


# --- malformed protobuf --------------------------------------------------------------------------------


@pytest.fixture
def server(triton_server):
    triton = triton_server()
    _bind_grow(triton)
    return triton


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a" + b"\xff" * 70_000, _request_bytes(20_000)[:-3]],
    ids=["garbage", "truncated", "large-garbage", "large-truncated"],
)
def test_malformed_model_infer_is_invalid_argument(server, payload):
    with grpc.insecure_channel(_target(server)) as channel:
        call = channel.unary_unary(INFER, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            call(payload, timeout=WAIT_S)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details()
    assert details == "malformed request: the message is not a valid inference.ModelInferRequest protobuf message"
    assert _live(_target(server))


def test_malformed_request_of_another_rpc(server):
    with grpc.insecure_channel(_target(server)) as channel:
        call = channel.unary_unary(METADATA, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            call(b"\xff\xff\xff", timeout=WAIT_S)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inference.ModelMetadataRequest" in info.value.details() and "<class" not in info.value.details()


def test_malformed_message_on_a_stream_fails_that_message_only(server):
    payloads = [_request_bytes(2), b"\xff\xff\xff", _request_bytes(3), b"\x0a" + b"\xff" * 70_000, _request_bytes(4)]
    with grpc.insecure_channel(_target(server)) as channel:
        call = channel.stream_stream(STREAM, request_serializer=None, response_deserializer=None)
        responses = [
            service_pb2.ModelStreamInferResponse.FromString(raw) for raw in call(iter(payloads), timeout=WAIT_S)
        ]
    assert len(responses) == 5
    errors = [r.error_message for r in responses]
    assert (
        errors[1]
        == errors[3]
        == ("malformed request: the message is not a valid inference.ModelInferRequest protobuf message")
    )
    for index, n in ((0, 2), (2, 3), (4, 4)):
        assert errors[index] == "", errors[index]
        assert list(responses[index].infer_response.outputs[0].shape) == [1, 100 * n]
