"""The gRPC front end driven by the real tritonclient.grpc / tritonclient.grpc.aio against a live server."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpcclient
from shared_models import bind_failing, bind_params
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor

WAIT_S = 10.0  # bound on every wait for an event or a response
FINAL = "triton_final_response"


# --- models --------------------------------------------------------------------------------------------


@batch
def _identity(INPUT):
    return {"OUTPUT": INPUT}


def _bind_identity(triton, name="identity", dtype=np.float32, max_batch_size=8):
    triton.bind(
        name,
        _identity,
        inputs=[Tensor(name="INPUT", shape=(-1,), dtype=dtype)],
        outputs=[Tensor(name="OUTPUT", shape=(-1,), dtype=dtype)],
        config=ModelConfig(max_batch_size=max_batch_size),
    )


def _bind_streamer(triton, name="streamer", fail_after=None, instances=1, hooks=None):
    """Decoupled: for COUNT=[n] yields n responses OUT=[i]; optionally raises after ``fail_after`` of them."""
    hooks = hooks or {}

    def infer(requests):
        count = int(requests[0]["COUNT"][0])
        for i in range(count):
            if fail_after is not None and i == fail_after:
                raise RuntimeError("generator failed mid-stream")
            yield [{"OUT": np.array([i], dtype=np.int32)}]
            if "after_yield" in hooks:
                hooks["after_yield"](i, requests[0])

    triton.bind(
        name,
        [infer] * instances,
        inputs=[Tensor(name="COUNT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="OUT", shape=(1,), dtype=np.int32)],
        config=ModelConfig(batching=False, decoupled=True),
    )


# --- helpers -------------------------------------------------------------------------------------------


@pytest.fixture
def server(triton_server):
    triton = triton_server(TritonConfig(grpc_header_forward_pattern="^x-fwd-"))
    _bind_identity(triton)
    bind_params(triton)
    bind_failing(triton)
    _bind_streamer(triton)
    return triton


def _target(triton) -> str:
    return triton.grpc_url[len("grpc://") :]


@pytest.fixture
def client(server):
    with grpcclient.InferenceServerClient(_target(server)) as c:
        yield c


def _input(name, array, datatype=None):
    from tritonclient.utils import np_to_triton_dtype

    tensor = grpcclient.InferInput(name, list(array.shape), datatype or np_to_triton_dtype(array.dtype))
    tensor.set_data_from_numpy(array)
    return tensor


def _count_input(n):
    return [_input("COUNT", np.array([n], dtype=np.int32))]


def _expect_error(code: str, match: str, fn, *args, **kwargs):
    with pytest.raises(InferenceServerException) as info:
        fn(*args, **kwargs)
    assert info.value.status() == f"StatusCode.{code}", info.value
    assert match in info.value.message(), info.value.message()
    return info.value


class _StreamCollector:
    """Callback target for ``start_stream``: a queue of (result, error) with bounded gets."""

    def __init__(self):
        self.items: queue.Queue = queue.Queue()

    def __call__(self, result, error):
        self.items.put((result, error))

    def get(self):
        return self.items.get(timeout=WAIT_S)

    def drain(self):
        out = []
        while not self.items.empty():
            out.append(self.items.get_nowait())
        return out


def _final(result) -> bool:
    return result.get_response().parameters[FINAL].bool_param


def _healthy(client):
    data = np.arange(4, dtype=np.float32).reshape(1, 4)
    np.testing.assert_array_equal(client.infer("identity", [_input("INPUT", data)]).as_numpy("OUTPUT"), data)


# --- health, metadata, config, statistics, repository --------------------------------------------------


def test_health_and_server_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("identity") and client.is_model_ready("identity", "1")
    metadata = client.get_server_metadata()
    assert metadata.name == "triton" and metadata.version
    assert "statistics" in metadata.extensions and "model_configuration" in metadata.extensions


def test_model_metadata_and_config(client):
    metadata = client.get_model_metadata("identity")
    assert (metadata.name, list(metadata.versions), metadata.platform) == ("identity", ["1"], "python")
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("INPUT", "FP32", [-1, -1])]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [("OUTPUT", "FP32", [-1, -1])]
    config = client.get_model_config("identity").config
    assert (config.name, config.max_batch_size, config.backend) == ("identity", 8, "python")
    assert list(config.input[0].dims) == [-1] and not config.model_transaction_policy.decoupled
    as_json = client.get_model_config("streamer", as_json=True)["config"]
    assert as_json["model_transaction_policy"]["decoupled"] is True
    assert client.get_model_metadata("params").outputs[0].datatype == "BYTES"


def test_unknown_model_and_version(client):
    message = "Request for unknown model: 'nope' is not found"
    _expect_error("NOT_FOUND", message, client.is_model_ready, "nope")
    _expect_error("NOT_FOUND", message, client.get_model_metadata, "nope")
    _expect_error("NOT_FOUND", message, client.get_model_config, "nope")
    _expect_error("NOT_FOUND", message, client.infer, "nope", [_input("INPUT", np.zeros((1, 2), np.float32))])
    _expect_error("NOT_FOUND", "'identity' version 7 is not found", client.get_model_metadata, "identity", "7")
    _expect_error("INVALID_ARGUMENT", "failed to get model version", client.get_model_metadata, "identity", "abc")


def test_statistics_and_repository_index(client):
    for _ in range(3):
        _healthy(client)
    stats = client.get_inference_statistics("identity")
    entry = stats.model_stats[0]
    assert (entry.name, entry.version) == ("identity", "1")
    assert entry.inference_stats.success.count == 3 and entry.inference_count == 3
    all_stats = client.get_inference_statistics()
    assert {s.name for s in all_stats.model_stats} >= {"identity", "params", "failing", "streamer"}
    _expect_error(
        "INVALID_ARGUMENT", "requested model 'nope' is not available", client.get_inference_statistics, "nope"
    )
    index = client.get_model_repository_index()
    assert {(m.name, m.version, m.state) for m in index.models} >= {
        ("identity", "1", "READY"),
        ("streamer", "1", "READY"),
    }


def test_unsupported_rpcs_answer_unimplemented(client):
    _expect_error("UNAVAILABLE", "explicit model load / unload is not allowed", client.load_model, "identity")
    _expect_error("UNAVAILABLE", "explicit model load / unload is not allowed", client.unload_model, "identity")
    # shared memory is served (tests/integration/test_shared_memory.py); CUDA IPC is refused
    _expect_error(
        "INVALID_ARGUMENT", "Unable to open shared memory", client.register_system_shared_memory, "r", "/k", 64
    )
    _expect_error("INVALID_ARGUMENT", "CUDA shared memory", client.register_cuda_shared_memory, "r", b"", 0, 64)
    assert client.get_trace_settings(as_json=True)["settings"]["trace_level"]["value"] == ["OFF"]  # test_trace.py
    assert not client.get_system_shared_memory_status().regions
    assert not client.get_cuda_shared_memory_status().regions
    _healthy(client)


# --- ModelInfer ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype",
    [
        np.bool_,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.float16,
        np.float32,
        np.float64,
    ],
)
def test_infer_every_fixed_dtype(triton_server, dtype):
    triton = triton_server()
    _bind_identity(triton, dtype=dtype)
    data = (np.arange(12) % 7).astype(dtype).reshape(3, 4)
    with grpcclient.InferenceServerClient(_target(triton)) as c:
        result = c.infer("identity", [_input("INPUT", data)], request_id="rid-1")
    got = result.as_numpy("OUTPUT")
    assert got.dtype == data.dtype
    np.testing.assert_array_equal(got, data)
    response = result.get_response()
    assert (response.id, response.model_name, response.model_version) == ("rid-1", "identity", "1")


def test_infer_bytes_with_nul(triton_server):
    triton = triton_server()
    _bind_identity(triton, dtype=bytes)
    data = np.array([[b"abc\x00def", b""], [b"\x00\x00", "ñ".encode()]], dtype=object)
    with grpcclient.InferenceServerClient(_target(triton)) as c:
        got = c.infer("identity", [_input("INPUT", data, "BYTES")]).as_numpy("OUTPUT")
    assert got.tolist() == data.tolist()


def test_infer_32_mib_tensors_sync_and_aio(server):
    data = np.random.default_rng(0).random((1, 8 << 20), dtype=np.float32)  # 32 MiB each way
    with grpcclient.InferenceServerClient(_target(server)) as c:
        np.testing.assert_array_equal(c.infer("identity", [_input("INPUT", data)]).as_numpy("OUTPUT"), data)

    async def run():
        async with aiogrpcclient.InferenceServerClient(_target(server)) as ac:
            assert await ac.is_server_live() and await ac.is_server_ready() and await ac.is_model_ready("identity")
            assert (await ac.get_server_metadata()).name == "triton"
            assert (await ac.get_model_metadata("identity")).inputs[0].name == "INPUT"
            assert (await ac.get_model_config("identity")).config.max_batch_size == 8
            assert (await ac.get_model_repository_index()).models
            assert (await ac.get_inference_statistics("identity")).model_stats[0].name == "identity"
            inputs = [aiogrpcclient.InferInput("INPUT", list(data.shape), "FP32")]
            inputs[0].set_data_from_numpy(data)
            result = await ac.infer("identity", inputs)
            return result.as_numpy("OUTPUT")

    np.testing.assert_array_equal(asyncio.run(run()), data)


def test_requested_outputs_and_parameters_and_forwarded_headers(client):
    result = client.infer(
        "params",
        [_input("INPUT", np.array([1], dtype=np.int32))],
        outputs=[grpcclient.InferRequestedOutput("PARAMS")],
        parameters={"temperature": 0.5, "name": "x", "flag": True, "n": 3},
        headers={"x-fwd-user": "alice", "x-other": "ignored"},
    )
    assert json.loads(result.as_numpy("PARAMS")[0]) == {
        "flag": True,
        "n": 3,
        "name": "x",
        "temperature": 0.5,
        "x-fwd-user": "alice",
    }
    _expect_error(
        "INVALID_ARGUMENT",
        "unexpected inference output 'NOPE'",
        client.infer,
        "params",
        [_input("INPUT", np.array([1], dtype=np.int32))],
        outputs=[grpcclient.InferRequestedOutput("NOPE")],
    )


def test_bad_inputs_are_invalid_argument_and_server_keeps_serving(client):
    good = np.zeros((1, 4), dtype=np.float32)
    _expect_error(
        "INVALID_ARGUMENT", "data-type is 'INT32'", client.infer, "identity", [_input("INPUT", good.astype(np.int32))]
    )
    _expect_error(
        "INVALID_ARGUMENT", "unexpected shape for input 'INPUT'", client.infer, "identity", [_input("INPUT", good[0])]
    )
    _expect_error(
        "INVALID_ARGUMENT",
        "batch-size must be <= 8",
        client.infer,
        "identity",
        [_input("INPUT", np.zeros((9, 4), np.float32))],
    )
    _expect_error("INVALID_ARGUMENT", "missing required input(s) ['INPUT']", client.infer, "identity", [])
    _expect_error(
        "INVALID_ARGUMENT",
        "unexpected inference input 'EXTRA'",
        client.infer,
        "identity",
        [_input("INPUT", good), _input("EXTRA", good)],
    )
    _healthy(client)


def test_malformed_raw_contents_via_raw_stub(server):
    with grpc.insecure_channel(_target(server)) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ModelInferRequest(model_name="identity")
        request.inputs.add(name="INPUT", datatype="FP32", shape=[1, 4])
        request.raw_input_contents.append(b"\x00" * 12)  # 3 floats for a 4-float shape
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(request, timeout=WAIT_S)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (
            "input byte size mismatch for input 'INPUT' for model 'identity'. Expected 16, got 12"
            in info.value.details()
        )

        # typed contents: accepted per dtype, refused when mixed with raw contents
        typed = service_pb2.ModelInferRequest(model_name="identity", id="typed")
        typed.inputs.add(name="INPUT", datatype="FP32", shape=[1, 3]).contents.fp32_contents.extend([1.5, 2.5, 3.5])
        response = stub.ModelInfer(typed, timeout=WAIT_S)
        assert response.id == "typed" and len(response.raw_output_contents) == 1
        assert np.frombuffer(response.raw_output_contents[0], dtype=np.float32).tolist() == [1.5, 2.5, 3.5]
        typed.raw_input_contents.append(b"\x00" * 12)
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(typed, timeout=WAIT_S)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "contents field must not be specified" in info.value.details()

        # perf_analyzer sends the empty-final flag on unary calls too
        flagged = service_pb2.ModelInferRequest(model_name="identity")
        flagged.inputs.add(name="INPUT", datatype="FP32", shape=[1, 1]).contents.fp32_contents.append(4.0)
        flagged.parameters["triton_enable_empty_final_response"].bool_param = True
        assert len(stub.ModelInfer(flagged, timeout=WAIT_S).raw_output_contents) == 1

        live = stub.ServerLive(service_pb2.ServerLiveRequest(), timeout=WAIT_S)
        assert live.live


def test_model_error_is_internal_with_message(client):
    error = _expect_error(
        "INTERNAL", "model exploded on purpose", client.infer, "failing", [_input("INPUT", np.array([1], np.int32))]
    )
    assert "ValueError" in error.message()
    _healthy(client)


def test_decoupled_model_refused_by_model_infer(client):
    _expect_error(
        "UNIMPLEMENTED",
        "ModelInfer RPC doesn't support models with decoupled transaction policy",
        client.infer,
        "streamer",
        _count_input(2),
    )


def test_client_deadline_and_server_survives(triton_server):
    release = threading.Event()

    def slow(requests):
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
    with grpcclient.InferenceServerClient(_target(triton)) as c:
        try:
            _expect_error(
                "DEADLINE_EXCEEDED",
                "Deadline",
                c.infer,
                "slow",
                [_input("INPUT", np.array([1], np.int32))],
                client_timeout=0.2,
            )
        finally:
            release.set()
        assert c.infer("slow", [_input("INPUT", np.array([5], np.int32))]).as_numpy("OUTPUT").tolist() == [5]


# --- ModelStreamInfer ----------------------------------------------------------------------------------


def test_decoupled_stream_with_empty_final_response(client):
    collector = _StreamCollector()
    client.start_stream(callback=collector)
    try:
        client.async_stream_infer("streamer", _count_input(3), request_id="s1", enable_empty_final_response=True)
        items = [collector.get() for _ in range(4)]
    finally:
        client.stop_stream()
    assert all(error is None for _, error in items)
    results = [result for result, _ in items]
    assert [r.as_numpy("OUT").tolist() for r in results[:3]] == [[0], [1], [2]]
    assert [_final(r) for r in results] == [False, False, False, True]
    final = results[3].get_response()
    assert (final.id, final.model_name, final.model_version, len(final.outputs)) == ("s1", "streamer", "1", 0)
    assert all(r.get_response().id == "s1" for r in results)
    assert collector.drain() == []


def test_decoupled_stream_without_empty_final_and_zero_responses(client):
    collector = _StreamCollector()
    client.start_stream(callback=collector)
    client.async_stream_infer("streamer", _count_input(2), request_id="a")
    client.async_stream_infer("streamer", _count_input(0), request_id="none")
    client.async_stream_infer("streamer", _count_input(0), request_id="none-final", enable_empty_final_response=True)
    client.stop_stream()  # half-close: returns once the server ended the call after all requests
    items = collector.drain()
    assert all(error is None for _, error in items)
    by_id = {}
    for result, _ in items:
        by_id.setdefault(result.get_response().id, []).append(result)
    assert [r.as_numpy("OUT").tolist() for r in by_id["a"]] == [[0], [1]]
    assert not any(_final(r) for r in by_id["a"])
    assert "none" not in by_id
    assert [(_final(r), len(r.get_response().outputs)) for r in by_id["none-final"]] == [(True, 0)]


def test_coupled_model_over_stream_keeps_request_order(triton_server):
    fast_done = threading.Event()

    def infer(requests):
        value = int(requests[0]["INPUT"][0])
        if value == 0:
            fast_done.wait(WAIT_S)  # finishes after request 1 has been computed
        else:
            fast_done.set()
        return [{"OUTPUT": requests[0]["INPUT"]}]

    triton = triton_server()
    triton.bind(
        "ordered",
        [infer, infer],
        inputs=[Tensor(name="INPUT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="OUTPUT", shape=(1,), dtype=np.int32)],
        config=ModelConfig(batching=False),
    )
    collector = _StreamCollector()
    with grpcclient.InferenceServerClient(_target(triton)) as c:
        c.start_stream(callback=collector)
        try:
            for i in range(4):
                c.async_stream_infer("ordered", [_input("INPUT", np.array([i], np.int32))], request_id=str(i))
            items = [collector.get() for _ in range(4)]
        finally:
            c.stop_stream()
    assert fast_done.is_set()
    assert [error for _, error in items] == [None] * 4
    assert [r.get_response().id for r, _ in items] == ["0", "1", "2", "3"]
    assert [r.as_numpy("OUTPUT").tolist() for r, _ in items] == [[0], [1], [2], [3]]
    assert all(_final(r) for r, _ in items)


def test_decoupled_requests_on_one_stream_run_concurrently(triton_server):
    second_produced = threading.Event()

    def after_yield(i, request):
        if int(request["COUNT"][0]) == 2:  # the second request
            second_produced.set()
        elif i == 0:
            assert second_produced.wait(WAIT_S), "second request did not run while the first was open"

    triton = triton_server()
    _bind_streamer(triton, instances=2, hooks={"after_yield": after_yield})
    collector = _StreamCollector()
    with grpcclient.InferenceServerClient(_target(triton)) as c:
        c.start_stream(callback=collector)
        try:
            c.async_stream_infer("streamer", _count_input(3), request_id="first", enable_empty_final_response=True)
            c.async_stream_infer("streamer", _count_input(2), request_id="second", enable_empty_final_response=True)
            items = [collector.get() for _ in range(7)]
        finally:
            c.stop_stream()
    assert all(error is None for _, error in items)
    ids = [r.get_response().id for r, _ in items]
    assert ids.count("first") == 4 and ids.count("second") == 3
    finals = [r.get_response().id for r, _ in items if _final(r)]
    assert sorted(finals) == ["first", "second"]


def test_mid_stream_error_keeps_stream_usable(triton_server):
    triton = triton_server()
    _bind_streamer(triton, name="breaks", fail_after=2)
    _bind_streamer(triton)
    bind_failing(triton)
    collector = _StreamCollector()
    with grpcclient.InferenceServerClient(_target(triton)) as c:
        c.start_stream(callback=collector)
        try:
            c.async_stream_infer("breaks", _count_input(5), request_id="bad", enable_empty_final_response=True)
            first = [collector.get() for _ in range(3)]
            c.async_stream_infer("failing", [_input("INPUT", np.array([1], np.int32))], request_id="coupled-bad")
            failed = collector.get()
            c.async_stream_infer("nope", _count_input(1), request_id="unknown")
            unknown = collector.get()
            c.async_stream_infer("streamer", _count_input(1), request_id="good", enable_empty_final_response=True)
            after = [collector.get() for _ in range(2)]
        finally:
            c.stop_stream()
    assert [r.as_numpy("OUT").tolist() for r, _ in first[:2]] == [[0], [1]]
    result, error = first[2]
    assert result is None and "generator failed mid-stream" in error.message()
    assert failed[0] is None and "model exploded on purpose" in failed[1].message()
    assert unknown[0] is None and "Request for unknown model: 'nope' is not found" in unknown[1].message()
    assert [e for _, e in after] == [None, None]
    assert after[0][0].as_numpy("OUT").tolist() == [0] and _final(after[1][0])


def test_grpc_error_header_ends_stream_with_status(client):
    collector = _StreamCollector()
    client.start_stream(callback=collector, headers={"triton_grpc_error": "true"})
    try:
        client.async_stream_infer("failing", [_input("INPUT", np.array([1], np.int32))])
        result, error = collector.get()
    finally:
        client.stop_stream()
    assert result is None and error.status() == "StatusCode.INTERNAL"
    assert "model exploded on purpose" in error.message()


def test_cancelled_stream_stops_the_generator(triton_server):
    produced = threading.Event()
    stopped = threading.Event()

    def endless(requests):
        try:
            for i in range(100_000):  # bounded: the test expects it to stop after a handful
                yield [{"OUT": np.array([i], dtype=np.int32)}]
                produced.set()
                time.sleep(0.001)
        finally:
            stopped.set()

    triton = triton_server()
    triton.bind(
        "endless",
        endless,
        inputs=[Tensor(name="COUNT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="OUT", shape=(1,), dtype=np.int32)],
        config=ModelConfig(batching=False, decoupled=True),
    )
    collector = _StreamCollector()
    with grpcclient.InferenceServerClient(_target(triton)) as c:
        c.start_stream(callback=collector)
        c.async_stream_infer("endless", _count_input(1))
        result, error = collector.get()
        assert error is None and result.as_numpy("OUT").tolist() == [0]
        assert produced.wait(WAIT_S)
        c.stop_stream(cancel_requests=True)
        assert stopped.wait(WAIT_S), "generator kept running after the client cancelled the stream"
        assert c.is_server_live()


def test_aio_stream_infer_and_cancel(triton_server):
    stopped = threading.Event()

    def endless(requests):
        try:
            for i in range(100_000):
                yield [{"OUT": np.array([i], dtype=np.int32)}]
                time.sleep(0.001)
        finally:
            stopped.set()

    triton = triton_server()
    _bind_streamer(triton)
    triton.bind(
        "endless",
        endless,
        inputs=[Tensor(name="COUNT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="OUT", shape=(1,), dtype=np.int32)],
        config=ModelConfig(batching=False, decoupled=True),
    )

    def aio_input(n):
        tensor = aiogrpcclient.InferInput("COUNT", [1], "INT32")
        tensor.set_data_from_numpy(np.array([n], dtype=np.int32))
        return [tensor]

    async def run():
        async with aiogrpcclient.InferenceServerClient(_target(triton)) as ac:

            async def requests():
                yield {"model_name": "streamer", "inputs": aio_input(3), "request_id": "aio"}

            values = []
            async for result, error in ac.stream_infer(requests()):
                assert error is None
                values.append(int(result.as_numpy("OUT")[0]))
            assert values == [0, 1, 2]

            async def endless_requests():
                yield {"model_name": "endless", "inputs": aio_input(1)}
                await asyncio.sleep(WAIT_S)  # keep the request side open until cancelled

            responses = ac.stream_infer(endless_requests())
            async for result, error in responses:
                assert error is None and result.as_numpy("OUT").tolist() == [0]
                break
            responses.cancel()

    asyncio.run(asyncio.wait_for(run(), 3 * WAIT_S))
    assert stopped.wait(WAIT_S)


# --- configuration -------------------------------------------------------------------------------------


def test_allow_grpc_false_starts_no_grpc_server(triton_server):
    triton = triton_server(TritonConfig(allow_grpc=False))
    assert triton.grpc_port is None
    assert triton.http_port


def test_grpc_only_server(triton_server):
    triton = triton_server(TritonConfig(allow_http=False))
    _bind_identity(triton)
    assert triton.http_port is None
    with grpcclient.InferenceServerClient(_target(triton)) as c:
        _healthy(c)


def test_restricted_protocol_needs_header(triton_server):
    triton = triton_server(TritonConfig(grpc_restricted_protocol="statistics,model-repository:admin-key=s3cret"))
    _bind_identity(triton)
    with grpcclient.InferenceServerClient(_target(triton)) as c:
        _expect_error("UNAVAILABLE", "expecting header 'triton-grpc-protocol-admin-key'", c.get_inference_statistics)
        _expect_error("UNAVAILABLE", "This protocol is restricted", c.get_model_repository_index)
        stats = c.get_inference_statistics("identity", headers={"triton-grpc-protocol-admin-key": "s3cret"})
        assert stats.model_stats[0].name == "identity"
        _healthy(c)  # inference is not restricted


def test_ssl_server(triton_server, tmp_path):
    pytest.importorskip("cryptography")
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "server.crt").write_bytes(cert_pem)
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    triton = triton_server(
        TritonConfig(
            allow_http=False,
            grpc_use_ssl=True,
            grpc_server_cert=tmp_path / "server.crt",
            grpc_server_key=tmp_path / "server.key",
        )
    )
    _bind_identity(triton)
    credentials = grpc.ssl_channel_credentials(root_certificates=cert_pem)
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(_target(triton), credentials, options=options) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(service_pb2.ServerLiveRequest(), timeout=WAIT_S).live


def test_busy_port_raises_oserror_naming_it():
    import socket

    from pytriton_lite.frontends.grpc import GrpcFrontend

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]

        async def start():
            frontend = GrpcFrontend(object(), host="127.0.0.1", port=port)
            await frontend.start()

        with pytest.raises(OSError) as info:
            asyncio.run(start())
    assert str(port) in str(info.value)


def test_options_from_triton_config():
    from pytriton_lite.frontends.grpc import MAX_MESSAGE_SIZE, GrpcFrontend

    config = TritonConfig(
        grpc_address="127.0.0.1",
        grpc_port=0,
        grpc_keepalive_time=7000,
        grpc_keepalive_timeout=3000,
        grpc_keepalive_permit_without_calls=True,
        grpc_http2_max_pings_without_data=5,
        grpc_http2_min_recv_ping_interval_without_data=1000,
        grpc_http2_max_ping_strikes=4,
        grpc_infer_response_compression_level="high",
    )
    options = dict(GrpcFrontend.from_triton_config(object(), config).options)
    assert options["grpc.max_send_message_length"] == options["grpc.max_receive_message_length"] == MAX_MESSAGE_SIZE
    assert options["grpc.keepalive_time_ms"] == 7000 and options["grpc.keepalive_timeout_ms"] == 3000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.max_pings_without_data"] == 5
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 1000
    assert options["grpc.http2.max_ping_strikes"] == 4
    assert options["grpc.default_compression_level"] == 3


# --- pytriton_lite clients over grpc:// ----------------------------------------------------------------


def test_model_clients_over_grpc(server):
    from pytriton_lite.client import AsyncioModelClient, FuturesModelClient, ModelClient

    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    with ModelClient(server.grpc_url, "identity", init_timeout_s=WAIT_S) as c:
        np.testing.assert_array_equal(c.infer_batch(INPUT=data)["OUTPUT"], data)
        np.testing.assert_array_equal(c.infer_sample(INPUT=data[0])["OUTPUT"], data[0])
    with FuturesModelClient(server.grpc_url, "identity", init_timeout_s=WAIT_S) as fc:
        futures = [fc.infer_batch(INPUT=data + i) for i in range(4)]
        for i, future in enumerate(futures):
            np.testing.assert_array_equal(future.result(timeout=WAIT_S)["OUTPUT"], data + i)

    async def run():
        async with AsyncioModelClient(server.grpc_url, "identity", init_timeout_s=WAIT_S) as ac:
            return await ac.infer_batch(INPUT=data)

    np.testing.assert_array_equal(asyncio.run(run())["OUTPUT"], data)


def test_model_client_inference_timeout_over_grpc(triton_server):
    from pytriton_lite.client import ModelClient
    from pytriton_lite.client.exceptions import PyTritonClientTimeoutError

    release = threading.Event()

    def slow(requests):
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
    try:
        with ModelClient(triton.grpc_url, "slow", init_timeout_s=WAIT_S, inference_timeout_s=0.3) as c:
            with pytest.raises(PyTritonClientTimeoutError):
                c.infer_sample(INPUT=np.array([1], np.int32))
    finally:
        release.set()
    with ModelClient(triton.grpc_url, "slow", init_timeout_s=WAIT_S) as c:
        assert c.infer_sample(INPUT=np.array([2], np.int32))["OUTPUT"].tolist() == [2]


def test_decoupled_clients_over_grpc(server):
    from pytriton_lite.client import AsyncioDecoupledModelClient, DecoupledModelClient

    with DecoupledModelClient(server.grpc_url, "streamer", init_timeout_s=WAIT_S) as c:
        values = [int(r["OUT"][0]) for r in c.infer_sample(COUNT=np.array([4], np.int32))]
        assert values == [0, 1, 2, 3]
        assert [int(r["OUT"][0]) for r in c.infer_sample(COUNT=np.array([2], np.int32))] == [0, 1]

    async def run():
        async with AsyncioDecoupledModelClient(server.grpc_url, "streamer", init_timeout_s=WAIT_S) as ac:
            return [int(r["OUT"][0]) async for r in ac.infer_sample(COUNT=np.array([3], np.int32))]

    assert asyncio.run(run()) == [0, 1, 2]


def test_restricted_protocol_spec_parsing():
    from pytriton_lite.exceptions import PyTritonError
    from pytriton_lite.frontends.grpc import parse_restricted_protocols

    assert parse_restricted_protocols(None) == {}
    assert parse_restricted_protocols(["health,inference:K=v", "statistics:other=x:=y"]) == {
        "health": ("triton-grpc-protocol-k", "v"),
        "inference": ("triton-grpc-protocol-k", "v"),
        "statistics": ("triton-grpc-protocol-other", "x:=y"),
    }
    for bad in ("statistics", "statistics:novalue", "bogus:k=v"):
        with pytest.raises(PyTritonError):
            parse_restricted_protocols(bad)


# --- the per-RPC wrapper: access check and error mapping in one place -----------------------------------


class _StubPlane:
    """A data plane for the wrapper tests: healthy, or failing every call with ``exc``."""

    server_id = "triton"

    def __init__(self, exc=None):
        self.exc = exc

    def _answer(self, value):
        if self.exc is not None:
            raise self.exc
        return value

    def live(self):
        return self._answer(True)

    def ready(self):
        return self._answer(True)

    def models(self):
        return self._answer([])

    def repository_index(self, ready_only=False):
        return self._answer([])


def _with_frontend(dataplane, calls, **options):
    """Serve ``dataplane`` on a loopback GrpcFrontend and run ``await calls(channel)`` against it."""
    from pytriton_lite.frontends.grpc import GrpcFrontend

    async def main():
        frontend = GrpcFrontend(dataplane, host="127.0.0.1", port=0, **options)
        await frontend.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{frontend.port}") as channel:
                return await calls(channel)
        finally:
            await frontend.stop()

    return asyncio.run(asyncio.wait_for(main(), 30))


async def _status_of(call):
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def test_unexpected_errors_of_any_rpc_are_internal_with_their_text_logged_once(caplog):
    # ServerLive, ServerReady and RepositoryIndex had no error handling: grpc answered UNKNOWN "Unexpected error"
    async def calls(channel):
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        return [
            await _status_of(stub.ServerLive(service_pb2.ServerLiveRequest())),
            await _status_of(stub.ServerReady(service_pb2.ServerReadyRequest())),
            await _status_of(stub.RepositoryIndex(service_pb2.RepositoryIndexRequest())),
        ]

    with caplog.at_level("ERROR", logger="pytriton_lite.grpc"):
        statuses = _with_frontend(_StubPlane(RuntimeError("boom")), calls)
    assert statuses == [(grpc.StatusCode.INTERNAL, "RuntimeError: boom")] * 3
    logged = [r for r in caplog.records if r.name == "pytriton_lite.grpc" and r.exc_info]
    assert len(logged) == 3 and all(r.exc_info[1].args == ("boom",) for r in logged)


def test_pytriton_errors_of_any_rpc_keep_their_status():
    from pytriton_lite.exceptions import UnavailableError

    async def calls(channel):
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        return await _status_of(stub.ServerReady(service_pb2.ServerReadyRequest()))

    statuses = _with_frontend(_StubPlane(UnavailableError("server is stopping")), calls)
    assert statuses == (grpc.StatusCode.UNAVAILABLE, "server is stopping")


def test_every_rpc_is_checked_against_its_group(caplog):
    from pytriton_lite.config import TRITON_API_GROUPS
    from pytriton_lite.protocol.access import GRPC_METHOD_GROUPS

    spec = ",".join(TRITON_API_GROUPS) + ":Admin-Key=s3cret"
    granted = (("triton-grpc-protocol-admin-key", "s3cret"),)

    async def calls(channel):
        refused, allowed = {}, {}
        for name in GRPC_METHOD_GROUPS:
            path = f"/inference.GRPCInferenceService/{name}"
            if name == "ModelStreamInfer":
                call = channel.stream_stream(path)
                refused[name] = await _status_of(call(iter(()), timeout=WAIT_S).read())
                allowed[name] = await _status_of(call(iter(()), timeout=WAIT_S, metadata=granted).read())
            else:
                call = channel.unary_unary(path)
                refused[name] = await _status_of(call(b"", timeout=WAIT_S))
                allowed[name] = await _status_of(call(b"", timeout=WAIT_S, metadata=granted))
        return refused, allowed

    with caplog.at_level("CRITICAL"):  # the stub plane lacks most methods: INTERNAL, logged, not looked at
        refused, allowed = _with_frontend(_StubPlane(), calls, restricted_protocol=spec)
    expected = (
        grpc.StatusCode.UNAVAILABLE,
        "This protocol is restricted, expecting header 'triton-grpc-protocol-admin-key'",
    )
    assert refused == {name: expected for name in GRPC_METHOD_GROUPS}
    assert all(code != grpc.StatusCode.UNAVAILABLE for code, _ in allowed.values())
    assert allowed["ServerLive"] == allowed["ModelStreamInfer"] == (grpc.StatusCode.OK, "")
    assert allowed["TraceSetting"][0] == grpc.StatusCode.INTERNAL  # past the gate: the stub plane has no settings


def test_restricted_protocol_rules_may_be_joined_with_semicolons():
    from pytriton_lite.frontends.grpc import parse_restricted_protocols

    assert parse_restricted_protocols("health:a=1;statistics:b=2") == {
        "health": ("triton-grpc-protocol-a", "1"),
        "statistics": ("triton-grpc-protocol-b", "2"),
    }


def test_restricted_stream_needs_the_header_and_then_streams(triton_server):
    triton = triton_server(TritonConfig(grpc_restricted_protocol="inference:k=v"))
    _bind_streamer(triton)
    results: queue.Queue = queue.Queue()
    with grpcclient.InferenceServerClient(_target(triton)) as c:
        c.start_stream(
            callback=lambda result, error: results.put((result, error)), headers={"triton-grpc-protocol-k": "v"}
        )
        c.async_stream_infer("streamer", _count_input(2))
        outs = [results.get(timeout=WAIT_S) for _ in range(2)]
        c.stop_stream()
        assert [int(r.as_numpy("OUT")[0]) for r, e in outs if e is None] == [0, 1]
        refused: queue.Queue = queue.Queue()
        c.start_stream(callback=lambda result, error: refused.put(error))
        try:
            c.async_stream_infer("streamer", _count_input(1))
        except InferenceServerException:
            pass  # the refusal may already have closed the stream
        error = refused.get(timeout=WAIT_S)
        c.stop_stream()
    assert error is not None and "This protocol is restricted" in str(error)


@pytest.mark.parametrize(
    ("pattern", "forwarded"),
    [
        ("^X-FWD-", {"x-fwd-user": "alice"}),  # case-insensitive, as Triton (metadata keys arrive lower-case)
        ("(?-i)^X-FWD-", {}),  # RE2's case-sensitive prefix: accepted at start, and it matches nothing here
    ],
)
def test_forward_patterns_are_case_insensitive_and_take_tritons_syntax(triton_server, pattern, forwarded):
    triton = triton_server(TritonConfig(grpc_header_forward_pattern=pattern, http_header_forward_pattern=pattern))
    bind_params(triton)
    with grpcclient.InferenceServerClient(_target(triton)) as client:
        result = client.infer(
            "params", [_input("INPUT", np.array([1], dtype=np.int32))], headers={"x-fwd-user": "alice"}
        )
    assert json.loads(result.as_numpy("PARAMS")[0]) == forwarded
