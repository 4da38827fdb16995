"""Triton's classification extension and image-model metadata against a live server, with the real tritonclient
on HTTP (binary and JSON outputs) and gRPC (unary and stream): ``class_count`` on a requested output returns top-K
"value:index[:label]" strings; labels come from ``Tensor(labels=...)`` at bind or from ``label_filename`` in a
repository's config.pbtxt; an input's ``format`` is served in the model config."""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.decorators import batch
from pytriton_lite.exceptions import PyTritonValidationError
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.testing import running_triton
from pytriton_lite.triton import Triton, TritonConfig

LABELS = ["red", "green", "blue"]
WAIT_S = 30.0
PROTOCOLS = ["http", "http-json", "grpc"]


@batch
def _mean_colour(IMAGE):
    # per-row mean of each channel of an NCHW image: the "scores" of three colour classes
    scores = IMAGE.reshape(IMAGE.shape[0], 3, -1).mean(axis=2).astype(np.float32)
    return {"SCORES": scores, "COUNTS": (scores * 100).astype(np.int32), "NAMES": np.full((len(IMAGE), 1), b"x")}


def _mean_colour_unbatched(requests):
    return [{"SCORES": r["IMAGE"].reshape(3, -1).mean(axis=1).astype(np.float32)} for r in requests]


def _bind(triton: Triton) -> None:
    image = Tensor(name="IMAGE", shape=(3, 2, 2), dtype=np.float32, format="FORMAT_NCHW")
    outputs = [
        Tensor(name="SCORES", shape=(3,), dtype=np.float32, labels=LABELS),
        Tensor(name="COUNTS", shape=(3,), dtype=np.int32),
        Tensor(name="NAMES", shape=(1,), dtype=bytes),
    ]
    triton.bind("colour", _mean_colour, [image], outputs, config=ModelConfig(max_batch_size=8))
    triton.bind(
        "colour_unbatched",
        _mean_colour_unbatched,
        [Tensor(name="IMAGE", shape=(3, 2, 2), dtype=np.float32, format="NCHW")],
        [Tensor(name="SCORES", shape=(3,), dtype=np.float32, labels=LABELS)],
        config=ModelConfig(batching=False),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[Triton]:
    with running_triton() as triton:
        _bind(triton)
        yield triton


def _images(rows: int) -> np.ndarray:
    """``rows`` NCHW images whose channel means are known: row r has means (r+1, 2, 3-r) / 10."""
    means = np.array([[(r + 1) / 10, 0.2, (3 - r) / 10] for r in range(rows)], dtype=np.float32)
    return np.repeat(means[:, :, None, None], 2, axis=2).repeat(2, axis=3)


def _infer(triton: Triton, protocol: str, model: str, image: np.ndarray, outputs: Dict[str, int]) -> Any:
    module: Any = grpcclient if protocol == "grpc" else httpclient
    url = triton.grpc_url if protocol == "grpc" else triton.http_url
    client = module.InferenceServerClient(url.split("://", 1)[1])
    try:
        tensor = module.InferInput("IMAGE", list(image.shape), "FP32")
        tensor.set_data_from_numpy(image, **({"binary_data": False} if protocol == "http-json" else {}))
        options = {"binary_data": False} if protocol == "http-json" else {}
        requested = [module.InferRequestedOutput(name, class_count=k, **options) for name, k in outputs.items()]
        return client.infer(model, [tensor], outputs=requested)
    finally:
        client.close()


def _strings(array: np.ndarray) -> Any:
    return np.vectorize(lambda x: x.decode() if isinstance(x, bytes) else x, otypes=[object])(array).tolist()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_batched_top_k_with_labels(server, protocol):
    result = _infer(server, protocol, "colour", _images(2), {"SCORES": 2})
    scores = result.as_numpy("SCORES")
    assert scores.shape == (2, 2)
    assert _strings(scores) == [["0.300000:2:blue", "0.200000:1:green"], ["0.200000:0:red", "0.200000:1:green"]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_without_labels_and_integer_outputs(server, protocol):
    result = _infer(server, protocol, "colour", _images(1), {"COUNTS": 1, "SCORES": 0})
    assert _strings(result.as_numpy("COUNTS")) == [["30:2"]]
    # class_count=0 is a plain output
    np.testing.assert_allclose(result.as_numpy("SCORES"), [[0.1, 0.2, 0.3]], rtol=1e-6)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_count_above_the_class_count_is_clamped(server, protocol):
    result = _infer(server, protocol, "colour", _images(1), {"SCORES": 10})
    assert _strings(result.as_numpy("SCORES")) == [["0.300000:2:blue", "0.200000:1:green", "0.100000:0:red"]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_non_batching_model_returns_one_row(server, protocol):
    result = _infer(server, protocol, "colour_unbatched", _images(1)[0], {"SCORES": 2})
    scores = result.as_numpy("SCORES")
    assert scores.shape == (2,)
    assert _strings(scores) == ["0.300000:2:blue", "0.200000:1:green"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bytes_output_is_tritons_error_and_the_server_keeps_serving(server, protocol):
    with pytest.raises(InferenceServerException) as info:
        _infer(server, protocol, "colour", _images(1), {"NAMES": 1})
    assert info.value.message().endswith(
        "class result not available for output due to unsupported type 'BYTES' for output 'NAMES' for model 'colour'"
    )
    assert info.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")
    result = _infer(server, protocol, "colour", _images(1), {"SCORES": 1})
    assert _strings(result.as_numpy("SCORES")) == [["0.300000:2:blue"]]


def test_grpc_stream_classifies_every_decoupled_response():
    def _two_responses(requests):
        for step in (1.0, 2.0):
            yield [{"SCORES": np.array([[0.5, step, 1.5]], dtype=np.float32)} for _ in requests]

    with running_triton() as triton:
        triton.bind(
            "decoupled",
            _two_responses,
            [Tensor(name="IMAGE", shape=(3, 2, 2), dtype=np.float32)],
            [Tensor(name="SCORES", shape=(3,), dtype=np.float32, labels=LABELS)],
            config=ModelConfig(max_batch_size=4, decoupled=True),
        )
        client = grpcclient.InferenceServerClient(triton.grpc_url.split("://", 1)[1])
        results: queue.Queue[Tuple[Any, Any]] = queue.Queue()
        try:
            client.start_stream(callback=lambda result, error: results.put((result, error)))
            tensor = grpcclient.InferInput("IMAGE", [1, 3, 2, 2], "FP32")
            tensor.set_data_from_numpy(_images(1))
            outputs = [grpcclient.InferRequestedOutput("SCORES", class_count=1)]
            client.async_stream_infer("decoupled", [tensor], outputs=outputs)
            got = []
            for _ in range(2):
                result, error = results.get(timeout=WAIT_S)
                assert error is None
                got.append(_strings(result.as_numpy("SCORES")))
        finally:
            client.stop_stream()
            client.close()
    assert got == [[["1.500000:2:blue"]], [["2.000000:1:green"]]]


def test_grpc_stream_classifies(server):
    client = grpcclient.InferenceServerClient(server.grpc_url.split("://", 1)[1])
    results: queue.Queue[Tuple[Any, Any]] = queue.Queue()
    try:
        client.start_stream(callback=lambda result, error: results.put((result, error)))
        tensor = grpcclient.InferInput("IMAGE", [1, 3, 2, 2], "FP32")
        tensor.set_data_from_numpy(_images(1))
        outputs = [grpcclient.InferRequestedOutput("SCORES", class_count=1)]
        client.async_stream_infer("colour", [tensor], outputs=outputs)
        result, error = results.get(timeout=WAIT_S)
        assert error is None
        assert _strings(result.as_numpy("SCORES")) == [["0.300000:2:blue"]]
    finally:
        client.stop_stream()
        client.close()


def test_served_config_has_format_and_label_filename(server):
    http = httpclient.InferenceServerClient(server.http_url.split("://", 1)[1])
    grpc_client = grpcclient.InferenceServerClient(server.grpc_url.split("://", 1)[1])
    try:
        config = http.get_model_config("colour")
        assert config["input"][0]["format"] == "FORMAT_NCHW"
        assert config["output"][0]["label_filename"] == "SCORES_labels.txt"
        assert config["output"][1]["label_filename"] == ""
        proto = grpc_client.get_model_config("colour_unbatched").config
        assert proto.input[0].format == grpcclient.model_config_pb2.ModelInput.FORMAT_NCHW
        assert proto.output[0].label_filename == "SCORES_labels.txt"
    finally:
        http.close()
        grpc_client.close()


def test_pytriton_model_client_reads_the_config(server):
    from pytriton_lite.client import ModelClient

    with ModelClient(server.http_url, "colour", init_timeout_s=WAIT_S) as client:
        result = client.infer_batch(_images(1))
    np.testing.assert_allclose(result["SCORES"], [[0.1, 0.2, 0.3]], rtol=1e-6)


def test_unnamed_output_keeps_its_labels():
    with running_triton() as triton:
        triton.bind(
            "unnamed",
            lambda requests: [{"OUTPUT_1": r["IMAGE"].reshape(3, -1).mean(axis=1)} for r in requests],
            [Tensor(name="IMAGE", shape=(3, 2, 2), dtype=np.float32)],
            [Tensor(shape=(3,), dtype=np.float32, labels=LABELS)],
            config=ModelConfig(batching=False),
        )
        client = httpclient.InferenceServerClient(triton.http_url.split("://", 1)[1])
        try:
            assert client.get_model_config("unnamed")["output"][0]["label_filename"] == "OUTPUT_1_labels.txt"
            assert client.get_model_config("unnamed")["input"][0]["format"] == "FORMAT_NONE"
        finally:
            client.close()
        result = _infer(triton, "http", "unnamed", _images(1)[0], {"OUTPUT_1": 1})
        assert _strings(result.as_numpy("OUTPUT_1")) == ["0.300000:2:blue"]


def test_bind_refuses_bad_format_and_labels():
    with pytest.raises(PyTritonValidationError, match="FORMAT_NCHW"):
        Tensor(name="X", shape=(3,), dtype=np.float32, format="NCWH")
    with pytest.raises(PyTritonValidationError, match="sequence of strings"):
        Tensor(name="X", shape=(3,), dtype=np.float32, labels="red")


# --- repository models: label_filename and format in config.pbtxt ----------------------------------------

CONFIG = """
name: "{name}"
backend: "python"
max_batch_size: 4
input [{{ name: "IMAGE" data_type: TYPE_UINT8 format: FORMAT_NHWC dims: [ 2, 2, 3 ] }}]
output [{{ name: "SCORES" data_type: TYPE_FP32 dims: [ 3 ] label_filename: "{labels}" }}]
"""
MODEL_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            image = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            scores = image.reshape(image.shape[0], -1, 3).mean(axis=1).astype(np.float32) / 255.0
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SCORES", scores)]))
        return responses
"""


def _model(root: Path, name: str, labels: str) -> None:
    (root / name / "1").mkdir(parents=True)
    (root / name / "config.pbtxt").write_text(CONFIG.format(name=name, labels=labels))
    (root / name / "1" / "model.py").write_text(MODEL_PY)


def test_repository_labels_and_format(tmp_path):
    _model(tmp_path, "nhwc", "labels.txt")
    (tmp_path / "nhwc" / "labels.txt").write_text("red\ngreen\nblue\n")
    _model(tmp_path, "missing", "nothere.txt")
    _model(tmp_path, "escapes", "../nhwc/labels.txt")
    with running_triton(TritonConfig(exit_on_error=False), model_repository=tmp_path) as triton:
        image = np.zeros((1, 2, 2, 3), dtype=np.uint8)
        image[..., 1] = 255  # green
        for protocol in ("http", "grpc"):
            module: Any = grpcclient if protocol == "grpc" else httpclient
            url = triton.grpc_url if protocol == "grpc" else triton.http_url
            client = module.InferenceServerClient(url.split("://", 1)[1])
            try:
                tensor = module.InferInput("IMAGE", [1, 2, 2, 3], "UINT8")
                tensor.set_data_from_numpy(image)
                result = client.infer("nhwc", [tensor], outputs=[module.InferRequestedOutput("SCORES", class_count=2)])
                assert _strings(result.as_numpy("SCORES")) == [["1.000000:1:green", "0.000000:0:red"]]
                config = client.get_model_config("nhwc")
                if protocol == "http":
                    assert config["input"][0]["format"] == "FORMAT_NHWC"
                    assert config["output"][0]["label_filename"] == "labels.txt"
                    index = {row["name"]: row for row in client.get_model_repository_index()}
                    assert index["missing"]["state"] == "UNAVAILABLE"
                    assert "unable to read label file 'nothere.txt'" in index["missing"]["reason"]
                    assert "must be a file in the model's folder" in index["escapes"]["reason"]
                else:
                    assert config.config.input[0].format == grpcclient.model_config_pb2.ModelInput.FORMAT_NHWC
            finally:
                client.close()
