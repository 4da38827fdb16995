"""The five pytriton_lite clients against a real pytriton_lite server on loopback, over HTTP and gRPC.

Slow models block on events the test releases (bounded waits), never on sleeps, so no test depends on timing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import pathlib
import re
import threading
from concurrent.futures import Future
from typing import Any, Dict, List

import numpy as np
import pytest

from pytriton_lite.client import (
    AsyncioDecoupledModelClient,
    AsyncioModelClient,
    DecoupledModelClient,
    FuturesModelClient,
    ModelClient,
)
from pytriton_lite.client.exceptions import (
    PyTritonClientClosedError,
    PyTritonClientInferenceServerError,
    PyTritonClientModelDoesntSupportBatchingError,
    PyTritonClientModelUnavailableError,
    PyTritonClientQueueFullError,
    PyTritonClientTimeoutError,
    PyTritonClientValueError,
)
from pytriton_lite.config import TritonConfig
from pytriton_lite.decorators import batch
from pytriton_lite.model_config import (
    DeviceKind,
    DynamicBatcher,
    ModelConfig,
    ModelWarmup,
    QueuePolicy,
    Tensor,
    TimeoutAction,
    TritonModelConfig,
    WarmupInput,
)

HAS_HTTP = importlib.util.find_spec("pytriton_lite.frontends.http") is not None
HAS_GRPC = importlib.util.find_spec("pytriton_lite.frontends.grpc") is not None
NEEDS_HTTP = pytest.mark.skipif(not HAS_HTTP, reason="HTTP front end (pytriton_lite.frontends.http) not written yet")
NEEDS_GRPC = pytest.mark.skipif(not HAS_GRPC, reason="gRPC front end (pytriton_lite.frontends.grpc) not written yet")
PROTOCOLS = [pytest.param("http", marks=NEEDS_HTTP), pytest.param("grpc", marks=NEEDS_GRPC)]

GATE_TIMEOUT_S = 10.0  # the longest any gated model waits for its release
SHORT_TIMEOUT_S = 0.5  # client timeouts used to provoke timeout errors
FP32 = np.float32


class Gates:
    """Events shared between a test and its gated models."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.barrier = threading.Barrier(2, timeout=GATE_TIMEOUT_S)


def _bind_models(triton: Any, gates: Gates) -> None:
    vec = [Tensor(name="x", shape=(-1,), dtype=FP32)]
    out = [Tensor(name="y", shape=(-1,), dtype=FP32)]

    @batch
    def double(x):
        return {"y": x * 2}

    def add(requests):
        return [{"y": r["a"] + (r["b"] if "b" in r else 100)} for r in requests]

    def echo_params(requests):
        return [
            {"params": np.array([json.dumps(r.parameters or {}, sort_keys=True).encode()], dtype=object)}
            for r in requests
        ]

    def gated(requests):
        gates.started.set()
        gates.release.wait(GATE_TIMEOUT_S)
        return [{"y": r["x"]} for r in requests]

    def meet(requests):
        gates.barrier.wait()  # both instances must run at once, or this raises BrokenBarrierError
        return [{"y": r["x"]} for r in requests]

    def fail(requests):
        raise ValueError("boom from the model")

    def bytes_echo(requests):
        return [{"out": r["text"]} for r in requests]

    def gen(requests):
        for i in range(3):
            yield [{"y": r["x"] + i} for r in requests]

    def gen_gated(requests):
        yield [{"y": r["x"]} for r in requests]
        gates.started.set()
        gates.release.wait(GATE_TIMEOUT_S)
        yield [{"y": r["x"] + 1} for r in requests]

    def gen_fail(requests):
        yield [{"y": r["x"]} for r in requests]
        raise RuntimeError("generator broke")

    no_batch = ModelConfig(batching=False)
    triton.bind("double", double, vec, out, config=ModelConfig(max_batch_size=8))
    triton.bind(
        "add",
        add,
        [Tensor(name="a", shape=(-1,), dtype=FP32), Tensor(name="b", shape=(-1,), dtype=FP32, optional=True)],
        out,
        config=no_batch,
    )
    triton.bind("echo_params", echo_params, vec, [Tensor(name="params", shape=(1,), dtype=bytes)], config=no_batch)
    triton.bind("gated", gated, vec, out, config=no_batch)
    triton.bind("meet", [meet, meet], vec, out, config=no_batch)
    triton.bind("fail", fail, vec, out, config=no_batch)
    triton.bind(
        "bytes_echo",
        bytes_echo,
        [Tensor(name="text", shape=(-1,), dtype=bytes)],
        [Tensor(name="out", shape=(-1,), dtype=bytes)],
        config=no_batch,
    )
    triton.bind("gen", gen, vec, out, config=ModelConfig(decoupled=True, max_batch_size=8))
    triton.bind("gen_gated", gen_gated, vec, out, config=ModelConfig(decoupled=True, batching=False))
    triton.bind("gen_fail", gen_fail, vec, out, config=ModelConfig(decoupled=True, batching=False))


class Server:
    def __init__(self, triton: Any, gates: Gates) -> None:
        self.triton = triton
        self.gates = gates

    def url(self, protocol: str) -> str:
        return self.triton.http_url if protocol == "http" else self.triton.grpc_url


@pytest.fixture
def server(triton_server):
    gates = Gates()
    config = TritonConfig(
        allow_http=HAS_HTTP,
        allow_grpc=HAS_GRPC,
        http_header_forward_pattern="x-fwd-.*",
        grpc_header_forward_pattern="x-fwd-.*",
    )
    triton = triton_server(config)
    _bind_models(triton, gates)
    yield Server(triton, gates)
    gates.release.set()  # never leave a model blocked while the server drains
    gates.barrier.abort()


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


# --- ModelClient ------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_infer_sample_adds_and_strips_batch_axis(server, protocol):
    with ModelClient(server.url(protocol), "double") as client:
        result = client.infer_sample(np.arange(3, dtype=FP32))
    assert list(result) == ["y"]
    np.testing.assert_array_equal(result["y"], np.arange(3, dtype=FP32) * 2)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_infer_batch_positional_and_named(server, protocol):
    data = np.arange(6, dtype=FP32).reshape(2, 3)
    with ModelClient(server.url(protocol), "double", lazy_init=False) as client:
        positional = client.infer_batch(data)
        named = client.infer_batch(x=data)
    np.testing.assert_array_equal(positional["y"], data * 2)
    np.testing.assert_array_equal(named["y"], data * 2)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_positional_inputs_follow_config_order_and_may_omit_optionals(server, protocol):
    a, b = np.ones(2, FP32), np.full(2, 5, FP32)
    with ModelClient(server.url(protocol), "add") as client:
        np.testing.assert_array_equal(client.infer_sample(a, b)["y"], a + b)
        np.testing.assert_array_equal(client.infer_sample(a)["y"], a + 100)  # optional "b" left out
        np.testing.assert_array_equal(client.infer_sample(b=b, a=a)["y"], a + b)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_input_convention_errors(server, protocol):
    with ModelClient(server.url(protocol), "double") as client:
        with pytest.raises(PyTritonClientValueError, match="Provide input data"):
            client.infer_sample()
        with pytest.raises(PyTritonClientValueError, match="either positional either keyword"):
            client.infer_sample(np.ones(1, FP32), x=np.ones(1, FP32))
        with pytest.raises(PyTritonClientValueError):
            client.infer_sample(np.ones(1, FP32), parameters={"p": 1.5})
        with pytest.raises(PyTritonClientValueError):
            client.infer_sample(np.ones(1, FP32), headers={1: "x"})
        with pytest.raises(PyTritonClientValueError):
            client.infer_sample(x=[1.0, 2.0])
        with pytest.raises(RuntimeError, match="Unicode inputs are not supported"):
            client.infer_sample(x=np.array(["a"]))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_parameters_and_forwarded_headers_reach_the_callable(server, protocol):
    with ModelClient(server.url(protocol), "echo_params") as client:
        result = client.infer_sample(
            np.ones(1, FP32),
            parameters={"text": "hi", "number": 7, "flag": True},
            headers={"x-fwd-user": "alice", "x-other": "dropped"},
        )
    seen = json.loads(result["params"][0])
    assert seen["text"] == "hi" and seen["number"] == 7 and seen["flag"] is True
    assert seen["x-fwd-user"] == "alice"
    assert "x-other" not in seen


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bytes_roundtrip_keeps_nul_bytes(server, protocol):
    text = np.array([b"a\x00b", b"", b"third"], dtype=object)
    with ModelClient(server.url(protocol), "bytes_echo") as client:
        result = client.infer_sample(text=text)
        with pytest.raises(RuntimeError, match="encoded strings"):
            client.infer_sample(text=np.array(["not bytes"], dtype=object))
    assert result["out"].tolist() == text.tolist()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_model_config(server, protocol):
    with ModelClient(server.url(protocol), "double") as client:
        config = client.model_config
        assert client.is_batching_supported
    assert isinstance(config, TritonModelConfig)
    assert config.model_name == "double"
    assert config.max_batch_size == 8 and config.batching
    assert not config.decoupled
    assert [(s.name, s.shape, s.dtype) for s in config.inputs] == [("x", (-1,), np.float32)]
    assert [(s.name, s.shape, s.dtype) for s in config.outputs] == [("y", (-1,), np.float32)]
    with ModelClient(server.url(protocol), "gen") as client:
        assert client.model_config.decoupled


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_model_config_keeps_every_served_field(server, protocol):
    batcher = DynamicBatcher(
        max_queue_delay_microseconds=100,
        preferred_batch_size=[2, 4],
        preserve_ordering=True,
        priority_levels=2,
        default_priority_level=1,
        default_queue_policy=QueuePolicy(TimeoutAction.DELAY, 5000, True, 7),
        priority_queue_policy={2: QueuePolicy(max_queue_size=3)},
    )
    warmup = [ModelWarmup("w", batch_size=2, inputs={"x": WarmupInput(FP32, (3,), zero_data=True)}, count=2)]
    config = ModelConfig(max_batch_size=4, batcher=batcher, model_warmup=warmup)

    def identity(requests):
        return [{"y": r["x"]} for r in requests]

    vec, out = [Tensor(name="x", shape=(-1,), dtype=FP32)], [Tensor(name="y", shape=(-1,), dtype=FP32)]
    server.triton.bind("configured", [identity, identity], vec, out, config=config)
    with ModelClient(server.url(protocol), "configured") as client:
        served = client.model_config
    assert served.batcher == batcher
    assert served.model_warmup == warmup
    assert served.instance_group == {DeviceKind.KIND_CPU: 2}
    assert served.backend == "python" and served.served_config["version_policy"] == {"all": {}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wait_for_model_and_server(server, protocol):
    with ModelClient(server.url(protocol), "double") as client:
        client.wait_for_server(5)
        client.wait_for_model(5)
        client.wait_for_model(0.5)  # shorter than the client's own network timeout


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unknown_model_times_out_naming_the_models_the_server_knows(server, protocol):
    # As PyTriton: polled until init_timeout_s, then PyTritonClientTimeoutError (here also ModelUnavailable).
    known = "the models it knows: 'add', 'bytes_echo', 'double', 'echo_params'"
    with pytest.raises(PyTritonClientTimeoutError, match=known) as raised:
        ModelClient(server.url(protocol), "missing", lazy_init=False, init_timeout_s=SHORT_TIMEOUT_S)
    assert isinstance(raised.value, PyTritonClientModelUnavailableError)
    assert "Waiting for model missing/<latest> to be ready timed out" in raised.value.message
    with ModelClient(server.url(protocol), "missing", init_timeout_s=SHORT_TIMEOUT_S) as client:
        with pytest.raises(PyTritonClientModelUnavailableError, match="does not know model 'missing'"):
            client.wait_for_model(SHORT_TIMEOUT_S)
        with pytest.raises(PyTritonClientTimeoutError, match="does not know model 'missing'"):
            client.infer_sample(np.ones(1, FP32))
    with ModelClient(server.url(protocol), "double", model_version="7", init_timeout_s=SHORT_TIMEOUT_S) as client:
        with pytest.raises(PyTritonClientModelUnavailableError, match=r"versions 1: READY\) but not version 7"):
            client.infer_sample(np.ones(1, FP32))


LATE_CLIENTS = [
    pytest.param("sync", "http", marks=NEEDS_HTTP),
    pytest.param("sync", "grpc", marks=NEEDS_GRPC),
    pytest.param("futures", "http", marks=NEEDS_HTTP),
    pytest.param("futures", "grpc", marks=NEEDS_GRPC),
    pytest.param("asyncio", "http", marks=NEEDS_HTTP),
    pytest.param("asyncio", "grpc", marks=NEEDS_GRPC),
    pytest.param("decoupled", "grpc", marks=NEEDS_GRPC),
    pytest.param("asyncio_decoupled", "grpc", marks=NEEDS_GRPC),
]


def _late_result(kind: str, url: str, name: str) -> List[Any]:
    """Results from a client of ``kind`` created (and initialised) before ``name`` is bound."""
    x = np.array([3.0], FP32)
    if kind == "sync":
        with ModelClient(url, name, lazy_init=False, init_timeout_s=60) as client:
            return [client.infer_sample(x)["y"].tolist()]
    if kind == "futures":
        with FuturesModelClient(url, name, init_timeout_s=60) as futures:
            return [futures.infer_sample(x).result(60)["y"].tolist()]
    if kind == "decoupled":
        with DecoupledModelClient(url, name, lazy_init=False, init_timeout_s=60) as stream:
            return [r["y"].tolist() for r in stream.infer_sample(x)]

    async def main() -> List[Any]:
        if kind == "asyncio":
            async with AsyncioModelClient(url, name, lazy_init=False, init_timeout_s=60) as client:
                return [(await client.infer_sample(x))["y"].tolist()]
        async with AsyncioDecoupledModelClient(url, name, lazy_init=False, init_timeout_s=60) as client:
            return [r["y"].tolist() async for r in client.infer_sample(x)]

    return _run(main())


@pytest.mark.parametrize("kind, protocol", LATE_CLIENTS)
def test_clients_wait_for_a_model_bound_after_they_start(server, kind, protocol):
    decoupled = "decoupled" in kind
    bound = threading.Event()

    def identity(requests):
        return [{"y": r["x"]} for r in requests]

    def stream(requests):
        for i in range(2):
            yield [{"y": r["x"] + i} for r in requests]

    def bind() -> None:
        spec = [Tensor(name="x", shape=(-1,), dtype=FP32)], [Tensor(name="y", shape=(-1,), dtype=FP32)]
        config = ModelConfig(batching=False, decoupled=decoupled)
        server.triton.bind("late", stream if decoupled else identity, *spec, config=config)
        bound.set()

    timer = threading.Timer(0.3, bind)  # the client starts while the server answers 404 / NOT_FOUND for "late"
    timer.start()
    try:
        result = _late_result(kind, server.url(protocol), "late")
    finally:
        timer.join(GATE_TIMEOUT_S)
    assert bound.is_set()
    assert result == ([[3.0], [4.0]] if decoupled else [[3.0]])


HAS_REPOSITORY = importlib.util.find_spec("pytriton_lite.repository.control") is not None
PYTHON_MODEL = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor("y", pb_utils.get_input_tensor_by_name(r, "x").as_numpy())])
            for r in requests
        ]
"""
PINNED_CONFIG = """
name: "pinned"
backend: "python"
version_policy: { specific: { versions: [1] } }
input [ { name: "x" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ -1 ] } ]
"""


@pytest.mark.skipif(not HAS_REPOSITORY, reason="model repository (pytriton_lite.repository) not written yet")
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_version_outside_a_specific_policy_fails_at_once(triton_server, tmp_path, protocol):
    (tmp_path / "pinned" / "1").mkdir(parents=True)
    (tmp_path / "pinned" / "config.pbtxt").write_text(PINNED_CONFIG)
    (tmp_path / "pinned" / "1" / "model.py").write_text(PYTHON_MODEL)
    triton = triton_server(TritonConfig(allow_http=HAS_HTTP, allow_grpc=HAS_GRPC, model_repository=tmp_path))
    url = triton.http_url if protocol == "http" else triton.grpc_url
    with ModelClient(url, "pinned", model_version="1") as client:
        assert client.infer_sample(np.ones(2, FP32))["y"].tolist() == [1.0, 1.0]
        served = client.model_config.served_config["version_policy"]["specific"]["versions"]
        assert [str(v) for v in served] == ["1"]  # HTTP serves numbers, gRPC proto-JSON strings
    # version 2 can never be served: no wait for init_timeout_s, and not a timeout
    with pytest.raises(PyTritonClientModelUnavailableError, match="version 2 is not one of them") as raised:
        ModelClient(url, "pinned", model_version="2", lazy_init=False, init_timeout_s=60)
    assert not isinstance(raised.value, PyTritonClientTimeoutError)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_explicit_model_version(server, protocol):
    with ModelClient(server.url(protocol), "double", model_version="1") as client:
        np.testing.assert_array_equal(client.infer_sample(np.ones(2, FP32))["y"], np.full(2, 2, FP32))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_inference_timeout(server, protocol):
    with ModelClient(server.url(protocol), "gated", inference_timeout_s=SHORT_TIMEOUT_S) as client:
        client.wait_for_model(10)
        with pytest.raises(PyTritonClientTimeoutError):
            client.infer_sample(np.ones(1, FP32))
        assert server.gates.started.is_set()
        server.gates.release.set()
        # the client stays usable after a timeout
        np.testing.assert_array_equal(client.infer_sample(np.ones(1, FP32))["y"], np.ones(1, FP32))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_server_not_listening_times_out(protocol):
    from pytriton_lite.testing import find_free_port

    url = f"{protocol}://127.0.0.1:{find_free_port()}"
    with pytest.raises(PyTritonClientTimeoutError):
        ModelClient(url, "double", lazy_init=False, init_timeout_s=0.3)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_model_error_is_reported_with_its_message(server, protocol):
    with ModelClient(server.url(protocol), "fail") as client:
        with pytest.raises(PyTritonClientInferenceServerError, match="boom from the model"):
            client.infer_sample(np.ones(1, FP32))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_input_is_reported_as_server_error(server, protocol):
    with ModelClient(server.url(protocol), "double") as client:
        with pytest.raises(PyTritonClientInferenceServerError):
            client.infer_sample(x=np.ones(2, np.int64))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_non_batching_model(server, protocol):
    with ModelClient(server.url(protocol), "gated") as client:
        assert not client.is_batching_supported
        with pytest.raises(PyTritonClientModelDoesntSupportBatchingError):
            client.infer_batch(np.ones((1, 1), FP32))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_decoupled_model_needs_decoupled_client(server, protocol):
    with ModelClient(server.url(protocol), "gen") as client:
        with pytest.raises(PyTritonClientInferenceServerError, match="decoupled"):
            client.infer_sample(np.ones(1, FP32))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_closed_client(server, protocol):
    client = ModelClient(server.url(protocol), "double", lazy_init=False)
    client.close()
    with pytest.raises(PyTritonClientClosedError):
        client.infer_sample(np.ones(1, FP32))
    with pytest.raises(PyTritonClientClosedError):
        client.wait_for_model(1)
    with pytest.raises(PyTritonClientClosedError):
        client.wait_for_server(1)
    client.close()  # idempotent
    lazy = ModelClient(server.url(protocol), "double")
    lazy.close()
    with pytest.raises(PyTritonClientClosedError):
        _ = lazy.model_config


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_from_existing_client_reuses_config(server, protocol):
    with ModelClient(server.url(protocol), "double", lazy_init=False) as first:
        with ModelClient.from_existing_client(first) as second:
            assert second.model_config is first.model_config
            np.testing.assert_array_equal(second.infer_sample(np.ones(1, FP32))["y"], [2])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_access_token_reaches_restricted_endpoints(triton_server, protocol):
    rule = "inference,model-config:triton-access-token=s3cret"
    triton = triton_server(
        TritonConfig(allow_http=HAS_HTTP, allow_grpc=HAS_GRPC, http_restricted_api=rule, grpc_restricted_protocol=rule)
    )
    _bind_models(triton, Gates())
    url = triton.http_url if protocol == "http" else triton.grpc_url
    with ModelClient(url, "double", access_token="s3cret") as client:
        np.testing.assert_array_equal(client.infer_sample(np.ones(1, FP32))["y"], [2])
    with ModelClient(url, "double", init_timeout_s=5) as client:
        with pytest.raises(PyTritonClientInferenceServerError, match="restricted"):
            client.infer_sample(np.ones(1, FP32))


# --- FuturesModelClient -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_futures_results(server, protocol):
    with FuturesModelClient(server.url(protocol), "double", max_workers=4) as client:
        config = client.model_config().result(30)
        assert config.model_name == "double"
        assert client.wait_for_model(10).result(30) is None
        futures = [client.infer_sample(np.full(2, i, FP32)) for i in range(16)]
        batched = client.infer_batch(x=np.ones((3, 2), FP32))
        results = [f.result(30)["y"] for f in futures]
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, np.full(2, 2 * i, FP32))
    np.testing.assert_array_equal(batched.result(0)["y"], np.full((3, 2), 2, FP32))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_futures_run_concurrently(server, protocol):
    # "meet" has two instances that wait for each other: both requests succeed only if sent at once.
    with FuturesModelClient(server.url(protocol), "meet", max_workers=2) as client:
        futures = [client.infer_sample(np.full(1, i, FP32)) for i in range(2)]
        assert [f.result(30)["y"].tolist() for f in futures] == [[0.0], [1.0]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_futures_queue_full(server, protocol):
    with FuturesModelClient(
        server.url(protocol), "gated", max_workers=1, max_queue_size=1, non_blocking=True
    ) as client:
        running = client.infer_sample(np.full(1, 1, FP32))
        assert server.gates.started.wait(GATE_TIMEOUT_S)  # the only worker is now busy
        queued = client.infer_sample(np.full(1, 2, FP32))
        with pytest.raises(PyTritonClientQueueFullError):
            client.infer_sample(np.full(1, 3, FP32))
        server.gates.release.set()
        assert running.result(30)["y"].tolist() == [1.0]
        assert queued.result(30)["y"].tolist() == [2.0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_futures_errors_and_close(server, protocol):
    client = FuturesModelClient(server.url(protocol), "fail")
    with pytest.raises(PyTritonClientInferenceServerError, match="boom"):
        client.infer_sample(np.ones(1, FP32)).result(30)
    client.close()
    with pytest.raises(PyTritonClientClosedError):
        client.infer_sample(np.ones(1, FP32))
    client.close()  # idempotent
    unknown = FuturesModelClient(server.url(protocol), "missing", init_timeout_s=SHORT_TIMEOUT_S)
    with pytest.raises(PyTritonClientTimeoutError, match="does not know model 'missing'"):
        unknown.infer_sample(np.ones(1, FP32)).result(30)
    unknown.close(wait=False)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_futures_close_waits_for_queued_requests(server, protocol):
    client = FuturesModelClient(server.url(protocol), "double", max_workers=1)
    futures: List[Future] = [client.infer_sample(np.full(1, i, FP32)) for i in range(5)]
    client.close(wait=True)
    assert [f.result(0)["y"].tolist() for f in futures] == [[2.0 * i] for i in range(5)]


# --- AsyncioModelClient -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_asyncio_client(server, protocol):
    async def main():
        async with AsyncioModelClient(server.url(protocol), "double", lazy_init=False) as client:
            config = await client.model_config
            sample = await client.infer_sample(np.arange(3, dtype=FP32))
            batch_result = await client.infer_batch(x=np.ones((2, 3), FP32))
            many = await asyncio.gather(*(client.infer_sample(np.full(2, i, FP32)) for i in range(8)))
            await client.wait_for_model(5)
        return config, sample, batch_result, many

    config, sample, batch_result, many = _run(main())
    assert config.max_batch_size == 8
    np.testing.assert_array_equal(sample["y"], np.arange(3, dtype=FP32) * 2)
    np.testing.assert_array_equal(batch_result["y"], np.full((2, 3), 2, FP32))
    assert [r["y"].tolist() for r in many] == [[2.0 * i] * 2 for i in range(8)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_asyncio_client_errors(server, protocol):
    url = server.url(protocol)

    async def main() -> Dict[str, BaseException]:
        errors: Dict[str, BaseException] = {}

        async def capture(name, coro):
            try:
                await coro
            except BaseException as exc:  # noqa: BLE001 - collected for the asserts below
                errors[name] = exc

        async def unknown_model():
            async with AsyncioModelClient(url, "missing", lazy_init=False, init_timeout_s=SHORT_TIMEOUT_S):
                pass

        await capture("unknown", unknown_model())
        async with AsyncioModelClient(url, "gated", inference_timeout_s=SHORT_TIMEOUT_S) as client:
            await capture("batching", client.infer_batch(np.ones((1, 1), FP32)))
            await capture("timeout", client.infer_sample(np.ones(1, FP32)))
        async with AsyncioModelClient(url, "fail") as client:
            await capture("server", client.infer_sample(np.ones(1, FP32)))
        async with AsyncioModelClient(url, "gen") as client:
            await capture("decoupled", client.infer_sample(np.ones(1, FP32)))
        async with AsyncioModelClient(url, "double") as client:
            await capture("no_inputs", client.infer_sample())
            await capture("not_array", client.infer_sample(x=[1.0]))
        closed = AsyncioModelClient(url, "double", lazy_init=False)
        await closed.__aenter__()
        await closed.close()
        await capture("closed", closed.infer_sample(np.ones(1, FP32)))
        return errors

    errors = _run(main())
    server.gates.release.set()
    assert isinstance(errors["unknown"], PyTritonClientTimeoutError)
    assert isinstance(errors["unknown"], PyTritonClientModelUnavailableError)
    assert "does not know model 'missing'" in str(errors["unknown"])
    assert isinstance(errors["batching"], PyTritonClientModelDoesntSupportBatchingError)
    assert isinstance(errors["timeout"], PyTritonClientTimeoutError)
    assert isinstance(errors["server"], PyTritonClientInferenceServerError) and "boom" in str(errors["server"])
    assert isinstance(errors["decoupled"], PyTritonClientInferenceServerError)
    assert isinstance(errors["no_inputs"], PyTritonClientValueError)
    assert isinstance(errors["not_array"], PyTritonClientValueError)
    assert isinstance(errors["closed"], PyTritonClientClosedError)


# --- DecoupledModelClient (gRPC only) ---------------------------------------------------------------


@NEEDS_GRPC
def test_decoupled_stream(server):
    with DecoupledModelClient(server.url("grpc"), "gen") as client:
        samples = list(client.infer_sample(np.array([1, 2], FP32)))
        batches = list(client.infer_batch(x=np.array([[1, 2]], FP32)))
        again = list(client.infer_sample(x=np.array([5], FP32)))  # the stream carries several requests
    assert [s["y"].tolist() for s in samples] == [[1, 2], [2, 3], [3, 4]]
    assert [b["y"].tolist() for b in batches] == [[[1, 2]], [[2, 3]], [[3, 4]]]
    assert [a["y"].tolist() for a in again] == [[5], [6], [7]]


@NEEDS_HTTP
def test_decoupled_client_refuses_http(server):
    with pytest.raises(PyTritonClientValueError, match="grpc"):
        DecoupledModelClient(server.url("http"), "gen")


@NEEDS_GRPC
def test_decoupled_client_argument_and_model_checks(server):
    with DecoupledModelClient(server.url("grpc"), "double") as client:
        with pytest.raises(PyTritonClientInferenceServerError, match="coupled"):
            client.infer_sample(np.ones(1, FP32))
    with DecoupledModelClient(server.url("grpc"), "gen") as client:
        with pytest.raises(PyTritonClientValueError):
            client.infer_sample(np.ones(1, FP32), parameters={"a": 1})
        with pytest.raises(PyTritonClientValueError):
            client.infer_sample(np.ones(1, FP32), headers={"a": "b"})
        assert len(list(client.infer_sample(np.ones(1, FP32)))) == 3  # the failed calls left it usable
    with pytest.raises(PyTritonClientTimeoutError, match="does not know model 'missing'"):
        DecoupledModelClient(server.url("grpc"), "missing", lazy_init=False, init_timeout_s=SHORT_TIMEOUT_S)


@NEEDS_GRPC
def test_decoupled_one_inference_at_a_time(server):
    with DecoupledModelClient(server.url("grpc"), "gen") as client:
        first = client.infer_sample(np.ones(1, FP32))
        with pytest.raises(PyTritonClientInferenceServerError, match="already in progress"):
            client.infer_sample(np.ones(1, FP32))
        assert len(list(first)) == 3
        partial = client.infer_sample(np.ones(1, FP32))
        next(partial)
        partial.close()  # leaving early frees the client
        assert len(list(client.infer_sample(np.ones(1, FP32)))) == 3


@NEEDS_GRPC
def test_decoupled_per_response_timeout(server):
    with DecoupledModelClient(server.url("grpc"), "gen_gated", inference_timeout_s=SHORT_TIMEOUT_S) as client:
        responses = client.infer_sample(np.ones(1, FP32))
        assert next(responses)["y"].tolist() == [1.0]
        with pytest.raises(PyTritonClientTimeoutError):
            next(responses)
        assert server.gates.started.is_set()
        server.gates.release.set()
        assert [r["y"].tolist() for r in client.infer_sample(np.ones(1, FP32))] == [[1.0], [2.0]]


@NEEDS_GRPC
def test_decoupled_error_mid_stream(server):
    with DecoupledModelClient(server.url("grpc"), "gen_fail") as client:
        responses = client.infer_sample(np.ones(1, FP32))
        assert next(responses)["y"].tolist() == [1.0]
        with pytest.raises(PyTritonClientInferenceServerError, match="generator broke"):
            next(responses)
        again = client.infer_sample(np.ones(1, FP32))
        assert next(again)["y"].tolist() == [1.0]
        with pytest.raises(PyTritonClientInferenceServerError):
            list(again)


@NEEDS_GRPC
def test_decoupled_close_while_streaming(server):
    client = DecoupledModelClient(server.url("grpc"), "gen_gated")
    responses = client.infer_sample(np.ones(1, FP32))
    assert next(responses)["y"].tolist() == [1.0]
    assert server.gates.started.wait(GATE_TIMEOUT_S)
    client.close()
    with pytest.raises(PyTritonClientClosedError):
        next(responses)


# --- AsyncioDecoupledModelClient (gRPC only) --------------------------------------------------------


@NEEDS_GRPC
def test_asyncio_decoupled_stream(server):
    async def main():
        async with AsyncioDecoupledModelClient(server.url("grpc"), "gen") as client:
            samples = [r async for r in client.infer_sample(np.array([1, 2], FP32))]
            batches = [r async for r in client.infer_batch(x=np.array([[1, 2]], FP32))]

            async def first_only():
                async for r in client.infer_sample(np.ones(1, FP32)):
                    return r

            early = await first_only()  # leaving the loop early cancels the call
            after = [r async for r in client.infer_sample(np.ones(1, FP32))]
        return samples, batches, early, after

    samples, batches, early, after = _run(main())
    assert [s["y"].tolist() for s in samples] == [[1, 2], [2, 3], [3, 4]]
    assert [b["y"].tolist() for b in batches] == [[[1, 2]], [[2, 3]], [[3, 4]]]
    assert early["y"].tolist() == [1.0]
    assert len(after) == 3


@NEEDS_GRPC
def test_asyncio_decoupled_errors(server):
    async def main() -> Dict[str, BaseException]:
        errors: Dict[str, BaseException] = {}

        async def drain(name, agen):
            try:
                async for _ in agen:
                    pass
            except BaseException as exc:  # noqa: BLE001 - collected for the asserts below
                errors[name] = exc

        async with AsyncioDecoupledModelClient(server.url("grpc"), "double") as client:
            await drain("coupled", client.infer_sample(np.ones(1, FP32)))
        async with AsyncioDecoupledModelClient(server.url("grpc"), "gen_fail") as client:
            await drain("server", client.infer_sample(np.ones(1, FP32)))
        async with AsyncioDecoupledModelClient(
            server.url("grpc"), "gen_gated", inference_timeout_s=SHORT_TIMEOUT_S
        ) as client:
            await drain("timeout", client.infer_sample(np.ones(1, FP32)))
        if HAS_HTTP:
            async with AsyncioDecoupledModelClient(server.url("http"), "gen") as client:
                await drain("http", client.infer_sample(np.ones(1, FP32)))
        return errors

    errors = _run(main())
    server.gates.release.set()
    assert isinstance(errors["coupled"], PyTritonClientInferenceServerError)
    assert "coupled" in str(errors["coupled"])
    assert isinstance(errors["server"], PyTritonClientInferenceServerError)
    assert "generator broke" in str(errors["server"])
    assert isinstance(errors["timeout"], PyTritonClientTimeoutError)
    if HAS_HTTP:
        assert isinstance(errors["http"], PyTritonClientValueError)


# --- docs/clients.md ---------------------------------------------------------------------------------

DOCS_PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "clients.md"


@pytest.mark.skipif(not (HAS_HTTP and HAS_GRPC), reason="the examples use both HTTP and gRPC front ends")
def test_docs_page_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOCS_PAGE.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 5
    for block in blocks:
        exec(compile(block, str(DOCS_PAGE), "exec"), {"__name__": "docs_example"})
