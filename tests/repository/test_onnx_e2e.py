"""ONNX models of a repository served end to end: TritonConfig(model_repository=...), tritonclient HTTP and gRPC,
curl-style JSON, the auto-completed /config, batching seen in the statistics, and a broken model's reason."""

from __future__ import annotations

import pathlib
import queue
from typing import Any, Iterator

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import httpx  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from pytriton_lite.config import TritonConfig  # noqa: E402
from pytriton_lite.testing import running_triton  # noqa: E402

RNG = np.random.default_rng(7)
W1 = (RNG.standard_normal((784, 16)) * 0.05).astype(np.float32)
B1 = RNG.standard_normal(16).astype(np.float32)
W2 = RNG.standard_normal((16, 10)).astype(np.float32)
B2 = RNG.standard_normal(10).astype(np.float32)


def reference(x: np.ndarray) -> np.ndarray:
    return np.maximum(x.reshape(x.shape[0], -1) @ W1 + B1, 0) @ W2 + B2


def mnist_mlp() -> Any:
    """The tutorial's MNIST MLP: [batch, 1, 28, 28] -> Flatten -> 784x16 -> Relu -> 16x10 -> logits."""
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "B1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W2"], ["h3"]),
        helper.make_node("Add", ["h3", "B2"], ["logits"]),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((W1, "W1"), (B1, "B1"), (W2, "W2"), (B2, "B2"))]
    graph = helper.make_graph(
        nodes,
        "mnist_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


MNIST_CONFIG = """
name: "mnist_mlp"
platform: "onnxruntime_onnx"
max_batch_size: 8192
input [ { name: "input" data_type: TYPE_FP32 dims: [ 1, 28, 28 ] } ]
output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]
instance_group [ { count: 2, kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 50000 }
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
"""

BROKEN_CONFIG = """
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "pixels" data_type: TYPE_FP32 dims: [ 1, 28, 28 ] } ]
output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]
"""


def _add(repo: pathlib.Path, name: str, config: str = "", with_config: bool = True) -> None:
    (repo / name / "1").mkdir(parents=True)
    onnx.save(mnist_mlp(), str(repo / name / "1" / "model.onnx"))
    if with_config:
        (repo / name / "config.pbtxt").write_text(config)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    repo = tmp_path_factory.mktemp("onnx_repository")
    _add(repo, "mnist_mlp", MNIST_CONFIG)
    _add(repo, "auto_mlp", 'backend: "onnxruntime"')
    _add(repo, "broken", BROKEN_CONFIG)
    _add(repo, "bare", with_config=False)  # a model.onnx and no config.pbtxt at all
    with running_triton(TritonConfig(model_repository=repo, exit_on_error=False, strict_readiness=False)) as triton:
        yield triton


def _images(n: int) -> np.ndarray:
    return RNG.random((n, 1, 28, 28), dtype=np.float32)


def test_http_infer_matches_numpy(server):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    try:
        x = _images(3)
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=True)
        result = client.infer("mnist_mlp", [inp])
        np.testing.assert_allclose(result.as_numpy("logits"), reference(x), rtol=1e-4, atol=1e-4)
        assert client.is_model_ready("auto_mlp")
    finally:
        client.close()


def test_curl_style_json(server):
    x = _images(1)
    body = {"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": x.ravel().tolist()}]}
    response = httpx.post(f"http://127.0.0.1:{server.http_port}/v2/models/mnist_mlp/infer", json=body, timeout=10)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["name"] == "logits" and output["shape"] == [1, 10]
    np.testing.assert_allclose(np.array(output["data"], np.float32), reference(x)[0], rtol=1e-4, atol=1e-4)


def test_grpc_concurrent_requests_are_batched(server):
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        before = client.get_inference_statistics("mnist_mlp", as_json=True)["model_stats"][0]
        results: queue.Queue[Any] = queue.Queue()
        images = [_images(2) for _ in range(16)]
        for x in images:
            inp = grpcclient.InferInput("input", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            client.async_infer("mnist_mlp", [inp], lambda result, error, x=x: results.put((x, result, error)))
        for _ in images:
            x, result, error = results.get(timeout=30)
            assert error is None, error
            np.testing.assert_allclose(result.as_numpy("logits"), reference(x), rtol=1e-4, atol=1e-4)
        after = client.get_inference_statistics("mnist_mlp", as_json=True)["model_stats"][0]
        inferences = int(after.get("inference_count", 0)) - int(before.get("inference_count", 0))
        executions = int(after.get("execution_count", 0)) - int(before.get("execution_count", 0))
        assert inferences == 32 and executions < 16  # requests were concatenated along dim 0
    finally:
        client.close()


def test_auto_completed_config_over_both_protocols(server):
    http = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        config = http.get_model_config("auto_mlp")
        assert config["max_batch_size"] == 4 and "dynamic_batching" in config
        assert [(i["name"], i["data_type"], i["dims"]) for i in config["input"]] == [
            ("input", "TYPE_FP32", [1, 28, 28])
        ]
        assert [(o["name"], o["dims"]) for o in config["output"]] == [("logits", [10])]
        proto = grpc.get_model_config("auto_mlp").config
        assert proto.max_batch_size == 4 and [list(i.dims) for i in proto.input] == [[1, 28, 28]]
        x = _images(4)
        inp = grpcclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        np.testing.assert_allclose(grpc.infer("auto_mlp", [inp]).as_numpy("logits"), reference(x), rtol=1e-4, atol=1e-4)
    finally:
        http.close()
        grpc.close()


def test_a_bare_model_onnx_needs_no_config(server):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    try:
        config = client.get_model_config("bare")
        assert (config["platform"], config["backend"], config["max_batch_size"]) == (
            "onnxruntime_onnx",
            "onnxruntime",
            4,
        )
        metadata = client.get_model_metadata("bare")
        assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
        x = _images(2)
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        np.testing.assert_allclose(client.infer("bare", [inp]).as_numpy("logits"), reference(x), rtol=1e-4, atol=1e-4)
    finally:
        client.close()


def test_broken_model_is_unavailable_with_the_reason(server):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    try:
        index = {m["name"]: m for m in client.get_model_repository_index()}
        assert index["mnist_mlp"]["state"] == "READY"
        assert index["broken"]["state"] == "UNAVAILABLE"
        assert "unexpected inference input 'pixels', allowed inputs are: input" in index["broken"]["reason"]
        assert not client.is_model_ready("broken")
    finally:
        client.close()
