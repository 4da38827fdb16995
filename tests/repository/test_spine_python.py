"""The spine with the real python backend: model.py repositories as the tutorials write them, served by
``TritonConfig(model_repository=...)``, the pytest plugin and explicit model control."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.repository import loader
from pytriton_lite.testing import repository_index, running_triton, wait_until

pytest.importorskip("pytriton_lite.repository.backends.python", reason="the python backend is not there yet")

TG_CONFIG = """
name: "text_generation"
backend: "python"
max_batch_size: 4
input [{ name: "PROMPT" data_type: TYPE_STRING dims: [ 1 ] }]
output [{ name: "TEXT" data_type: TYPE_STRING dims: [ 1 ] }]
instance_group [{ count: 2, kind: KIND_CPU }]
dynamic_batching { max_queue_delay_microseconds: 1000 }
"""
TG_UTILS = """
def generate(prompt: bytes) -> bytes:
    return prompt + b" ... and they lived happily ever after"
"""
TG_MODEL = """
import numpy as np
import triton_python_backend_utils as pb_utils
from utils import generate


class TritonPythonModel:
    def initialize(self, args):
        self.name = args["model_instance_name"]

    def execute(self, requests):
        responses = []
        for request in requests:
            prompts = pb_utils.get_input_tensor_by_name(request, "PROMPT").as_numpy()
            texts = np.array([[generate(p[0])] for p in prompts], dtype=object)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("TEXT", texts)]))
        return responses
"""
AUTO_MODEL = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(config):
        config.add_input({"name": "X", "data_type": "TYPE_FP32", "dims": [2]})
        config.add_output({"name": "Y", "data_type": "TYPE_FP32", "dims": [2]})
        config.set_max_batch_size(8)
        return config

    def execute(self, requests):
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor("Y", pb_utils.get_input_tensor_by_name(r, "X").as_numpy() * 2)])
            for r in requests
        ]
"""
BAD_INIT = """
class TritonPythonModel:
    def initialize(self, args):
        raise KeyError("scale")

    def execute(self, requests):
        return []
"""


@pytest.fixture(autouse=True)
def no_gpus(monkeypatch):
    monkeypatch.setattr(loader, "gpu_count", lambda: 0)


def _write(root, name, files):
    for relative, text in files.items():
        path = root / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _repository(root):
    _write(root, "text_generation", {"config.pbtxt": TG_CONFIG, "1/model.py": TG_MODEL, "1/utils.py": TG_UTILS})
    _write(root, "auto", {"1/model.py": AUTO_MODEL})  # no config.pbtxt at all
    return root


def _prompt(module, texts):
    data = np.array([[t] for t in texts], dtype=object)
    tensor = module.InferInput("PROMPT", data.shape, "BYTES")
    tensor.set_data_from_numpy(data)
    return [tensor]


def test_tutorial_python_models_answer_over_http_and_grpc(tmp_path, triton_server):
    triton = triton_server(model_repository=_repository(tmp_path))
    http = httpclient.InferenceServerClient(triton.http_url[len("http://") :])
    grpc = grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])
    for client, module in ((http, httpclient), (grpc, grpcclient)):
        out = client.infer("text_generation", _prompt(module, [b"Once", b"Twice"])).as_numpy("TEXT")
        assert out[1][0] == b"Twice ... and they lived happily ever after"
        with pytest.raises(InferenceServerException, match="batch-size must be <= 4"):
            client.infer("text_generation", _prompt(module, [b"x"] * 5))
    config = http.get_model_config("auto")
    assert config["backend"] == "python" and config["max_batch_size"] == 8
    assert [t["name"] for t in config["input"]] == ["X"] and config["default_model_filename"] == "model.py"
    data = np.ones((3, 2), np.float32)
    tensor = httpclient.InferInput("X", data.shape, "FP32")
    tensor.set_data_from_numpy(data)
    assert http.infer("auto", [tensor]).as_numpy("Y").tolist() == (data * 2).tolist()
    tg = http.get_model_config("text_generation")
    group = tg["instance_group"][0]
    assert (group["name"], group["kind"], group["count"], group["gpus"]) == ("text_generation_0", "KIND_CPU", 2, [])
    http.close()
    grpc.close()


def test_python_model_failures_and_explicit_reload(tmp_path):
    _repository(tmp_path)
    _write(tmp_path, "bad_init", {"config.pbtxt": 'backend: "python"\n', "1/model.py": BAD_INIT})
    _write(tmp_path, "bad_syntax", {"config.pbtxt": 'backend: "python"\n', "1/model.py": "def broken(:\n"})
    _write(tmp_path, "no_file", {"config.pbtxt": 'backend: "python"\n', "1/utils.py": ""})
    config = TritonConfig(model_repository=tmp_path, exit_on_error=False)
    with running_triton(config) as triton:
        rows = {row["name"]: row for row in repository_index(triton)}
        assert rows["text_generation"]["state"] == "READY" and rows["auto"]["state"] == "READY"
        assert rows["bad_init"]["state"] == "UNAVAILABLE" and "KeyError" in rows["bad_init"]["reason"]
        assert "SyntaxError" in rows["bad_syntax"]["reason"]
        assert rows["no_file"]["reason"].endswith(
            f"Python model file not found in '{tmp_path / 'no_file' / '1' / 'model.py'}'"
        )
        http = httpclient.InferenceServerClient(triton.http_url[len("http://") :])
        # a reload whose initialize fails keeps the old version serving
        model_py = tmp_path / "text_generation" / "1" / "model.py"
        good = model_py.read_text()
        model_py.write_text(BAD_INIT)
        with pytest.raises(InferenceServerException, match="KeyError"):
            http.load_model("text_generation")
        out = http.infer("text_generation", _prompt(httpclient, [b"Still"])).as_numpy("TEXT")
        assert out[0][0].startswith(b"Still")
        model_py.write_text(good.replace("happily", "sadly"))
        _write(tmp_path, "text_generation", {"1/utils.py": TG_UTILS.replace("happily", "sadly")})
        http.load_model("text_generation")
        out = http.infer("text_generation", _prompt(httpclient, [b"Then"])).as_numpy("TEXT")
        assert out[0][0] == b"Then ... and they lived sadly ever after"
        # fix the broken one and load it
        _write(tmp_path, "bad_init", {"1/model.py": AUTO_MODEL.replace("auto_complete_config", "_unused")})
        (tmp_path / "bad_init" / "config.pbtxt").write_text(
            'backend: "python"\nmax_batch_size: 8\ninput [{ name: "X" data_type: TYPE_FP32 dims: [2] }]\n'
            'output [{ name: "Y" data_type: TYPE_FP32 dims: [2] }]\n'
        )
        http.load_model("bad_init")
        assert http.is_model_ready("bad_init") and http.is_server_ready() is False  # bad_syntax still failed
        http.unload_model("bad_syntax")
        http.unload_model("no_file")
        wait_until(lambda: http.is_server_ready())
        rows = json.loads(json.dumps(repository_index(triton)))
        assert {r["name"]: r.get("reason", "") for r in rows}["bad_syntax"] == "unloaded"
        http.close()
