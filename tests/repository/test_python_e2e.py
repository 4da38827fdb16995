"""The python backend end to end: a model repository served by ``TritonConfig(model_repository=...)`` on real
servers (port 0, loopback), answered by tritonclient over HTTP and gRPC, curl-style JSON and SSE."""

from __future__ import annotations

import json
import queue
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from python_backend_support import write_model
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.repository import loader
from pytriton_lite.testing import running_triton

TEXT_GENERATION = """
import json
import numpy as np
import triton_python_backend_utils as pb_utils
from utils import generate

class TritonPythonModel:
    def initialize(self, args):
        self.config = json.loads(args["model_config"])
        self.instance = args["model_instance_name"]
        output = pb_utils.get_output_config_by_name(self.config, "TEXT")
        self.dtype = pb_utils.triton_string_to_numpy(output["data_type"])

    def execute(self, requests):
        responses = []
        for request in requests:
            prompts = pb_utils.get_input_tensor_by_name(request, "PROMPT").as_numpy()
            params = json.loads(request.parameters())
            texts = [[generate(p[0].decode(), params.get("suffix", "")).encode()] for p in prompts]
            out = pb_utils.Tensor("TEXT", np.array(texts, dtype=self.dtype))
            who = pb_utils.Tensor("INSTANCE", np.array([[self.instance.encode()]] * len(prompts), dtype=object))
            responses.append(pb_utils.InferenceResponse([out, who]))
        return responses
"""

TG_CONFIG = """
backend: "python"
max_batch_size: 4
input [{ name: "PROMPT" data_type: TYPE_STRING dims: [ 1 ] }]
output [{ name: "TEXT" data_type: TYPE_STRING dims: [ 1 ] }, { name: "INSTANCE" data_type: TYPE_STRING dims: [ 1 ] }]
instance_group [{ count: 2, kind: KIND_CPU }]
dynamic_batching { max_queue_delay_microseconds: 1000 }
"""

ERRORS = """
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            if x[0] < 0:
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError("X must be >= 0", pb_utils.TritonError.INVALID_ARG)))
            elif x[0] == 0:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("zero is not allowed")))
            elif x[0] > 100:
                raise ValueError("too large")
            else:
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", x * 2)]))
        return responses
"""

XY_CONFIG = """
backend: "python"
input [{ name: "X" data_type: TYPE_INT32 dims: [ 1 ] }]
output [{ name: "Y" data_type: TYPE_INT32 dims: [ 1 ] }]
"""

REPEAT = """
import threading
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            n = int(pb_utils.get_input_tensor_by_name(request, "N").as_numpy()[0])
            threading.Thread(target=self.respond, args=(request.get_response_sender(), n)).start()
        return None

    def respond(self, sender, n):
        for i in range(n):
            token = pb_utils.Tensor("TOKEN", np.array([f"t-{i}".encode()], dtype=object))
            sender.send(pb_utils.InferenceResponse([token]))
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
"""

REPEAT_CONFIG = """
backend: "python"
model_transaction_policy { decoupled: true }
input [{ name: "N" data_type: TYPE_INT32 dims: [ 1 ] }]
output [{ name: "TOKEN" data_type: TYPE_STRING dims: [ 1 ] }]
"""

AUTO = """
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        auto_complete_model_config.add_input({"name": "A", "data_type": "TYPE_FP32", "dims": [4]})
        auto_complete_model_config.add_output({"name": "B", "data_type": "TYPE_FP32", "dims": [4]})
        auto_complete_model_config.set_max_batch_size(8)
        auto_complete_model_config.set_dynamic_batching()
        return auto_complete_model_config

    def execute(self, requests):
        responses = []
        for r in requests:
            a = pb_utils.get_input_tensor_by_name(r, "A").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("B", a + 1)]))
        return responses
"""

BLS = """
import asyncio
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    async def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X")
            call = pb_utils.InferenceRequest(model_name="errors", requested_output_names=["Y"], inputs=[x])
            calls = [call.async_exec() for _ in range(2)]
            first, second = await asyncio.gather(*calls)
            if first.has_error():
                responses.append(pb_utils.InferenceResponse(error=first.error()))
                continue
            y = pb_utils.get_output_tensor_by_name(first, "Y").as_numpy()
            sync = pb_utils.InferenceRequest(model_name="errors", requested_output_names=["Y"],
                                             inputs=[pb_utils.Tensor("X", y)]).exec()
            n = pb_utils.Tensor("N", np.array([2], np.int32))
            tokens = pb_utils.InferenceRequest(model_name="repeat", requested_output_names=["TOKEN"],
                                               inputs=[n]).exec(decoupled=True)
            count = sum(1 for t in tokens if t.output_tensors())
            y = pb_utils.get_output_tensor_by_name(sync, "Y").as_numpy() + count
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", y)]))
        return responses
"""

BROKEN = """
class TritonPythonModel:
    def initialize(self, args):
        raise KeyError("scale")

    def execute(self, requests):
        return []
"""


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    utils = "def generate(prompt, suffix):\n    return prompt.upper() + suffix\n"
    write_model(root, "text_generation", TEXT_GENERATION, TG_CONFIG, files={"1/utils.py": utils})
    write_model(root, "errors", ERRORS, XY_CONFIG, files={"1/utils.py": "raise RuntimeError('not imported')\n"})
    write_model(root, "repeat", REPEAT, REPEAT_CONFIG)
    write_model(root, "auto", AUTO)  # no config.pbtxt at all
    write_model(root, "bls", BLS, XY_CONFIG)
    write_model(root, "broken", BROKEN, 'backend: "python"\n')
    return root


@pytest.fixture(scope="module")
def triton(repository):
    original = loader.gpu_count
    loader.gpu_count = lambda: 0
    config = TritonConfig(model_repository=repository, exit_on_error=False, strict_readiness=False)
    try:
        with running_triton(config) as server:
            yield server
    finally:
        loader.gpu_count = original


@pytest.fixture
def http(triton):
    client = httpclient.InferenceServerClient(triton.http_url[len("http://") :])
    yield client
    client.close()


@pytest.fixture
def grpc(triton):
    client = grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])
    yield client
    client.close()


def _post(triton, path, body):
    request = urllib.request.Request(triton.http_url + path, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _input(module, name, data, datatype):
    tensor = module.InferInput(name, list(data.shape), datatype)
    tensor.set_data_from_numpy(data)
    return tensor


def test_text_generation_over_http_and_grpc(http, grpc):
    prompts = np.array([[b"hello"], [b"world"]], dtype=object)
    for module, client in ((httpclient, http), (grpcclient, grpc)):
        result = client.infer(
            "text_generation", [_input(module, "PROMPT", prompts, "BYTES")], parameters={"suffix": "!"}
        )
        assert result.as_numpy("TEXT").tolist() == [[b"HELLO!"], [b"WORLD!"]]
        assert result.as_numpy("INSTANCE")[0][0] in (b"text_generation_0_0", b"text_generation_0_1")


def test_curl_style_json(triton):
    body = {"inputs": [{"name": "X", "shape": [1], "datatype": "INT32", "data": [21]}]}
    status, text = _post(triton, "/v2/models/errors/infer", body)
    assert status == 200
    assert json.loads(text)["outputs"][0]["data"] == [42]


@pytest.mark.parametrize(
    ("value", "http_status", "grpc_code", "message"),
    [
        (-1, 400, "StatusCode.INVALID_ARGUMENT", "X must be >= 0"),
        (0, 500, "StatusCode.INTERNAL", "zero is not allowed"),
        (101, 500, "StatusCode.INTERNAL", "for model 'errors_0', message: ValueError: too large"),
    ],
)
def test_errors_over_http_and_grpc(triton, grpc, value, http_status, grpc_code, message):
    body = {"inputs": [{"name": "X", "shape": [1], "datatype": "INT32", "data": [value]}]}
    status, text = _post(triton, "/v2/models/errors/infer", body)
    assert status == http_status
    assert message in json.loads(text)["error"]
    with pytest.raises(InferenceServerException) as info:
        grpc.infer("errors", [_input(grpcclient, "X", np.array([value], np.int32), "INT32")])
    assert info.value.status() == grpc_code
    assert message in info.value.message()


def test_decoupled_stream_over_grpc(grpc):
    results: queue.Queue = queue.Queue()
    grpc.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        grpc.async_stream_infer(
            "repeat", [_input(grpcclient, "N", np.array([3], np.int32), "INT32")], enable_empty_final_response=True
        )
        tokens = []
        for _ in range(10):
            result, error = results.get(timeout=30)
            assert error is None
            response = result.get_response()
            if response.outputs:
                tokens.append(result.as_numpy("TOKEN")[0])
            if response.parameters["triton_final_response"].bool_param:
                break
    finally:
        grpc.stop_stream()
    assert tokens == [b"t-0", b"t-1", b"t-2"]


def test_decoupled_stream_over_http_sse(triton):
    status, text = _post(triton, "/v2/models/repeat/generate_stream", {"N": 2})
    assert status == 200
    events = [json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")]
    assert [e["TOKEN"] for e in events] == ["t-0", "t-1"]


def test_decoupled_model_on_infer_is_refused(triton):
    body = {"inputs": [{"name": "N", "shape": [1], "datatype": "INT32", "data": [1]}]}
    status, _ = _post(triton, "/v2/models/repeat/infer", body)
    assert status == 501


def test_model_without_config_pbtxt_is_auto_completed(http, grpc):
    config = http.get_model_config("auto")
    assert config["max_batch_size"] == 8 and "dynamic_batching" in config
    assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [("A", "TYPE_FP32", [4])]
    data = np.zeros((2, 4), np.float32)
    for module, client in ((httpclient, http), (grpcclient, grpc)):
        assert client.infer("auto", [_input(module, "A", data, "FP32")]).as_numpy("B").tolist() == (data + 1).tolist()


def test_bls_calls_other_models_of_the_server(http, grpc):
    for module, client in ((httpclient, http), (grpcclient, grpc)):
        result = client.infer("bls", [_input(module, "X", np.array([5], np.int32), "INT32")])
        assert result.as_numpy("Y").tolist() == [22]  # (5 * 2) * 2 + 2 streamed tokens


def test_bls_passes_the_called_models_error_on(triton):
    body = {"inputs": [{"name": "X", "shape": [1], "datatype": "INT32", "data": [-3]}]}
    status, text = _post(triton, "/v2/models/bls/infer", body)
    assert status == 400 and json.loads(text)["error"] == "X must be >= 0"


def test_broken_model_is_unavailable_with_the_traceback(triton, grpc):
    status, text = _post(triton, "/v2/repository/index", {})
    assert status == 200
    rows = {row["name"]: row for row in json.loads(text)}
    assert rows["broken"]["state"] == "UNAVAILABLE"
    assert rows["broken"]["reason"].startswith("KeyError: 'scale'\n\nAt:\n")
    assert "model.py(4): initialize" in rows["broken"]["reason"]
    for name in ("text_generation", "errors", "repeat", "auto", "bls"):
        assert rows[name]["state"] == "READY", rows[name]
    assert grpc.is_model_ready("text_generation")
    with pytest.raises(InferenceServerException, match="has no available versions: KeyError: 'scale'"):
        grpc.infer("broken", [_input(grpcclient, "X", np.array([1], np.int32), "INT32")])


ADD_SUB = """
import json
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.dtypes = {
            name: pb_utils.triton_string_to_numpy(pb_utils.get_output_config_by_name(config, name)["data_type"])
            for name in ("OUTPUT0", "OUTPUT1")
        }

    def execute(self, requests):
        responses = []
        for request in requests:
            in0 = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            in1 = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            out0 = pb_utils.Tensor("OUTPUT0", (in0 + in1).astype(self.dtypes["OUTPUT0"]))
            out1 = pb_utils.Tensor("OUTPUT1", (in0 - in1).astype(self.dtypes["OUTPUT1"]))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out0, out1]))
        return responses

    def finalize(self):
        pb_utils.Logger.log_info("Cleaning up...")
"""

ADD_SUB_CONFIG = """
name: "add_sub"
backend: "python"
input [{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] }]
output [{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 4 ] }]
instance_group [{ kind: KIND_CPU }]
"""


def test_cli_serves_an_unchanged_python_model(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from pytriton_lite.testing import find_free_port

    write_model(tmp_path, "add_sub", ADD_SUB, ADD_SUB_CONFIG)
    ports = [find_free_port() for _ in range(3)]
    command = [sys.executable, "-m", "pytriton_lite", "serve", f"--model-repository={tmp_path}"]
    for kind, port in zip(("http", "grpc", "metrics"), ports):
        command += [f"--{kind}-port={port}", f"--{kind}-address=127.0.0.1"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        http = httpclient.InferenceServerClient(f"127.0.0.1:{ports[0]}")
        for _ in range(240):  # up to a minute
            try:
                if http.is_server_ready():
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.25)
        a, b = np.arange(4, dtype=np.float32), np.ones(4, dtype=np.float32)
        inputs = [_input(httpclient, "INPUT0", a, "FP32"), _input(httpclient, "INPUT1", b, "FP32")]
        result = http.infer("add_sub", inputs)
        assert result.as_numpy("OUTPUT0").tolist() == (a + b).tolist()
        grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{ports[1]}")
        inputs = [_input(grpcclient, "INPUT0", a, "FP32"), _input(grpcclient, "INPUT1", b, "FP32")]
        assert grpc.infer("add_sub", inputs).as_numpy("OUTPUT1").tolist() == (a - b).tolist()
        grpc.close()
        http.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
            process.kill()
            output, _ = process.communicate()
    assert process.returncode == 0, output
    assert "Cleaning up..." in output  # finalize() ran at shutdown, its log line in the server's log
