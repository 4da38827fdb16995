"""Repository behaviours that follow tritonserver: the default scheduler (batching model without
``dynamic_batching``), the ``model_repository`` extension in server metadata, load/unload in statistics and
metrics. Real servers on loopback, the real tritonclient over HTTP and gRPC, a Prometheus text scrape."""

from __future__ import annotations

import pathlib
import tempfile
import threading
import urllib.request
from typing import Dict, List

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from python_backend_support import write_model
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig, TritonSecurityConfig
from pytriton_lite.testing import running_triton as _running_triton


def running_triton(config=None, **kwargs):
    """A loopback server with no restricted API (these tests call statistics and model control freely)."""
    return _running_triton(config, security_config=TritonSecurityConfig(restricted_endpoints=[]), **kwargs)


# One instance; execute sleeps so that concurrent requests queue up, and answers how many requests it got.
COUNTING = """
import time
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        time.sleep(0.15)
        n = len(requests)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("N", np.array([[n]] * len(
            pb_utils.get_input_tensor_by_name(r, "X").as_numpy()), np.int32))]) for r in requests]
"""

COUNTING_CONFIG = """
backend: "python"
max_batch_size: 8
input [{ name: "X" data_type: TYPE_INT32 dims: [ 1 ] }]
output [{ name: "N" data_type: TYPE_INT32 dims: [ 1 ] }]
instance_group [{ count: 1, kind: KIND_CPU }]
"""

IDENTITY = """
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("Y", pb_utils.get_input_tensor_by_name(r, "X").as_numpy())])
                for r in requests]
"""

IDENTITY_CONFIG = """
backend: "python"
max_batch_size: 4
input [{ name: "X" data_type: TYPE_INT32 dims: [ 1 ] }]
output [{ name: "Y" data_type: TYPE_INT32 dims: [ 1 ] }]
"""


def _http(triton) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(triton.http_url[len("http://") :])


def _grpc(triton) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])


def _concurrent_counts(triton, model: str, clients: int = 6) -> List[int]:
    """``clients`` requests at once (one thread each, bounded by a timeout): what each execute saw."""
    seen: List[int] = []
    errors: List[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients, timeout=10)

    def one() -> None:
        client = _http(triton)
        try:
            x = httpclient.InferInput("X", [1, 1], "INT32")
            x.set_data_from_numpy(np.array([[1]], np.int32))
            barrier.wait()
            n = int(client.infer(model, [x]).as_numpy("N")[0, 0])
            with lock:
                seen.append(n)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert len(seen) == clients
    return seen


def test_a_batching_model_without_dynamic_batching_runs_each_request_alone(tmp_path):
    repo = tmp_path / "models"
    write_model(repo, "default_scheduler", COUNTING, COUNTING_CONFIG)
    write_model(repo, "dynamic", COUNTING, COUNTING_CONFIG + "dynamic_batching { max_queue_delay_microseconds: 0 }\n")
    with running_triton(model_repository=repo) as triton:
        assert _concurrent_counts(triton, "default_scheduler") == [1] * 6
        # the same model with a dynamic batcher merges the requests that queued behind the first execute
        assert max(_concurrent_counts(triton, "dynamic")) > 1
        client = _http(triton)
        try:
            stats = client.get_inference_statistics("default_scheduler")["model_stats"][0]
            assert stats["inference_count"] == stats["execution_count"] == 6
            config = client.get_model_config("default_scheduler")
            assert "dynamic_batching" not in config
            # a request may still carry a batch of several rows up to max_batch_size
            x = httpclient.InferInput("X", [3, 1], "INT32")
            x.set_data_from_numpy(np.ones((3, 1), np.int32))
            assert client.infer("default_scheduler", [x]).as_numpy("N").tolist() == [[1], [1], [1]]
            x = httpclient.InferInput("X", [9, 1], "INT32")
            x.set_data_from_numpy(np.ones((9, 1), np.int32))
            with pytest.raises(InferenceServerException, match="batch-size must be <= 8"):
                client.infer("default_scheduler", [x])
        finally:
            client.close()


def test_server_metadata_lists_the_model_repository_extension_only_with_a_repository(tmp_path, triton_server):
    repo = tmp_path / "models"
    write_model(repo, "identity", IDENTITY, IDENTITY_CONFIG)
    bound_only = triton_server(security_config=TritonSecurityConfig(restricted_endpoints=[]))
    with running_triton(model_repository=repo) as triton:
        http_client, grpc_client = _http(triton), _grpc(triton)
        try:
            listed = http_client.get_server_metadata()["extensions"]
            assert listed[:2] == ["model_repository", "model_repository(unload_dependents)"]
            assert "statistics" in listed and "model_configuration" in listed
            assert list(grpc_client.get_server_metadata().extensions) == listed
        finally:
            http_client.close()
            grpc_client.close()
    plain = _http(bound_only)
    try:
        assert "model_repository" not in plain.get_server_metadata()["extensions"]
    finally:
        plain.close()


def _scrape(triton) -> Dict[str, float]:
    with urllib.request.urlopen(triton.metrics_url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            values[series] = float(value)
    return values


def test_load_and_unload_in_statistics_and_metrics(tmp_path):
    repo = tmp_path / "models"
    write_model(repo, "identity", IDENTITY, IDENTITY_CONFIG)
    write_model(repo, "other", IDENTITY, IDENTITY_CONFIG)
    config = TritonConfig(model_control_mode="explicit", load_model=["identity"])
    with running_triton(config, model_repository=repo) as triton:
        http_client, grpc_client = _http(triton), _grpc(triton)
        try:
            load_series = 'nv_model_load_duration_secs{model="identity",version="1"}'
            metrics = _scrape(triton)
            assert metrics[load_series] > 0
            assert 'nv_inference_count{model="identity",version="1"}' in metrics
            assert not any('model="other"' in series for series in metrics)
            # loaded and never used: a statistics entry of zeros, last_inference 0 (Triton)
            stats = http_client.get_inference_statistics("identity")["model_stats"]
            assert [(s["name"], s["version"], s["last_inference"], s["inference_count"]) for s in stats] == [
                ("identity", "1", 0, 0)
            ]
            grpc_stats = grpc_client.get_inference_statistics("identity").model_stats
            assert [(s.name, s.version, s.inference_count) for s in grpc_stats] == [("identity", "1", 0)]
            with pytest.raises(InferenceServerException, match="requested model 'other' is not available"):
                http_client.get_inference_statistics("other")

            grpc_client.load_model("other")
            metrics = _scrape(triton)
            assert metrics['nv_model_load_duration_secs{model="other",version="1"}'] > 0
            assert metrics['nv_inference_request_success{model="other",version="1"}'] == 0
            assert [s["name"] for s in http_client.get_inference_statistics()["model_stats"]] == ["identity", "other"]

            http_client.unload_model("identity")
            for _ in range(200):  # the unload drains in the background: bounded wait for it to finish
                if not any('model="identity"' in series for series in _scrape(triton)):
                    break
                threading.Event().wait(0.05)
            assert not any('model="identity"' in series for series in _scrape(triton))
            with pytest.raises(InferenceServerException, match="requested model 'identity' is not available"):
                http_client.get_inference_statistics("identity")
            with pytest.raises(InferenceServerException, match="requested model 'identity' is not available"):
                grpc_client.get_inference_statistics("identity")
            assert [s["name"] for s in http_client.get_inference_statistics()["model_stats"]] == ["other"]
        finally:
            http_client.close()
            grpc_client.close()


def _index(client) -> Dict[str, Dict[str, str]]:
    return {row["name"]: row for row in client.get_model_repository_index()}


def test_several_repositories_serve_together_and_a_name_in_two_is_an_error(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_model(first, "one", IDENTITY, IDENTITY_CONFIG)
    write_model(second, "two", IDENTITY, IDENTITY_CONFIG)
    write_model(first, "twice", IDENTITY, IDENTITY_CONFIG)
    write_model(second, "twice", IDENTITY, IDENTITY_CONFIG)
    config = TritonConfig(model_repository=[first, second], model_control_mode="none", exit_on_error=False)
    with running_triton(config) as triton:
        client = _http(triton)
        try:
            for name in ("one", "two"):
                x = httpclient.InferInput("X", [1, 1], "INT32")
                x.set_data_from_numpy(np.array([[7]], np.int32))
                assert client.infer(name, [x]).as_numpy("Y").tolist() == [[7]]
            index = _index(client)
            assert index["twice"]["state"] == "UNAVAILABLE"
            assert index["twice"]["reason"] == "failed to poll model 'twice': not unique across all model repositories"
            assert {index["one"]["state"], index["two"]["state"]} == {"READY"}
            assert not client.is_model_ready("twice")
        finally:
            client.close()


def test_a_duplicate_name_fails_the_start_under_exit_on_error(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_model(first, "twice", IDENTITY, IDENTITY_CONFIG)
    write_model(second, "twice", IDENTITY, IDENTITY_CONFIG)
    with pytest.raises(Exception, match="not unique across all model repositories"):
        with running_triton(TritonConfig(model_repository=[first, second], model_control_mode="none")):
            pass


REQUEST_FIELDS = """
import json
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            fields = {"id": request.request_id(), "correlation_id": request.correlation_id(),
                      "flags": request.flags(), "timeout": request.timeout()}
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor("FIELDS", np.array([json.dumps(fields).encode()], dtype=object))]))
        return responses
"""

REQUEST_FIELDS_CONFIG = """
backend: "python"
input [{ name: "X" data_type: TYPE_INT32 dims: [ 1 ] }]
output [{ name: "FIELDS" data_type: TYPE_STRING dims: [ 1 ] }]
"""


def test_a_received_request_carries_its_id_sequence_id_flags_and_timeout(tmp_path):
    import json

    repo = tmp_path / "models"
    write_model(repo, "fields", REQUEST_FIELDS, REQUEST_FIELDS_CONFIG)
    with running_triton(model_repository=repo) as triton:
        http_client, grpc_client = _http(triton), _grpc(triton)
        try:
            x = httpclient.InferInput("X", [1], "INT32")
            x.set_data_from_numpy(np.array([1], np.int32))
            result = http_client.infer(
                "fields", [x], request_id="req-1", sequence_id=42, sequence_start=True, timeout=5_000_000
            )
            fields = json.loads(result.as_numpy("FIELDS")[0])
            assert fields == {"id": "req-1", "correlation_id": 42, "flags": 1, "timeout": 5_000_000}

            g = grpcclient.InferInput("X", [1], "INT32")
            g.set_data_from_numpy(np.array([1], np.int32))
            result = grpc_client.infer("fields", [g], request_id="req-2", sequence_id="s-7", sequence_end=True)
            fields = json.loads(result.as_numpy("FIELDS")[0])
            assert fields == {"id": "req-2", "correlation_id": "s-7", "flags": 2, "timeout": 0}

            result = grpc_client.infer("fields", [g], sequence_id=3, sequence_start=True, sequence_end=True)
            assert json.loads(result.as_numpy("FIELDS")[0]) == {"id": "", "correlation_id": 3, "flags": 3, "timeout": 0}
            plain = json.loads(http_client.infer("fields", [x]).as_numpy("FIELDS")[0])
            assert plain == {"id": "", "correlation_id": 0, "flags": 0, "timeout": 0}
        finally:
            http_client.close()
            grpc_client.close()


THREADS = """
import asyncio
import threading
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def initialize(self, args):
        self.init_thread = threading.get_ident()
        self.name = args["model_instance_name"]

    def execute(self, requests):
        same = threading.get_ident() == self.init_thread
        return [pb_utils.InferenceResponse([pb_utils.Tensor("SAME", np.array([same])),
                                            pb_utils.Tensor("WHO", np.array([self.name.encode()], dtype=object))])
                for _ in requests]
"""

ASYNC_THREADS = """
import asyncio
import threading
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    async def initialize(self, args):
        self.init_thread = threading.get_ident()
        self.loop = asyncio.get_running_loop()
        self.lock = asyncio.Lock()  # an asyncio object made in initialize, used by execute
        self.name = args["model_instance_name"]

    async def execute(self, requests):
        async with self.lock:
            same = threading.get_ident() == self.init_thread and asyncio.get_running_loop() is self.loop
        return [pb_utils.InferenceResponse([pb_utils.Tensor("SAME", np.array([same])),
                                            pb_utils.Tensor("WHO", np.array([self.name.encode()], dtype=object))])
                for _ in requests]
"""

THREADS_CONFIG = """
backend: "python"
input [{ name: "X" data_type: TYPE_INT32 dims: [ 1 ] }]
output [{ name: "SAME" data_type: TYPE_BOOL dims: [ 1 ] }, { name: "WHO" data_type: TYPE_STRING dims: [ 1 ] }]
instance_group [{ count: 2, kind: KIND_CPU }]
"""


@pytest.mark.parametrize("model_py", [THREADS, ASYNC_THREADS], ids=["sync", "async"])
def test_initialize_runs_on_the_thread_that_executes_the_instance(tmp_path, model_py):
    repo = tmp_path / "models"
    write_model(repo, "threads", model_py, THREADS_CONFIG)
    with running_triton(model_repository=repo) as triton:
        client = _grpc(triton)
        try:
            who = set()
            for _ in range(40):  # two instances: requests reach both (bounded)
                x = grpcclient.InferInput("X", [1], "INT32")
                x.set_data_from_numpy(np.array([1], np.int32))
                result = client.infer("threads", [x])
                assert result.as_numpy("SAME").tolist() == [True]
                who.add(result.as_numpy("WHO")[0])
                if len(who) == 2:
                    break
            assert who == {b"threads_0_0", b"threads_0_1"}  # the batcher hands out free instances in turn
        finally:
            client.close()


SCALED = """
import numpy as np
import triton_python_backend_utils as pb_utils
from helper import FACTOR

class TritonPythonModel:
    def initialize(self, args):
        self.folder = args["model_repository"]

    def execute(self, requests):
        return [pb_utils.InferenceResponse(
                    [pb_utils.Tensor("Y", pb_utils.get_input_tensor_by_name(r, "X").as_numpy() * FACTOR)])
                for r in requests]
"""


def _config_json(name: str) -> str:
    import json

    return json.dumps(
        {
            "name": name,
            "backend": "python",
            "max_batch_size": 4,
            "input": [{"name": "X", "data_type": "TYPE_INT32", "dims": [1]}],
            "output": [{"name": "Y", "data_type": "TYPE_INT32", "dims": [1]}],
        }
    )


def _y(client, module, model: str) -> int:
    x = module.InferInput("X", [1, 1], "INT32")
    x.set_data_from_numpy(np.array([[2]], np.int32))
    return int(client.infer(model, [x]).as_numpy("Y")[0, 0])


def test_a_load_with_file_overrides_serves_those_files_then_the_repository_again(tmp_path):
    repo = tmp_path / "models"
    write_model(repo, "scaled", SCALED, IDENTITY_CONFIG, files={"1/helper.py": "FACTOR = 1\n"})
    config = TritonConfig(model_control_mode="explicit", load_model=["scaled"])
    temporary = pathlib.Path(tempfile.gettempdir())
    before = set(temporary.glob("pytriton_lite-override-*"))
    with running_triton(config, model_repository=repo) as triton:
        http_client, grpc_client = _http(triton), _grpc(triton)
        try:
            assert _y(http_client, httpclient, "scaled") == 2
            files = {"file:1/model.py": SCALED.encode(), "file:1/helper.py": b"FACTOR = 10\n"}
            http_client.load_model("scaled", config=_config_json("scaled"), files=files)
            assert _y(http_client, httpclient, "scaled") == 20
            assert (repo / "scaled" / "1" / "helper.py").read_text() == "FACTOR = 1\n"  # the repository is untouched

            # gRPC, and a model that is not in the repository at all
            files = {"file:1/model.py": SCALED.encode(), "file:1/helper.py": b"FACTOR = 100\n"}
            grpc_client.load_model("fresh", config=_config_json("fresh"), files=files)
            assert _y(grpc_client, grpcclient, "fresh") == 200
            assert grpc_client.get_model_config("fresh").config.backend == "python"

            http_client.load_model("scaled")  # no override: config.pbtxt and the repository's files again
            assert _y(http_client, httpclient, "scaled") == 2

            with pytest.raises(InferenceServerException, match="must also carry the model's 'config'"):
                http_client.load_model("scaled", files={"file:1/model.py": b"x"})
            with pytest.raises(InferenceServerException, match="must also carry the model's 'config'") as caught:
                grpc_client.load_model("scaled", files={"file:1/model.py": b"x"})
            assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
            with pytest.raises(InferenceServerException, match="invalid file path 'file:../escape.py'"):
                http_client.load_model("scaled", config=_config_json("scaled"), files={"file:../escape.py": b"x"})
            assert not (repo / "escape.py").exists()
            # a broken override fails the load; the version loaded before keeps serving
            with pytest.raises(InferenceServerException, match="SyntaxError"):
                grpc_client.load_model("scaled", config=_config_json("scaled"), files={"file:1/model.py": b"def ("})
            assert _y(http_client, httpclient, "scaled") == 2
            assert http_client.is_server_live()
            for _ in range(200):  # scaled's override folder goes once its old load is retired (bounded wait)
                left = set(temporary.glob("pytriton_lite-override-*")) - before
                if len(left) == 1:
                    break
                threading.Event().wait(0.05)
            assert len(left) == 1  # only fresh's folder is left
        finally:
            http_client.close()
            grpc_client.close()
    assert set(temporary.glob("pytriton_lite-override-*")) - before == set()  # removed when the server stops


CUSTOM_METRICS = """
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def initialize(self, args):
        # a family lives while an object refers to it (Triton): keep it beside its metrics
        self.requests_family = pb_utils.MetricFamily(
            name="toy_requests", description="Requests seen by the toy", kind=pb_utils.MetricFamily.COUNTER
        )
        self.requests = self.requests_family.Metric(labels={"model": args["model_name"]})
        self.depth_family = pb_utils.MetricFamily(
            name="toy_depth", description="Last X seen", kind=pb_utils.MetricFamily.GAUGE
        )
        self.depth = self.depth_family.Metric()
        self.sizes_family = pb_utils.MetricFamily(
            name="toy_sizes", description="X values", kind=pb_utils.MetricFamily.HISTOGRAM
        )
        self.sizes = self.sizes_family.Metric(labels={"model": args["model_name"]}, buckets=[1.0, 2.5, 10])

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            self.requests.increment(1)
            self.depth.set(float(x[0, 0]))
            self.sizes.observe(float(x[0, 0]))
            errors = []
            for call in (lambda: self.requests.increment(-1), lambda: self.requests.set(3),
                         lambda: self.sizes.value(), lambda: self.depth.observe(1)):
                try:
                    call()
                except pb_utils.TritonModelException:
                    errors.append(1)
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor("Y", np.array([[self.requests.value() * 100 + len(errors)]], np.int32))]))
        return responses
"""


def test_custom_metrics_of_a_python_model_are_exported_on_metrics(tmp_path):
    import gc

    repo = tmp_path / "models"
    write_model(repo, "toy", CUSTOM_METRICS, IDENTITY_CONFIG)
    config = TritonConfig(model_control_mode="explicit", load_model=["toy"])
    with running_triton(config, model_repository=repo) as triton:
        client = _http(triton)
        try:
            metrics = _scrape(triton)
            assert metrics['toy_requests{model="toy"}'] == 0
            assert metrics['toy_sizes_bucket{le="+Inf",model="toy"}'] == 0
            answers = []
            for value in (0.5, 2, 7, 30):
                x = httpclient.InferInput("X", [1, 1], "INT32")
                x.set_data_from_numpy(np.array([[int(value)]], np.int32))
                answers.append(int(client.infer("toy", [x]).as_numpy("Y")[0, 0]))
            assert answers == [104, 204, 304, 404]  # the count, and the four refused operations each time
            metrics = _scrape(triton)
            assert metrics['toy_requests{model="toy"}'] == 4
            assert metrics["toy_depth"] == 30
            buckets = {le: metrics[f'toy_sizes_bucket{{le="{le}",model="toy"}}'] for le in ("1", "2.5", "10", "+Inf")}
            assert buckets == {"1": 1, "2.5": 2, "10": 3, "+Inf": 4}  # 0.5 was sent as int 0
            assert metrics['toy_sizes_count{model="toy"}'] == 4
            assert metrics['toy_sizes_sum{model="toy"}'] == 0 + 2 + 7 + 30
            with urllib.request.urlopen(triton.metrics_url + "/metrics", timeout=10) as response:
                text = response.read().decode()
            assert "# HELP toy_requests Requests seen by the toy\n# TYPE toy_requests counter\n" in text
            assert "# TYPE toy_sizes histogram\n" in text

            client.unload_model("toy")
            for _ in range(200):  # the families go with the model objects (bounded wait for the unload)
                gc.collect()
                if not any(series.startswith("toy_") for series in _scrape(triton)):
                    break
                threading.Event().wait(0.05)
            assert not any(series.startswith("toy_") for series in _scrape(triton))
        finally:
            client.close()


def test_metric_family_rules_as_triton():
    import triton_python_backend_utils as pb_utils
    from pytriton_lite.pb_utils._metrics import _DETACHED

    first = pb_utils.MetricFamily("rules_counter", "first description", pb_utils.MetricFamily.COUNTER)
    second = pb_utils.MetricFamily("rules_counter", "second description", pb_utils.MetricFamily.COUNTER)
    with pytest.raises(pb_utils.TritonModelException, match="already exists with kind counter"):
        pb_utils.MetricFamily("rules_counter", "x", pb_utils.MetricFamily.GAUGE)
    a, b = first.Metric(labels={"k": "v"}), second.Metric(labels={"k": "v"})
    a.increment(7.5)
    assert a.value() == b.value() == 7.5  # same name and labels: one series
    del first
    (family,) = [f for f in _DETACHED.snapshot() if f.name == "rules_counter"]
    assert family.description == "first description" and [m.value for m in family.metrics] == [7.5]
    del second
    assert not [f for f in _DETACHED.snapshot() if f.name == "rules_counter"]
    with pytest.raises(pb_utils.TritonModelException, match="'MetricFamily' has been deleted"):
        a.increment(1)

    histogram = pb_utils.MetricFamily("rules_histogram", "h", pb_utils.MetricFamily.HISTOGRAM)
    with pytest.raises(pb_utils.TritonModelException, match="needs its 'buckets'"):
        histogram.Metric(labels={})
    with pytest.raises(pb_utils.TritonModelException, match="strictly increasing"):
        histogram.Metric(labels={}, buckets=[1, 1, 2])
    assert histogram.Metric(labels={}, buckets=[]) is not None
    with pytest.raises(pb_utils.TritonModelException, match="invalid metric family name"):
        pb_utils.MetricFamily("bad name", "x", pb_utils.MetricFamily.GAUGE)


def test_the_pytest_plugin_serves_several_repositories(triton_server, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_model(first, "one", COUNTING, COUNTING_CONFIG)
    write_model(second, "two", COUNTING, COUNTING_CONFIG)
    triton = triton_server(model_repository=[first, second])
    client = httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}")
    try:
        assert client.is_model_ready("one") and client.is_model_ready("two")
    finally:
        client.close()
