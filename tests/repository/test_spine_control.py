"""Model control on real servers with the spine's fake backend: explicit load/unload over HTTP and gRPC
(tritonclient and curl-like raw requests), JSON config overrides, reload failures that keep the old version,
draining unloads, ensembles that load their steps, NONE mode refusals and POLL mode."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request

import grpc as grpc_module
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from spine_support import IDENTITY, events, identity_repository, use_fake_backends, write_model
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.repository import loader
from pytriton_lite.testing import running_triton, wait_until

DISABLED = "explicit model load / unload is not allowed if polling is enabled"


@pytest.fixture(autouse=True)
def fake_backends(monkeypatch):
    use_fake_backends(monkeypatch)
    monkeypatch.setattr(loader, "gpu_count", lambda: 0)


def _post(triton, path: str, body: bytes = b""):
    request = urllib.request.Request(triton.http_url + path, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _index(triton):
    status, body = _post(triton, "/v2/repository/index")
    assert status == 200
    return {row["name"]: row for row in json.loads(body)}


def _clients(triton):
    return (
        httpclient.InferenceServerClient(triton.http_url[len("http://") :]),
        grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :]),
    )


def _infer(client, module, model: str, data: np.ndarray):
    tensor = module.InferInput("IN", data.shape, "FP32")
    tensor.set_data_from_numpy(data)
    return client.infer(model, [tensor]).as_numpy("OUT")


def test_explicit_load_and_unload_over_http_and_grpc(tmp_path):
    identity_repository(tmp_path, "a", "b")
    config = TritonConfig(model_repository=tmp_path, model_control_mode="explicit", load_model=["a"])
    with running_triton(config) as triton:
        http, grpc = _clients(triton)
        # b is in the repository but not loaded: the index lists it by name only (Triton's "no state")
        assert _index(triton)["b"] == {"name": "b"}
        assert not http.is_model_ready("b")
        grpc.load_model("b")
        assert http.is_model_ready("b")
        data = np.ones((1, 2), np.float32)
        assert np.array_equal(_infer(http, httpclient, "b", data), data)
        http.unload_model("b")
        wait_until(lambda: _index(triton)["b"].get("state") == "UNAVAILABLE")
        assert _index(triton)["b"] == {"name": "b", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"}
        assert events("finalize", "b") == [("finalize", "b", 1)]
        with pytest.raises(InferenceServerException, match="has no available versions"):
            _infer(grpc, grpcclient, "b", data)
        http.load_model("b")  # loads again after an unload
        assert grpc.is_model_ready("b") and _index(triton)["b"]["state"] == "READY"
        grpc.unload_model("a")
        wait_until(lambda: _index(triton)["a"].get("reason") == "unloaded")
        http.unload_model("nosuch")  # Triton: 200
        grpc.unload_model("nosuch")
        http.close()
        grpc.close()


def test_load_errors_have_triton_texts_and_client_statuses(tmp_path):
    identity_repository(tmp_path, "a")
    write_model(
        tmp_path, "bad_init", versions={1: "def initialize(source, placements):\n    raise KeyError('scale')\n"}
    )
    config = TritonConfig(model_repository=tmp_path, model_control_mode="explicit", load_model=[])
    with running_triton(config) as triton:
        status, body = _post(triton, "/v2/repository/models/nosuch/load")
        assert (status, json.loads(body)) == (
            404,
            {"error": "failed to load 'nosuch', failed to poll from model repository"},
        )
        status, body = _post(triton, "/v2/repository/models/a/load", b'{"parameters": {"config": "{not json"}}')
        assert status == 400 and json.loads(body)["error"].startswith(
            "load failed for model 'a': failed to load 'a', failed to poll from model repository"
        )
        status, body = _post(triton, "/v2/repository/models/a/load", b'{"parameters": 5}')
        assert status == 400
        status, body = _post(triton, "/v2/repository/models/bad_init/load")
        assert status == 400
        assert json.loads(body)["error"] == (
            "load failed for model 'bad_init': version 1 is at UNAVAILABLE state: KeyError: 'scale'"
        )
        status, body = _post(triton, "/v2/repository/models/a/load", b'{"parameters": {"file:1/model.py": "eA=="}}')
        assert (status, json.loads(body)) == (
            400,
            {"error": "failed to load 'a': a load with 'file:' parameters must also carry the model's 'config'"},
        )
        status, body = _post(triton, "/v2/repository/models/a/unload", b'{"parameters": {"unload_dependents": 1}}')
        assert status == 400
        _, grpc = _clients(triton)
        with pytest.raises(InferenceServerException) as caught:
            grpc.load_model("nosuch")
        assert caught.value.status() == "StatusCode.NOT_FOUND"
        with pytest.raises(InferenceServerException) as caught:
            grpc.load_model("bad_init")
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert "KeyError: 'scale'" in caught.value.message()
        assert _index(triton)["bad_init"]["state"] == "UNAVAILABLE"
        grpc.close()


def test_load_with_a_json_config_override_then_without_it(tmp_path):
    identity_repository(tmp_path, "a")
    config = TritonConfig(model_repository=tmp_path, model_control_mode="explicit", load_model=["a"])
    with running_triton(config) as triton:
        http, grpc = _clients(triton)
        assert http.get_model_config("a")["max_batch_size"] == 8
        override = json.dumps(
            {
                "backend": "python",
                "max_batch_size": 2,
                "input": [{"name": "IN", "data_type": "TYPE_FP32", "dims": [-1]}],
                "output": [{"name": "OUT", "data_type": "TYPE_FP32", "dims": [-1]}],
            }
        )
        http.load_model("a", config=override)
        assert http.get_model_config("a")["max_batch_size"] == 2
        with pytest.raises(InferenceServerException, match="batch-size must be <= 2"):
            _infer(http, httpclient, "a", np.ones((3, 1), np.float32))
        grpc.load_model("a", config=override.replace('"max_batch_size": 2', '"max_batch_size": 3'))
        assert grpc.get_model_config("a").config.max_batch_size == 3
        grpc.load_model("a")  # no override: config.pbtxt again
        assert http.get_model_config("a")["max_batch_size"] == 8
        http.close()
        grpc.close()


def test_a_reload_whose_initialize_fails_keeps_the_old_version_serving(tmp_path):
    folder = identity_repository(tmp_path, "a") / "a"
    config = TritonConfig(model_repository=tmp_path, model_control_mode="explicit", load_model=["*"])
    with running_triton(config) as triton:
        http, _ = _clients(triton)
        (folder / "1" / "model.py").write_text("def initialize(source, placements):\n    raise KeyError('scale')\n")
        with pytest.raises(InferenceServerException, match="version 1 is at UNAVAILABLE state: KeyError: 'scale'"):
            http.load_model("a")
        data = np.ones((1, 2), np.float32)
        assert np.array_equal(_infer(http, httpclient, "a", data), data)  # the old load still answers
        assert _index(triton)["a"] == {"name": "a", "version": "1", "state": "READY"}
        assert http.is_server_ready()
        (folder / "1" / "model.py").write_text(
            "def infer(requests):\n    return [{'OUT': r['IN'] + 1} for r in requests]\n"
        )
        http.load_model("a")  # a good reload replaces it without a gap
        assert np.array_equal(_infer(http, httpclient, "a", data), data + 1)
        wait_until(lambda: len(events("finalize", "a")) == 1)  # the replaced load was finalized
        http.close()


SLOW = """
import time

def infer(requests):
    time.sleep(0.5)
    return [{"OUT": r["IN"]} for r in requests]
"""


def test_unload_drains_in_flight_requests(tmp_path):
    write_model(tmp_path, "slow", versions={1: SLOW})
    config = TritonConfig(model_repository=tmp_path, model_control_mode="explicit", load_model=["slow"])
    with running_triton(config) as triton:
        http, _ = _clients(triton)
        results = []
        worker = threading.Thread(
            target=lambda: results.append(_infer(http, httpclient, "slow", np.ones((1, 1), np.float32)))
        )
        worker.start()
        wait_until(
            lambda: (
                _index(triton)["slow"]["state"] == "READY"
                and triton._on_loop(lambda dp: dp.entry("slow").batcher.in_flight) == 1
            )
        )
        unload_client = httpclient.InferenceServerClient(triton.http_url[len("http://") :])
        started = time.monotonic()
        unload_client.unload_model("slow")
        assert time.monotonic() - started < 0.4  # answered at once, drained in the background
        assert _index(triton)["slow"]["state"] == "UNLOADING"
        worker.join(10)
        assert len(results) == 1 and results[0].tolist() == [[1.0]]
        wait_until(lambda: _index(triton)["slow"].get("reason") == "unloaded")
        unload_client.close()
        http.close()


def test_none_mode_refuses_load_and_unload_with_triton_text(tmp_path):
    identity_repository(tmp_path, "a")
    with running_triton(TritonConfig(model_repository=tmp_path, model_control_mode="none")) as triton:
        for action in ("load", "unload"):
            status, body = _post(triton, f"/v2/repository/models/a/{action}")
            assert (status, json.loads(body)) == (503, {"error": DISABLED})
        _, grpc = _clients(triton)
        for call in (grpc.load_model, grpc.unload_model):
            with pytest.raises(InferenceServerException) as caught:
                call("a")
            assert caught.value.status() == "StatusCode.UNAVAILABLE" and caught.value.message() == DISABLED
        grpc.close()


def test_bound_models_alone_refuse_load_and_unload(triton_server):
    triton = triton_server()
    status, body = _post(triton, "/v2/repository/models/x/load")
    assert (status, json.loads(body)) == (503, {"error": DISABLED})
    channel = grpc_module.insecure_channel(triton.grpc_url[len("grpc://") :])
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    with pytest.raises(grpc_module.RpcError) as caught:
        stub.RepositoryModelUnload(service_pb2.RepositoryModelUnloadRequest(model_name="x"))
    assert caught.value.code() == grpc_module.StatusCode.UNAVAILABLE
    channel.close()


ENSEMBLE = """
platform: "ensemble"
max_batch_size: 8
input [{ name: "X" data_type: TYPE_FP32 dims: [ -1 ] }]
output [{ name: "Y" data_type: TYPE_FP32 dims: [ -1 ] }]
ensemble_scheduling { step [
  { model_name: "double" model_version: -1 input_map { key: "IN" value: "X" } output_map { key: "OUT" value: "T" } },
  { model_name: "plus_one" model_version: -1 input_map { key: "IN" value: "T" } output_map { key: "OUT" value: "Y" } }
] }
"""


def _ensemble_repository(root):
    write_model(
        root, "double", versions={1: "def infer(requests):\n    return [{'OUT': r['IN'] * 2} for r in requests]\n"}
    )
    write_model(
        root, "plus_one", versions={1: "def infer(requests):\n    return [{'OUT': r['IN'] + 1} for r in requests]\n"}
    )
    write_model(root, "pipeline", ENSEMBLE, {1: None})
    return root


def test_loading_an_ensemble_loads_its_steps_and_unloading_a_step_unloads_it(tmp_path):
    _ensemble_repository(tmp_path)
    config = TritonConfig(model_repository=tmp_path, model_control_mode="explicit", load_model=[])
    with running_triton(config) as triton:
        http, grpc = _clients(triton)
        grpc.load_model("pipeline")
        assert {name: row.get("state") for name, row in _index(triton).items()} == {
            "double": "READY",
            "plus_one": "READY",
            "pipeline": "READY",
        }
        data = np.array([[1.0, 2.0]], np.float32)
        tensor = httpclient.InferInput("X", data.shape, "FP32")
        tensor.set_data_from_numpy(data)
        assert http.infer("pipeline", [tensor]).as_numpy("Y").tolist() == [[3.0, 5.0]]
        http.unload_model("plus_one")
        wait_until(lambda: _index(triton)["pipeline"].get("reason") == "unloaded")
        assert _index(triton)["double"]["state"] == "READY"
        grpc.load_model("pipeline")
        grpc.unload_model("pipeline", unload_dependents=True)
        wait_until(lambda: all(row.get("reason") == "unloaded" for row in _index(triton).values()))
        http.close()
        grpc.close()


def test_an_ensemble_whose_step_fails_is_unavailable_naming_the_step(tmp_path):
    _ensemble_repository(tmp_path)
    (tmp_path / "plus_one" / "1" / "model.py").write_text(
        "def initialize(source, placements):\n    raise ImportError('no numpy here')\n"
    )
    config = TritonConfig(model_repository=tmp_path, exit_on_error=False, model_control_mode="none")
    with running_triton(config) as triton:
        index = _index(triton)
        assert index["plus_one"]["reason"] == "ImportError: no numpy here"
        assert index["pipeline"]["reason"] == (
            "ensemble 'pipeline' calls model 'plus_one', which failed to load: "
            "load failed for model 'plus_one': version 1 is at UNAVAILABLE state: ImportError: no numpy here"
        )


def test_poll_mode_picks_up_new_changed_and_removed_models_and_versions(tmp_path):
    identity_repository(tmp_path, "a")
    config = TritonConfig(model_repository=tmp_path, model_control_mode="poll", repository_poll_secs=1)
    with running_triton(config) as triton:
        http, _ = _clients(triton)
        assert _post(triton, "/v2/repository/models/a/load")[0] == 503
        write_model(tmp_path, "b")
        wait_until(lambda: _index(triton).get("b", {}).get("state") == "READY", timeout=15)
        config_path = tmp_path / "a" / "config.pbtxt"
        config_path.write_text(config_path.read_text().replace("max_batch_size: 8", "max_batch_size: 3"))
        wait_until(lambda: http.get_model_config("a")["max_batch_size"] == 3, timeout=15)
        write_model(tmp_path, "b", versions={2: IDENTITY})
        wait_until(lambda: http.get_model_metadata("b")["versions"] == ["2"], timeout=15)
        wait_until(lambda: _index(triton)["b"].get("version") == "2", timeout=15)
        shutil.rmtree(tmp_path / "b")
        wait_until(lambda: _index(triton).get("b", {}).get("reason") == "unloaded", timeout=15)
        assert http.is_model_ready("a")
        http.close()


def test_poll_reloads_only_what_changed(tmp_path):
    write_model(
        tmp_path,
        "every",
        """
        backend: "python"
        max_batch_size: 8
        input [{ name: "IN" data_type: TYPE_FP32 dims: [ -1 ] }]
        output [{ name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] }]
        version_policy { all { } }
        """,
    )
    config = TritonConfig(model_control_mode="poll", repository_poll_secs=3600)
    with running_triton(config, model_repository=tmp_path) as triton:
        repository = triton._repository
        write_model(tmp_path, "every", None, {2: IDENTITY})
        triton._call(repository.poll_once(), 30)
        assert [e[2] for e in events("load", "every")] == [1, 2]  # version 1 kept serving, untouched
        triton._call(repository.poll_once(), 30)  # nothing changed: nothing loads
        assert len(events("load", "every")) == 2
        (tmp_path / "every" / "1" / "model.py").write_text(IDENTITY + "\n# edited\n")
        triton._call(repository.poll_once(), 30)
        assert [e[2] for e in events("load", "every")] == [1, 2, 1]
        write_model(tmp_path, "broken", 'backend: "pyhton"\n')
        triton._call(repository.poll_once(), 30)
        triton._call(repository.poll_once(), 30)  # a failed model is retried only when its files change
        rows = {row["name"]: row for row in _index(triton).values()}
        assert rows["broken"]["state"] == "UNAVAILABLE"
        shutil.rmtree(tmp_path / "broken")
        triton._call(repository.poll_once(), 30)
        assert "broken" not in _index(triton)


def test_names_outside_the_repository_are_not_models(tmp_path):
    identity_repository(tmp_path / "repo", "a")
    write_model(tmp_path, "outside")
    config = TritonConfig(model_control_mode="explicit", load_model=[])
    with running_triton(config, model_repository=tmp_path / "repo") as triton:
        _, grpc = _clients(triton)
        for name in ("../outside", "..", ".hidden", "a/1"):
            with pytest.raises(InferenceServerException) as caught:
                grpc.load_model(name)
            assert caught.value.status() == "StatusCode.NOT_FOUND", name
        grpc.close()
