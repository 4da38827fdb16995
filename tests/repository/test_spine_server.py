"""The repository spine end to end on real servers (port 0, loopback), with the spine's fake backend:
``TritonConfig(model_repository=...)`` beside bound models, the completed /config, broken models, exit on error,
strict readiness, version policies, instance placements, reshape, warm-up, KIND_GPU without a GPU."""

from __future__ import annotations

import json
import pathlib
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from spine_support import events, identity_repository, use_fake_backends, write_model
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.exceptions import PyTritonError
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.repository import loader
from pytriton_lite.testing import running_triton


@pytest.fixture(autouse=True)
def fake_backends(monkeypatch):
    use_fake_backends(monkeypatch)
    monkeypatch.setattr(loader, "gpu_count", lambda: 0)


def _http(triton) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(triton.http_url[len("http://") :])


def _grpc(triton) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])


def _get(triton, path: str, method: str = "GET", body: bytes = b""):
    request = urllib.request.Request(triton.http_url + path, data=body or None, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _infer_http(client, model: str, data: np.ndarray, name: str = "IN", out: str = "OUT", dtype: str = "FP32"):
    tensor = httpclient.InferInput(name, data.shape, dtype)
    tensor.set_data_from_numpy(data)
    return client.infer(model, [tensor]).as_numpy(out)


def _infer_grpc(client, model: str, data: np.ndarray, name: str = "IN", out: str = "OUT", dtype: str = "FP32"):
    tensor = grpcclient.InferInput(name, data.shape, dtype)
    tensor.set_data_from_numpy(data)
    return client.infer(model, [tensor]).as_numpy(out)


def _index(triton):
    status, body = _get(triton, "/v2/repository/index", "POST")
    assert status == 200
    return {row["name"]: row for row in json.loads(body)}


def test_repository_model_and_bound_model_answer_side_by_side(tmp_path):
    repo = identity_repository(tmp_path, "identity")
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    with running_triton(TritonConfig(model_repository=repo)) as triton:
        triton.bind(
            "bound",
            lambda requests: [{"OUT": r["IN"] * 2} for r in requests],
            inputs=[Tensor(name="IN", shape=(-1,), dtype=np.float32)],
            outputs=[Tensor(name="OUT", shape=(-1,), dtype=np.float32)],
            config=ModelConfig(max_batch_size=8),
        )
        http, grpc = _http(triton), _grpc(triton)
        for infer, client in ((_infer_http, http), (_infer_grpc, grpc)):
            assert np.array_equal(infer(client, "identity", data), data)
            assert np.array_equal(infer(client, "bound", data), data * 2)
        assert http.is_server_ready() and grpc.is_server_ready()
        assert http.is_model_ready("identity") and grpc.is_model_ready("identity")
        metadata = http.get_model_metadata("identity")
        assert metadata["platform"] == "python" and metadata["versions"] == ["1"]
        assert metadata["inputs"] == [{"name": "IN", "datatype": "FP32", "shape": [-1, -1]}]
        index = {m.name: m for m in grpc.get_model_repository_index().models}
        assert (index["identity"].state, index["bound"].state) == ("READY", "READY")
        http.close()
        grpc.close()
    assert [e[:3] for e in events("load")] == [("load", "identity", 1)]
    assert events("finalize") == [("finalize", "identity", 1)]  # stop() finalizes the repository's models


def test_config_endpoint_shows_the_completed_config(tmp_path):
    write_model(
        tmp_path,
        "tg",
        """
        backend: "python"
        max_batch_size: 4
        input [{ name: "PROMPT" data_type: TYPE_STRING dims: [ 1 ] }]
        output [{ name: "TEXT" data_type: TYPE_STRING dims: [ 1 ] }]
        instance_group [{ count: 2, kind: KIND_CPU }]
        dynamic_batching { max_queue_delay_microseconds: 1000 }
        """,
        {1: "def infer(requests):\n    return [{'TEXT': r['PROMPT']} for r in requests]\n"},
    )
    with running_triton(TritonConfig(model_repository=tmp_path)) as triton:
        status, body = _get(triton, "/v2/models/tg/config")
        assert status == 200
        config = json.loads(body)
        assert config["name"] == "tg" and config["backend"] == "python" and config["platform"] == ""
        assert config["version_policy"] == {"latest": {"num_versions": 1}}
        assert config["instance_group"][0]["name"] == "tg_0"
        assert config["instance_group"][0]["kind"] == "KIND_CPU" and config["instance_group"][0]["count"] == 2
        assert config["default_model_filename"] == "model.py"
        assert config["dynamic_batching"]["preferred_batch_size"] == [4]
        assert config["input"][0]["dims"] == [1]  # numbers, as Triton renders int64
        assert config["optimization"]["input_pinned_memory"] == {"enable": True}
        grpc = _grpc(triton)
        served = grpc.get_model_config("tg").config
        assert served.instance_group[0].count == 2 and served.max_batch_size == 4
        text = np.array([[b"hello"], [b"world"]], dtype=object)
        assert _infer_grpc(grpc, "tg", text, "PROMPT", "TEXT", "BYTES").tolist() == text.tolist()
        grpc.close()
    placements = events("load", "tg")[0][3]
    assert placements == (("tg_0_0", "KIND_CPU", 0), ("tg_0_1", "KIND_CPU", 0))


def _broken_repository(root: pathlib.Path) -> pathlib.Path:
    identity_repository(root, "good")
    write_model(root, "bad_syntax", 'backend: "python"\nmax_batch_size: 8\ninput [ { name: "IN" }\noutput [ ]\n')
    write_model(root, "bad_backend", 'backend: "pyhton"\n')
    write_model(root, "bad_platform", 'platform: "onnxruntime_onxx"\n')
    write_model(root, "bad_name", 'name: "other_name"\nbackend: "python"\n')
    write_model(root, "bad_init", versions={1: "def initialize(source, placements):\n    raise KeyError('scale')\n"})
    write_model(root, "no_file", versions={1: None})
    write_model(root, "no_version", versions={})
    write_model(root, "gpu_only", 'backend: "python"\ninstance_group [{ kind: KIND_GPU }]\n')
    return root


def test_broken_models_are_unavailable_with_their_reason_and_the_others_serve(tmp_path):
    repo = _broken_repository(tmp_path)
    config = TritonConfig(model_repository=repo, exit_on_error=False, model_control_mode="none")
    with running_triton(config) as triton:
        index = _index(triton)
        assert index["good"] == {"name": "good", "version": "1", "state": "READY"}
        reasons = {name: row.get("reason", "") for name, row in index.items() if name != "good"}
        assert all(index[name]["state"] == "UNAVAILABLE" for name in reasons)
        assert reasons["bad_syntax"].startswith(f"{repo / 'bad_syntax' / 'config.pbtxt'}:4:1: ")
        assert "Expected" in reasons["bad_syntax"]
        assert reasons["bad_backend"] == (
            "unable to find backend library for backend 'pyhton', try specifying runtime on the model configuration."
        )
        assert reasons["bad_platform"] == "unexpected platform type 'onnxruntime_onxx' for bad_platform"
        assert reasons["bad_name"] == (
            "unexpected directory name 'bad_name' for model 'other_name', directory name must equal model name"
        )
        assert reasons["bad_init"] == "KeyError: 'scale'"
        assert reasons["no_file"].startswith("model file not found: ") and reasons["no_file"].endswith("model.py'")
        assert reasons["no_version"] == (
            "at least one version must be available under the version policy of model 'no_version'"
        )
        assert "version" not in index["no_version"]
        assert reasons["gpu_only"] == (
            "instance group gpu_only_0 of model gpu_only has kind KIND_GPU but no GPUs are available"
        )
        # the reason reaches the clients of the model too; the server is live but not ready (strict readiness)
        status, body = _get(triton, "/v2/models/bad_init")
        assert status == 404
        assert (
            json.loads(body)["error"]
            == "Request for unknown model: 'bad_init' has no available versions: KeyError: 'scale'"
        )
        assert _get(triton, "/v2/models/bad_init/ready")[0] == 404
        assert _get(triton, "/v2/health/live")[0] == 200
        assert _get(triton, "/v2/health/ready")[0] == 400
        grpc = _grpc(triton)
        rows = {m.name: m for m in grpc.get_model_repository_index().models}
        assert rows["bad_init"].state == "UNAVAILABLE" and rows["bad_init"].reason == "KeyError: 'scale'"
        assert not grpc.is_server_ready() and grpc.is_server_live()
        with pytest.raises(InferenceServerException, match="has no available versions"):
            _infer_grpc(grpc, "bad_init", np.zeros((1, 2), np.float32))
        assert np.array_equal(_infer_grpc(grpc, "good", np.ones((1, 2), np.float32)), np.ones((1, 2)))
        grpc.close()


def test_without_strict_readiness_the_server_is_ready_beside_broken_models(tmp_path):
    repo = _broken_repository(tmp_path)
    config = TritonConfig(model_repository=repo, exit_on_error=False, strict_readiness=False)
    with running_triton(config) as triton:
        assert _get(triton, "/v2/health/ready")[0] == 200
        assert _index(triton)["bad_init"]["state"] == "UNAVAILABLE"


def test_exit_on_error_fails_the_start_naming_the_model_and_the_reason(tmp_path):
    identity_repository(tmp_path, "good")
    write_model(
        tmp_path, "bad_init", versions={1: "def initialize(source, placements):\n    raise KeyError('scale')\n"}
    )
    with pytest.raises(PyTritonError) as caught:
        with running_triton(TritonConfig(model_repository=tmp_path)):
            pass  # pragma: no cover - the start fails
    message = str(caught.value)
    assert message.startswith("failed to load all models: load failed for model 'bad_init': ")
    assert "version 1 is at UNAVAILABLE state: KeyError: 'scale'" in message
    assert events("finalize", "good") == [("finalize", "good", 1)]  # what did load is unloaded again
