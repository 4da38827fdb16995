"""Ensembles end to end: a repository with two python models (preprocess -> classifier) and an ensemble over
them, served by a real server from ``TritonConfig(model_repository=...)``, called with tritonclient HTTP and
gRPC."""

from __future__ import annotations

import pathlib
import textwrap
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.testing import model_statistics, running_triton
from pytriton_lite.triton import Triton

pytest.importorskip("pytriton_lite.repository.loader", reason="the repository loader is not there yet")
pytest.importorskip("pytriton_lite.repository.backends.python", reason="the python backend is not there yet")

WEIGHTS = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 1.0], [-1.0, 3.0]], dtype=np.float32)

PREPROCESS_CONFIG = """
name: "preprocess"
backend: "python"
max_batch_size: 8
input [{ name: "RAW" data_type: TYPE_FP32 dims: [ 4 ] }]
output [{ name: "FEATURES" data_type: TYPE_FP32 dims: [ 4 ] }]
"""
PREPROCESS = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "RAW").as_numpy()
            if (raw < 0).any():
                error = pb_utils.TritonError("RAW must be >= 0", pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
                continue
            features = (raw / raw.sum(axis=1, keepdims=True)).astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("FEATURES", features)]))
        return responses
"""
CLASSIFIER_CONFIG = """
name: "classifier"
backend: "python"
max_batch_size: 8
input [{ name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] }]
output [
  { name: "SCORES" data_type: TYPE_FP32 dims: [ 2 ] },
  { name: "LABEL" data_type: TYPE_STRING dims: [ 1 ] }
]
dynamic_batching { max_queue_delay_microseconds: 200000 }
"""
CLASSIFIER = f"""
import numpy as np
import triton_python_backend_utils as pb_utils

WEIGHTS = np.array({WEIGHTS.tolist()!r}, dtype=np.float32)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT__0").as_numpy()
            scores = (x @ WEIGHTS).astype(np.float32)
            labels = np.array([[b"cat" if s[0] >= s[1] else b"dog"] for s in scores], dtype=object)
            responses.append(
                pb_utils.InferenceResponse([pb_utils.Tensor("SCORES", scores), pb_utils.Tensor("LABEL", labels)])
            )
        return responses
"""
ENSEMBLE_CONFIG = """
name: "ens"
platform: "ensemble"
max_batch_size: 8
input [{ name: "IMAGE" data_type: TYPE_FP32 dims: [ 4 ] }]
output [
  { name: "SCORES" data_type: TYPE_FP32 dims: [ 2 ] },
  { name: "LABEL" data_type: TYPE_STRING dims: [ 1 ] }
]
ensemble_scheduling {
  step [
    {
      model_name: "preprocess"
      model_version: -1
      input_map { key: "RAW" value: "IMAGE" }
      output_map { key: "FEATURES" value: "features" }
    },
    {
      model_name: "classifier"
      model_version: -1
      input_map { key: "INPUT__0" value: "features" }
      output_map [{ key: "SCORES" value: "SCORES" }, { key: "LABEL" value: "LABEL" }]
    }
  ]
}
"""


def _write(root: pathlib.Path, files: Dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    repository = tmp_path_factory.mktemp("repository")
    _write(
        repository,
        {
            "preprocess/config.pbtxt": PREPROCESS_CONFIG,
            "preprocess/1/model.py": PREPROCESS,
            "classifier/config.pbtxt": CLASSIFIER_CONFIG,
            "classifier/1/model.py": CLASSIFIER,
            "ens/config.pbtxt": ENSEMBLE_CONFIG,
        },
    )
    (repository / "ens" / "1").mkdir()  # an ensemble's version folder is empty
    with running_triton(TritonConfig(model_repository=repository)) as triton:
        yield triton


def _expected(image: np.ndarray) -> np.ndarray:
    return ((image / image.sum(axis=1, keepdims=True)) @ WEIGHTS).astype(np.float32)


IMAGE = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 0.0, 0.0, 1.0]], dtype=np.float32)


def test_http_infer_through_the_ensemble(server: Triton):
    with httpclient.InferenceServerClient(server.http_url[7:]) as client:
        assert client.is_model_ready("ens")
        assert client.get_model_metadata("ens")["platform"] == "ensemble"
        inp = httpclient.InferInput("IMAGE", list(IMAGE.shape), "FP32")
        inp.set_data_from_numpy(IMAGE)
        result = client.infer("ens", [inp])
    np.testing.assert_allclose(result.as_numpy("SCORES"), _expected(IMAGE), rtol=1e-6)
    assert result.as_numpy("LABEL").tolist() == [[b"dog"], [b"cat"]]


def test_grpc_infer_through_the_ensemble_asking_for_one_output(server: Triton):
    with grpcclient.InferenceServerClient(server.grpc_url[7:]) as client:
        assert client.get_model_metadata("ens").platform == "ensemble"
        inp = grpcclient.InferInput("IMAGE", list(IMAGE.shape), "FP32")
        inp.set_data_from_numpy(IMAGE)
        result = client.infer("ens", [inp], outputs=[grpcclient.InferRequestedOutput("LABEL")])
    assert result.as_numpy("LABEL").tolist() == [[b"dog"], [b"cat"]]
    assert result.as_numpy("SCORES") is None


def test_a_step_error_names_the_step_and_keeps_its_status(server: Triton):
    bad = -IMAGE
    with httpclient.InferenceServerClient(server.http_url[7:]) as client:
        inp = httpclient.InferInput("IMAGE", list(bad.shape), "FP32")
        inp.set_data_from_numpy(bad)
        with pytest.raises(InferenceServerException) as info:
            client.infer("ens", [inp])
    assert info.value.status() == "400"
    assert "in ensemble 'ens', model 'preprocess'" in info.value.message()
    assert "RAW must be >= 0" in info.value.message()
    with grpcclient.InferenceServerClient(server.grpc_url[7:]) as client:
        inp = grpcclient.InferInput("IMAGE", list(bad.shape), "FP32")
        inp.set_data_from_numpy(bad)
        with pytest.raises(InferenceServerException) as info:
            client.infer("ens", [inp])
    assert info.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT)
    assert "in ensemble 'ens', model 'preprocess'" in info.value.message()


def test_a_wrong_request_is_refused_by_the_ensemble_itself(server: Triton):
    with httpclient.InferenceServerClient(server.http_url[7:]) as client:
        inp = httpclient.InferInput("IMAGE", [1, 3], "FP32")
        inp.set_data_from_numpy(np.ones((1, 3), dtype=np.float32))
        with pytest.raises(InferenceServerException) as info:
            client.infer("ens", [inp])
    assert info.value.status() == "400"
    assert "for model 'ens'" in info.value.message()


def test_concurrent_ensemble_requests_are_batched_by_the_step(server: Triton):
    before = model_statistics(server, "classifier")
    count = 6

    def one(i: int) -> np.ndarray:
        image = IMAGE[:1] + i
        with httpclient.InferenceServerClient(server.http_url[7:]) as client:
            inp = httpclient.InferInput("IMAGE", list(image.shape), "FP32")
            inp.set_data_from_numpy(image)
            scores: np.ndarray = client.infer("ens", [inp]).as_numpy("SCORES")
        np.testing.assert_allclose(scores, _expected(image), rtol=1e-6)
        return scores

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(one, range(count)))
    after = model_statistics(server, "classifier")
    inferences = after.inference_count - before.inference_count
    executions = after.execution_count - before.execution_count
    assert inferences == count
    assert executions < count  # the classifier's batcher merged requests coming through the ensemble
    ensemble = model_statistics(server, "ens")
    assert ensemble.inference_count >= count


def _bad_ensemble(name: str, *, max_batch_size: int = 8, extra_input: str = "", step_model: str = "preprocess") -> str:
    return (
        ENSEMBLE_CONFIG.replace('name: "ens"', f'name: "{name}"')
        .replace("max_batch_size: 8", f"max_batch_size: {max_batch_size}")
        .replace('input [{ name: "IMAGE" data_type: TYPE_FP32 dims: [ 4 ] }]', f"input [{extra_input}]")
        .replace('model_name: "preprocess"', f'model_name: "{step_model}"')
    )


def test_broken_ensembles_are_unavailable_with_the_reason_and_the_rest_serves(tmp_path: pathlib.Path):
    image = '{ name: "IMAGE" data_type: TYPE_FP32 dims: [ 4 ] }'
    spare = image + ', { name: "SPARE" data_type: TYPE_FP32 dims: [ 4 ] }'
    files = {
        "preprocess/config.pbtxt": PREPROCESS_CONFIG,
        "preprocess/1/model.py": PREPROCESS,
        "classifier/config.pbtxt": CLASSIFIER_CONFIG,
        "classifier/1/model.py": CLASSIFIER,
        "ens/config.pbtxt": ENSEMBLE_CONFIG,
        "too_wide/config.pbtxt": _bad_ensemble("too_wide", max_batch_size=16, extra_input=image),
        "unused_input/config.pbtxt": _bad_ensemble("unused_input", extra_input=spare),
        "missing_step/config.pbtxt": _bad_ensemble("missing_step", extra_input=image, step_model="absent"),
    }
    _write(tmp_path, files)
    for name in ("ens", "too_wide", "unused_input", "missing_step"):
        (tmp_path / name / "1").mkdir()
    with running_triton(TritonConfig(model_repository=tmp_path, exit_on_error=False)) as triton:
        with httpclient.InferenceServerClient(triton.http_url[7:]) as client:
            index = {row["name"]: row for row in client.get_model_repository_index()}
            assert client.is_model_ready("ens")
            inp = httpclient.InferInput("IMAGE", list(IMAGE.shape), "FP32")
            inp.set_data_from_numpy(IMAGE)
            np.testing.assert_allclose(client.infer("ens", [inp]).as_numpy("SCORES"), _expected(IMAGE), rtol=1e-6)
    assert index["too_wide"]["state"] == "UNAVAILABLE"
    assert (
        "ensemble 'too_wide' allows maximum batch size 16, but it contains model 'preprocess'"
        in (index["too_wide"]["reason"])
    )
    assert index["unused_input"]["state"] == "UNAVAILABLE"
    assert "ensemble input 'SPARE' is not used by any step" in index["unused_input"]["reason"]
    assert index["missing_step"]["state"] == "UNAVAILABLE"
    assert "'absent'" in index["missing_step"]["reason"]
