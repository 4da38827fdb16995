"""A TorchScript model of a repository served end to end: the tutorial's mnist-cnn layout (``model_input`` by
forward()'s argument name), tritonclient HTTP and gRPC, curl-style JSON, and a config without tensors."""

from __future__ import annotations

import pathlib
import warnings
from typing import Any, Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import httpx  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402

from pytriton_lite.config import TritonConfig  # noqa: E402
from pytriton_lite.testing import running_triton  # noqa: E402


class MnistCnn(torch.nn.Module):
    """[b, 1, 16, 16] -> conv 3x3 -> relu -> max-pool -> linear -> [b, 10] (and the argmax as a 2nd output)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 7 * 7, 10)

    def forward(self, model_input: torch.Tensor) -> Any:
        logits = self.fc(torch.max_pool2d(torch.relu(self.conv(model_input)), 2).flatten(1))
        return logits, logits.argmax(1)


CNN_CONFIG = """
name: "mnist_cnn"
platform: "pytorch_libtorch"
max_batch_size: 16
input [ { name: "model_input" data_type: TYPE_FP32 dims: [ 1, 16, 16 ] } ]
output [
  { name: "output__0" data_type: TYPE_FP32 dims: [ 10 ] },
  { name: "output__1" data_type: TYPE_INT64 dims: [ 1 ] reshape: { shape: [ ] } }
]
instance_group [ { count: 2, kind: KIND_CPU } ]
dynamic_batching { }
"""


@pytest.fixture(scope="module")
def cnn() -> Any:
    return MnistCnn().eval()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cnn: Any) -> Iterator[Any]:
    repo: pathlib.Path = tmp_path_factory.mktemp("torch_repository")
    for name, config in (("mnist_cnn", CNN_CONFIG), ("no_tensors", 'backend: "pytorch"')):
        (repo / name / "1").mkdir(parents=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.x deprecates TorchScript
            torch.jit.save(torch.jit.trace(cnn, torch.zeros(1, 1, 16, 16)), str(repo / name / "1" / "model.pt"))
        (repo / name / "config.pbtxt").write_text(config)
    with running_triton(TritonConfig(model_repository=repo, exit_on_error=False, strict_readiness=False)) as triton:
        yield triton


def _expected(cnn: Any, x: np.ndarray) -> Any:
    with torch.no_grad():
        logits, labels = cnn(torch.from_numpy(x))
    return logits.numpy(), labels.numpy().reshape(-1, 1)


def test_http_and_grpc(server, cnn):
    x = np.random.default_rng(0).random((3, 1, 16, 16), dtype=np.float32)
    logits, labels = _expected(cnn, x)
    http = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        inp = httpclient.InferInput("model_input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = http.infer("mnist_cnn", [inp])
        np.testing.assert_allclose(result.as_numpy("output__0"), logits, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(result.as_numpy("output__1"), labels)
        ginp = grpcclient.InferInput("model_input", list(x.shape), "FP32")
        ginp.set_data_from_numpy(x)
        out = grpcclient.InferRequestedOutput("output__1")
        result = grpc.infer("mnist_cnn", [ginp], outputs=[out])
        np.testing.assert_array_equal(result.as_numpy("output__1"), labels)
        assert result.as_numpy("output__0") is None
    finally:
        http.close()
        grpc.close()


def test_curl_style_json(server, cnn):
    x = np.random.default_rng(1).random((1, 1, 16, 16), dtype=np.float32)
    body = {"inputs": [{"name": "model_input", "shape": [1, 1, 16, 16], "datatype": "FP32", "data": x.tolist()}]}
    response = httpx.post(f"http://127.0.0.1:{server.http_port}/v2/models/mnist_cnn/infer", json=body, timeout=10)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["output__0"]["shape"] == [1, 10] and outputs["output__1"]["shape"] == [1, 1]
    logits, labels = _expected(cnn, x)
    np.testing.assert_allclose(outputs["output__0"]["data"], logits[0], rtol=1e-4, atol=1e-5)
    assert outputs["output__1"]["data"] == labels.ravel().tolist()


def test_a_config_without_tensors_is_unavailable_with_the_reason(server):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    try:
        index = {m["name"]: m for m in client.get_model_repository_index()}
        assert index["mnist_cnn"]["state"] == "READY"
        assert index["no_tensors"]["state"] == "UNAVAILABLE"
        assert "does not auto-complete inputs and outputs" in index["no_tensors"]["reason"]
    finally:
        client.close()
