"""The ``LoadContext`` backends get (BLS, ensembles), warm-up, reshape, version policies and placements,
on real servers with the spine's fake backend."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from spine_support import IDENTITY, events, use_fake_backends, write_model
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.exceptions import ModelNotFoundError, PyTritonInvalidOperationError
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.repository import loader
from pytriton_lite.repository.context import DataPlaneContext
from pytriton_lite.testing import repository_index, running_triton
from pytriton_lite.types import InferenceRequest


@pytest.fixture(autouse=True)
def fake_backends(monkeypatch):
    use_fake_backends(monkeypatch)
    monkeypatch.setattr(loader, "gpu_count", lambda: 0)


def _client(triton):
    return httpclient.InferenceServerClient(triton.http_url[len("http://") :])


def _infer(client, model: str, data: np.ndarray, name: str = "IN", out: str = "OUT"):
    tensor = httpclient.InferInput(name, data.shape, "FP32")
    tensor.set_data_from_numpy(data)
    return client.infer(model, [tensor]).as_numpy(out)


CALLER = """
import asyncio
import numpy as np
from pytriton_lite.types import InferenceRequest


def make(source, placement, context):
    mode = source.config.parameters["mode"].string_value

    def call(requests):
        assert context.model_config("identity").max_batch_size == 8
        results = []
        for r in requests:
            request = InferenceRequest(model_name="identity", inputs={"IN": r["IN"] + 1})
            if mode == "stream":
                responses = context.infer_stream(InferenceRequest(model_name="counter", inputs={"IN": r["IN"]}))
                results.append({"OUT": np.concatenate([x.outputs["OUT"] for x in responses], axis=1)})
            else:
                results.append({"OUT": context.infer(request, 10.0).outputs["OUT"]})
        return results

    async def call_async(requests):
        results = []
        for r in requests:
            if mode == "async_stream":
                parts = []
                stream = InferenceRequest(model_name="counter", inputs={"IN": r["IN"]})
                async for x in context.infer_stream_async(stream):
                    parts.append(x.outputs["OUT"])
                results.append({"OUT": np.concatenate(parts, axis=1)})
            else:
                request = InferenceRequest(model_name="identity", inputs={"IN": r["IN"] * 10})
                response = await context.infer_async(request)
                results.append({"OUT": response.outputs["OUT"]})
        return results

    return call_async if mode.startswith("async") else call
"""

COUNTER_CONFIG = """
backend: "python"
max_batch_size: 8
input [{ name: "IN" data_type: TYPE_FP32 dims: [ -1 ] }]
output [{ name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] }]
model_transaction_policy { decoupled: true }
"""
COUNTER = """
def infer(requests):
    for k in range(3):
        yield [{"OUT": requests[0]["IN"] * 0 + k}]
"""


def _caller_config(mode: str) -> str:
    return f"""
    backend: "python"
    max_batch_size: 8
    input [{{ name: "IN" data_type: TYPE_FP32 dims: [ -1 ] }}]
    output [{{ name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] }}]
    parameters {{ key: "mode" value: {{ string_value: "{mode}" }} }}
    """


def test_models_call_other_models_through_the_load_context(tmp_path):
    write_model(tmp_path, "identity")
    write_model(tmp_path, "counter", COUNTER_CONFIG, {1: COUNTER})
    for mode in ("sync", "stream", "async", "async_stream"):
        write_model(tmp_path, f"caller_{mode}", _caller_config(mode), {1: CALLER})
    with running_triton(TritonConfig(model_repository=tmp_path)) as triton:
        client = _client(triton)
        data = np.array([[1.0, 2.0]], np.float32)
        assert _infer(client, "caller_sync", data).tolist() == [[2.0, 3.0]]
        assert _infer(client, "caller_async", data).tolist() == [[10.0, 20.0]]
        assert _infer(client, "caller_stream", data).tolist() == [[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]]
        assert _infer(client, "caller_async_stream", data).tolist() == [[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]]
        client.close()


def test_the_context_refuses_blocking_calls_on_the_serving_loop_and_serves_async_ones_there(tmp_path):
    write_model(tmp_path, "identity")
    write_model(tmp_path, "counter", COUNTER_CONFIG, {1: COUNTER})
    with running_triton(TritonConfig(model_repository=tmp_path)) as triton:
        dataplane = triton._dataplane
        context = DataPlaneContext(dataplane, triton._loop)
        request = InferenceRequest(model_name="identity", inputs={"IN": np.ones((1, 2), np.float32)})
        assert context.infer(request).outputs["OUT"].tolist() == [[1.0, 1.0]]  # from this (non-loop) thread
        assert context.model_config("counter").model_transaction_policy.decoupled
        with pytest.raises(ModelNotFoundError):
            context.model_config("nosuch")

        async def on_loop():
            with pytest.raises(PyTritonInvalidOperationError, match="use the async variant"):
                context.infer(request)
            response = await context.infer_async(request)
            stream = InferenceRequest(model_name="counter", inputs={"IN": np.ones((1, 1), np.float32)})
            items = [r.outputs["OUT"].item() async for r in context.infer_stream_async(stream)]
            return response.outputs["OUT"].tolist(), items, context.model_config("identity").name

        future = asyncio.run_coroutine_threadsafe(on_loop(), triton._loop)
        assert future.result(10) == ([[1.0, 1.0]], [0.0, 1.0, 2.0], "identity")

        async def leave_early():
            stream = InferenceRequest(model_name="counter", inputs={"IN": np.ones((1, 1), np.float32)})
            async for response in context.infer_stream_async(stream):
                return response.outputs["OUT"].item()

        assert asyncio.run(leave_early()) == 0.0  # another loop: the stream is closed on the serving loop
        with pytest.raises(ModelNotFoundError):
            asyncio.run(context.infer_async(InferenceRequest(model_name="nosuch")))

        async def stream_error():
            async for _ in context.infer_stream_async(InferenceRequest(model_name="nosuch")):
                pass

        with pytest.raises(ModelNotFoundError):
            asyncio.run(stream_error())


WARMED = """
CALLS = []


def infer(requests):
    CALLS.append(requests[0]["IN"].shape)
    return [{"OUT": r["IN"]} for r in requests]


def make(source, placement, context):
    def call(requests):
        out = infer(requests)
        return [{"OUT": o["OUT"] * 0 + len(CALLS)} for o in out]
    return call
"""


def test_model_warmup_runs_on_every_instance_before_ready_and_a_failing_one_fails_the_load(tmp_path):
    write_model(
        tmp_path,
        "warm",
        """
        backend: "python"
        max_batch_size: 8
        input [{ name: "IN" data_type: TYPE_FP32 dims: [ -1 ] }]
        output [{ name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] }]
        instance_group [{ count: 2 }]
        model_warmup [{ name: "zeros" batch_size: 2 count: 2
                        inputs { key: "IN" value: { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } } }]
        """,
        {1: WARMED},
    )
    write_model(
        tmp_path,
        "cold",
        """
        backend: "python"
        input [{ name: "IN" data_type: TYPE_FP32 dims: [ 1 ] }]
        output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 1 ] }]
        model_warmup [{ name: "bad"
                        inputs { key: "NOPE" value: { data_type: TYPE_FP32 dims: [ 1 ] zero_data: true } } }]
        """,
        {1: IDENTITY},
    )
    with running_triton(TritonConfig(model_repository=tmp_path, exit_on_error=False)) as triton:
        client = _client(triton)
        # 2 instances x count 2 before READY: the first real request sees the 5th call
        assert _infer(client, "warm", np.ones((1, 1), np.float32)).tolist() == [[5.0]]
        rows = {row["name"]: row for row in repository_index(triton)}
        assert rows["cold"]["state"] == "UNAVAILABLE"
        assert rows["cold"]["reason"] == "failed to run warmup sample 'bad': KeyError: 'IN'"
        client.close()


def test_reshape_is_applied_both_ways(tmp_path):
    write_model(
        tmp_path,
        "reshaped",
        """
        backend: "python"
        max_batch_size: 4
        input [{ name: "IN" data_type: TYPE_FP32 dims: [ 1 ] reshape { shape: [ ] } }]
        output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape { shape: [ 4 ] } }]
        """,
        {1: "import numpy as np\n\ndef infer(requests):\n"
            "    return [{'OUT': np.repeat(r['IN'][:, None], 4, axis=1) * (r['IN'].ndim == 1)} for r in requests]\n"},
    )  # fmt: skip
    with running_triton(TritonConfig(model_repository=tmp_path)) as triton:
        client = _client(triton)
        out = _infer(client, "reshaped", np.array([[1.0], [2.0]], np.float32))
        assert out.shape == (2, 2, 2) and out[1].tolist() == [[2.0, 2.0], [2.0, 2.0]]
        metadata = client.get_model_metadata("reshaped")
        assert metadata["inputs"][0]["shape"] == [-1, 1] and metadata["outputs"][0]["shape"] == [-1, 2, 2]
        client.close()


def _get(triton, path):
    try:
        with urllib.request.urlopen(triton.http_url + path, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_version_policies_select_the_served_versions(tmp_path):
    config = """
    backend: "python"
    max_batch_size: 8
    input [{ name: "IN" data_type: TYPE_FP32 dims: [ -1 ] }]
    output [{ name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] }]
    """
    code = "def infer(requests):\n    return [{'OUT': r['IN'] * 0 + %d} for r in requests]\n"
    write_model(tmp_path, "latest", config, {v: code % v for v in (1, 2, 3)})
    write_model(
        tmp_path, "two", config + "version_policy { latest { num_versions: 2 } }", {v: code % v for v in (1, 2, 3)}
    )
    write_model(
        tmp_path,
        "picked",
        config + "version_policy { specific { versions: [1, 3] } }",
        {v: code % v for v in (1, 2, 3)},
    )
    with running_triton(TritonConfig(model_repository=tmp_path)) as triton:
        client = _client(triton)
        assert client.get_model_metadata("latest")["versions"] == ["3"]
        assert client.get_model_metadata("two")["versions"] == ["2", "3"]
        assert client.get_model_metadata("picked")["versions"] == ["1", "3"]
        assert _get(triton, "/v2/models/two/versions/2/ready")[0] == 200
        status, body = _get(triton, "/v2/models/two/versions/1")
        assert status == 404 and json.loads(body)["error"] == "Request for unknown model: 'two' version 1 is not found"
        data = np.zeros((1, 1), np.float32)
        assert _infer(client, "picked", data).tolist() == [[3.0]]
        tensor = httpclient.InferInput("IN", data.shape, "FP32")
        tensor.set_data_from_numpy(data)
        assert client.infer("picked", [tensor], model_version="1").as_numpy("OUT").tolist() == [[1.0]]
        with pytest.raises(InferenceServerException, match="version 2 is not found"):
            client.infer("picked", [tensor], model_version="2")
        grpc = grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])
        rows = [(m.name, m.version, m.state) for m in grpc.get_model_repository_index().models if m.name == "two"]
        assert rows == [("two", "2", "READY"), ("two", "3", "READY")]
        grpc.close()
        client.close()


def test_kind_gpu_groups_get_one_placement_per_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "gpu_count", lambda: 2)
    write_model(tmp_path, "gpu", 'backend: "python"\ninstance_group [{ count: 2, kind: KIND_GPU }]\n')
    with running_triton(TritonConfig(model_repository=tmp_path)) as triton:
        client = _client(triton)
        config = client.get_model_config("gpu")
        assert config["instance_group"][0]["gpus"] == [0, 1] and config["instance_group"][0]["kind"] == "KIND_GPU"
        client.close()
    assert events("load", "gpu")[0][3] == (
        ("gpu_0_0", "KIND_GPU", 0),
        ("gpu_0_0", "KIND_GPU", 1),
        ("gpu_0_1", "KIND_GPU", 0),
        ("gpu_0_1", "KIND_GPU", 1),
    )


def test_a_repository_model_may_not_take_the_name_of_a_bound_one(tmp_path):
    write_model(tmp_path, "taken")
    with running_triton(
        TritonConfig(model_repository=tmp_path, model_control_mode="explicit", load_model=[])
    ) as triton:
        triton.bind(
            "taken",
            lambda requests: [{"OUT": r["IN"]} for r in requests],
            inputs=[Tensor(name="IN", shape=(-1,), dtype=np.float32)],
            outputs=[Tensor(name="OUT", shape=(-1,), dtype=np.float32)],
            config=ModelConfig(max_batch_size=8),
        )
        client = _client(triton)
        with pytest.raises(InferenceServerException, match="already served"):
            client.load_model("taken")
        assert _infer(client, "taken", np.ones((1, 1), np.float32)).tolist() == [[1.0]]
        client.close()
