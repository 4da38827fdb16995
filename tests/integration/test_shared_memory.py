"""System shared memory (Triton's extension) against a live server: tritonclient.utils.shared_memory regions,
registered over HTTP and gRPC, inputs read from and outputs written to them, and every bad case refused."""

from __future__ import annotations

import os
import threading
import time
import uuid

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm
from tritonclient.utils import InferenceServerException

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import TRITON_ACCESS_HEADER, TritonSecurityConfig

WAIT_S = 10.0
PROTOCOLS = ("http", "grpc")


def _bind(triton, started=None, release=None):
    def add_sub(requests):
        out = []
        for r in requests:
            a, b = r["INPUT0"], r["INPUT1"]
            out.append({"OUTPUT0": a + b, "OUTPUT1": a - b})
        return out

    def slow_identity(requests):
        if started is not None:
            started.set()
            release.wait(WAIT_S)
        return [{"OUTPUT": r["INPUT"].copy()} for r in requests]

    def identity(requests):
        return [{"OUTPUT": r["INPUT"]} for r in requests]

    triton.bind(
        "simple",
        add_sub,
        inputs=[Tensor(name="INPUT0", shape=(16,), dtype=np.int32), Tensor(name="INPUT1", shape=(16,), dtype=np.int32)],
        outputs=[
            Tensor(name="OUTPUT0", shape=(16,), dtype=np.int32),
            Tensor(name="OUTPUT1", shape=(16,), dtype=np.int32),
        ],
        config=ModelConfig(batching=False),
    )

    @batch
    def add_sub_batched(INPUT0, INPUT1):
        return {"OUTPUT0": INPUT0 + INPUT1, "OUTPUT1": INPUT0 - INPUT1}

    triton.bind(  # Triton's "simple" model as its shm example clients use it: [1, 16] in a batching model
        "simple_batched",
        add_sub_batched,
        inputs=[Tensor(name="INPUT0", shape=(16,), dtype=np.int32), Tensor(name="INPUT1", shape=(16,), dtype=np.int32)],
        outputs=[
            Tensor(name="OUTPUT0", shape=(16,), dtype=np.int32),
            Tensor(name="OUTPUT1", shape=(16,), dtype=np.int32),
        ],
        config=ModelConfig(max_batch_size=8),
    )
    triton.bind(
        "identity",
        identity,
        inputs=[Tensor(name="INPUT", shape=(-1,), dtype=np.float32)],
        outputs=[Tensor(name="OUTPUT", shape=(-1,), dtype=np.float32)],
        config=ModelConfig(batching=False),
    )
    triton.bind(
        "slow",
        slow_identity,
        inputs=[Tensor(name="INPUT", shape=(-1,), dtype=np.float32)],
        outputs=[Tensor(name="OUTPUT", shape=(-1,), dtype=np.float32)],
        config=ModelConfig(batching=False),
    )


@pytest.fixture
def gate():
    return threading.Event(), threading.Event()


@pytest.fixture
def server(triton_server, gate):
    triton = triton_server()
    _bind(triton, *gate)
    return triton


def _client(triton, protocol):
    if protocol == "http":
        return httpclient.InferenceServerClient(triton.http_url[len("http://") :], network_timeout=WAIT_S)
    return grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])


def _mod(protocol):
    return httpclient if protocol == "http" else grpcclient


def _status(client, protocol, name=""):
    status = client.get_system_shared_memory_status(name)
    if protocol == "http":
        return {s["name"]: (s["key"], int(s["offset"]), int(s["byte_size"])) for s in status}
    return {n: (s.key, s.offset, s.byte_size) for n, s in status.regions.items()}


@pytest.fixture
def regions():
    """Create regions with unique keys; destroy them (and their /dev/shm files) afterwards."""
    made = []

    def make(byte_size):
        key = f"/pt_lite_test_{uuid.uuid4().hex[:12]}"
        handle = shm.create_shared_memory_region(key[1:], key, byte_size)
        made.append(handle)
        return key, handle

    yield make
    for handle in made:
        shm.destroy_shared_memory_region(handle)


def _expect(fragment, fn, *args, **kwargs):
    with pytest.raises(InferenceServerException) as info:
        fn(*args, **kwargs)
    assert fragment in str(info.value), str(info.value)
    return info.value


def _simple_inputs_outputs(mod, in_region, out_region, out_size=64):
    inputs = [mod.InferInput("INPUT0", [16], "INT32"), mod.InferInput("INPUT1", [16], "INT32")]
    inputs[0].set_shared_memory(in_region, 64)
    inputs[1].set_shared_memory(in_region, 64, offset=64)
    outputs = [mod.InferRequestedOutput("OUTPUT0"), mod.InferRequestedOutput("OUTPUT1")]
    outputs[0].set_shared_memory(out_region, out_size)
    outputs[1].set_shared_memory(out_region, out_size, offset=64)
    return inputs, outputs


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_inputs_and_outputs_in_shared_memory(server, regions, protocol):
    client, mod = _client(server, protocol), _mod(protocol)
    in_key, in_handle = regions(128)
    out_key, out_handle = regions(128)
    a, b = np.arange(16, dtype=np.int32), np.full(16, 3, dtype=np.int32)
    shm.set_shared_memory_region(in_handle, [a, b])
    client.register_system_shared_memory("in", in_key, 128)
    client.register_system_shared_memory("out", out_key, 128)
    assert _status(client, protocol) == {"in": (in_key, 0, 128), "out": (out_key, 0, 128)}
    assert _status(client, protocol, "in") == {"in": (in_key, 0, 128)}

    inputs, outputs = _simple_inputs_outputs(mod, "in", "out")
    result = client.infer("simple", inputs, outputs=outputs)
    np.testing.assert_array_equal(shm.get_contents_as_numpy(out_handle, np.int32, [16]), a + b)
    np.testing.assert_array_equal(shm.get_contents_as_numpy(out_handle, np.int32, [16], offset=64), a - b)
    output = result.get_output("OUTPUT0")
    if protocol == "http":
        assert output == {"name": "OUTPUT0", "datatype": "INT32", "shape": [16]}  # metadata only, as Triton
    else:
        assert (output.datatype, list(output.shape)) == ("INT32", [16])

    # an input in shm, the output in the response (binary)
    inputs = [mod.InferInput("INPUT", [32], "FP32")]
    inputs[0].set_shared_memory("in", 128)
    result = client.infer("identity", inputs)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT"), np.frombuffer(np.concatenate([a, b]).tobytes(), "<f4"))

    # a batching model, [1, 16] tensors (as tritonclient's simple_*_shm_client examples send)
    inputs, outputs = _simple_inputs_outputs(mod, "in", "out")
    for tensor in inputs:
        tensor.set_shape([1, 16])
    shm.set_shared_memory_region(out_handle, [np.zeros(32, dtype=np.int32)])  # so that the check can fail
    client.infer("simple_batched", inputs, outputs=outputs)
    np.testing.assert_array_equal(shm.get_contents_as_numpy(out_handle, np.int32, [1, 16], offset=64), [a - b])

    client.unregister_system_shared_memory("in")
    assert list(_status(client, protocol)) == ["out"]
    client.unregister_system_shared_memory("never-registered")  # a no-op, as Triton
    client.unregister_system_shared_memory()
    assert _status(client, protocol) == {}
    client.close()


def test_json_inputs_and_outputs_over_http(server, regions):
    """HTTP without the binary extension: JSON outputs beside an shm output."""
    client = _client(server, "http")
    key, handle = regions(128)
    shm.set_shared_memory_region(handle, [np.arange(16, dtype=np.int32), np.ones(16, dtype=np.int32)])
    client.register_system_shared_memory("io", key, 128)
    inputs = [httpclient.InferInput("INPUT0", [16], "INT32"), httpclient.InferInput("INPUT1", [16], "INT32")]
    inputs[0].set_shared_memory("io", 64)
    inputs[1].set_data_from_numpy(np.ones(16, dtype=np.int32), binary_data=False)
    outputs = [
        httpclient.InferRequestedOutput("OUTPUT0", binary_data=False),
        httpclient.InferRequestedOutput("OUTPUT1"),
    ]
    outputs[1].set_shared_memory("io", 64, offset=64)  # overwrites INPUT1's old place with a - b
    result = client.infer("simple", inputs, outputs=outputs)
    assert result.as_numpy("OUTPUT0").tolist() == list(range(1, 17))
    assert shm.get_contents_as_numpy(handle, np.int32, [16], offset=64).tolist() == list(range(-1, 15))
    client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_registration_errors(server, regions, protocol):
    client = _client(server, protocol)
    key, _ = regions(64)
    client.register_system_shared_memory("r", key, 64)
    _expect("shared memory region 'r' already in manager", client.register_system_shared_memory, "r", key, 64)
    _expect("invalid args", client.register_system_shared_memory, "big", key, 65)
    _expect("invalid args", client.register_system_shared_memory, "past", key, 8, offset=60)
    _expect("Unable to open shared memory region", client.register_system_shared_memory, "x", "/pt_lite_missing", 8)
    _expect("invalid key", client.register_system_shared_memory, "x", "/../etc/passwd", 8)
    _expect("invalid key", client.register_system_shared_memory, "x", "/", 8)
    _expect("Unable to find system shared memory region: 'nope'", client.get_system_shared_memory_status, "nope")
    _expect("CUDA shared memory", client.register_cuda_shared_memory, "c", b"\0" * 64, 0, 64)
    client.unregister_cuda_shared_memory()  # perf_analyzer's clean-up of both kinds succeeds
    assert list(_status(client, protocol)) == ["r"]  # the failures registered nothing
    assert client.is_server_live()
    client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_infer_errors_are_invalid_argument(server, regions, protocol):
    client, mod = _client(server, protocol), _mod(protocol)
    in_key, in_handle = regions(128)
    small_key, _ = regions(8)
    shm.set_shared_memory_region(in_handle, [np.zeros(32, dtype=np.int32)])
    client.register_system_shared_memory("in", in_key, 128)
    client.register_system_shared_memory("small", small_key, 8)
    code = "400" if protocol == "http" else "INVALID_ARGUMENT"

    def infer_one(region, size, offset=0, shape=(16,), model="identity"):
        inputs = [mod.InferInput("INPUT", list(shape), "FP32")]
        inputs[0].set_shared_memory(region, size, offset=offset)
        return client.infer(model, inputs)

    cases = [
        ("Unable to find shared memory region: 'ghost'", ("ghost", 64)),
        ("Invalid offset for shared memory region: 'in'", ("in", 0, 200, (0,))),
        ("Invalid offset + byte size for shared memory region: 'in'", ("in", 64, 96)),
        ("input byte size mismatch for input 'INPUT' for model 'identity'. Expected 64, got 128", ("in", 128)),
    ]
    for fragment, args in cases:
        error = _expect(fragment, infer_one, *args)
        assert code in str(error.status()), (fragment, error.status())

    inputs, outputs = _simple_inputs_outputs(mod, "in", "small", out_size=4)
    error = _expect("should be at least 64 bytes to hold the results", client.infer, "simple", inputs, outputs=outputs)
    assert code in str(error.status())
    _, outputs = _simple_inputs_outputs(mod, "in", "ghost")
    _expect("Unable to find shared memory region: 'ghost'", client.infer, "simple", inputs, outputs=outputs)
    # the server keeps serving
    assert infer_one("in", 64).as_numpy("OUTPUT").tolist() == [0.0] * 16
    client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unregister_during_a_request(server, regions, gate, protocol):
    """The request holds a view of the mapping: unregister succeeds at once and the request still completes."""
    started, release = gate
    client, mod = _client(server, protocol), _mod(protocol)
    key, handle = regions(64)
    data = np.arange(16, dtype=np.float32)
    shm.set_shared_memory_region(handle, [data])
    client.register_system_shared_memory("busy", key, 64)
    inputs = [mod.InferInput("INPUT", [16], "FP32")]
    inputs[0].set_shared_memory("busy", 64)
    results = []

    def run():  # tritonclient.http (gevent) wants a client per thread
        own = _client(server, protocol)
        results.append(own.infer("slow", inputs))
        own.close()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert started.wait(WAIT_S)
        other = _client(server, protocol)
        other.unregister_system_shared_memory("busy")
        assert _status(other, protocol) == {}
        other.close()
    finally:
        release.set()
        worker.join(WAIT_S)
    assert not worker.is_alive()
    np.testing.assert_array_equal(results[0].as_numpy("OUTPUT"), data)
    _expect("Unable to find shared memory region: 'busy'", client.infer, "slow", inputs)
    client.close()


def test_regions_are_released_at_stop(triton_server, regions):
    triton = triton_server()
    _bind(triton)
    key, _ = regions(64)
    inode = os.stat("/dev/shm/" + key[1:]).st_ino
    before = _open_fds(inode)  # the client's own handle
    client = _client(triton, "http")
    client.register_system_shared_memory("r", key, 64)
    client.close()
    assert _open_fds(inode) > before  # the server holds the region open
    triton.stop()
    deadline = time.monotonic() + WAIT_S
    while _open_fds(inode) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _open_fds(inode) == before


def _open_fds(inode):
    return sum(1 for f in os.listdir("/proc/self/fd") if _points_to(f, inode))


def _points_to(fd, inode):
    try:
        return os.stat(f"/proc/self/fd/{fd}").st_ino == inode
    except OSError:
        return False


def test_the_access_policy_guards_shared_memory(triton_server, regions):
    """PyTriton's default security restricts the "shared-memory" group to the access token."""
    triton = triton_server(security_config=TritonSecurityConfig(access_token="tok"))
    _bind(triton)
    key, _ = regions(64)
    http = _client(triton, "http")
    grpc = _client(triton, "grpc")
    _expect("403", http.register_system_shared_memory, "r", key, 64)
    _expect("This protocol is restricted", grpc.register_system_shared_memory, "r", key, 64)
    _expect("403", http.get_system_shared_memory_status)
    http.register_system_shared_memory("r", key, 64, headers={TRITON_ACCESS_HEADER: "tok"})
    grpc_token = {"triton-grpc-protocol-" + TRITON_ACCESS_HEADER: "tok"}
    assert list(grpc.get_system_shared_memory_status(headers=grpc_token).regions) == ["r"]
    grpc.unregister_system_shared_memory(headers=grpc_token)
    assert http.get_system_shared_memory_status(headers={TRITON_ACCESS_HEADER: "tok"}) == []
    http.close()
    grpc.close()


def test_raw_http_bodies_and_statuses(server, regions):
    key, _ = regions(64)
    with httpx.Client(base_url=server.http_url, timeout=WAIT_S) as raw:
        base = "/v2/systemsharedmemory"
        for body in (b"", b"[]", b'{"byte_size": 8}', b'{"key": 5, "byte_size": 8}', b'{"key": "/k"}', b"{nope"):
            answer = raw.post(f"{base}/region/r/register", content=body)
            assert answer.status_code == 400 and "error" in answer.json(), body
        answer = raw.post(f"{base}/region/r/register", json={"key": key, "offset": -1, "byte_size": 8})
        assert answer.status_code == 400 and "offset" in answer.json()["error"]
        assert raw.post(f"{base}/region/r/register", json={"key": key, "byte_size": 64}).status_code == 200
        assert raw.get(f"{base}/region/r/status").json() == [{"name": "r", "key": key, "offset": 0, "byte_size": 64}]
        answer = raw.get(f"{base}/region/ghost/status")
        assert answer.status_code == 404
        assert answer.json() == {"error": "Unable to find system shared memory region: 'ghost'"}
        assert raw.get(f"{base}/region/r/register").status_code == 405
        assert raw.post(f"{base}/register", json={"key": key, "byte_size": 64}).status_code == 404
        assert raw.post("/v2/cudasharedmemory/unregister").status_code == 200
        assert raw.get("/v2/cudasharedmemory/status").json() == []
        body = {
            "inputs": [
                {
                    "name": "INPUT",
                    "shape": [16],
                    "datatype": "FP32",
                    "data": [0.0] * 16,
                    "parameters": {"shared_memory_region": "r", "shared_memory_byte_size": 64},
                }
            ]
        }
        answer = raw.post("/v2/models/identity/infer", json=body)
        assert answer.status_code == 400 and "Input must set only one of the following fields" in answer.json()["error"]
        assert "system_shared_memory" in raw.get("/v2").json()["extensions"]
        assert raw.post(f"{base}/unregister").status_code == 200
        assert raw.get(f"{base}/status").json() == []


def test_the_grpc_stream_reads_and_writes_shared_memory(server, regions):
    import queue

    in_key, in_handle = regions(128)
    out_key, out_handle = regions(128)
    a, b = np.arange(16, dtype=np.int32), np.full(16, 5, dtype=np.int32)
    shm.set_shared_memory_region(in_handle, [a, b])
    shm.set_shared_memory_region(out_handle, [np.zeros(32, dtype=np.int32)])  # so that the check can fail
    client = _client(server, "grpc")
    client.register_system_shared_memory("in", in_key, 128)
    client.register_system_shared_memory("out", out_key, 128)
    results: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        inputs, outputs = _simple_inputs_outputs(grpcclient, "in", "out")
        client.async_stream_infer("simple", inputs, outputs=outputs, request_id="shm")
        result, error = results.get(timeout=WAIT_S)
        assert error is None, error
        assert result.get_response().id == "shm"
        np.testing.assert_array_equal(shm.get_contents_as_numpy(out_handle, np.int32, [16]), a + b)
        np.testing.assert_array_equal(shm.get_contents_as_numpy(out_handle, np.int32, [16], offset=64), a - b)
        # a region too small for an output fails that request only; the stream goes on
        inputs, outputs = _simple_inputs_outputs(grpcclient, "in", "out")
        outputs[0].set_shared_memory("out", 8)
        client.async_stream_infer("simple", inputs, outputs=outputs, request_id="small")
        result, error = results.get(timeout=WAIT_S)
        assert result is None and "should be at least 64 bytes" in str(error)
        inputs, outputs = _simple_inputs_outputs(grpcclient, "in", "out")
        client.async_stream_infer("simple", inputs, outputs=outputs, request_id="again")
        result, error = results.get(timeout=WAIT_S)
        assert error is None and result.get_response().id == "again"
    finally:
        client.stop_stream()
        client.unregister_system_shared_memory()
        client.close()
