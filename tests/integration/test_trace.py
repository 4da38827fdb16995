"""Triton's trace extension against a live server: tritonclient HTTP and gRPC (sync and asyncio), httpx."""

from __future__ import annotations

import asyncio
import json
import logging
import queue

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpcclient
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient
from google.protobuf import json_format
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.decorators import batch
from pytriton_lite.model_config import DynamicBatcher, ModelConfig, Tensor

WAIT_S = 10.0
PHASES = [
    "REQUEST_START",
    "QUEUE_START",
    "COMPUTE_START",
    "COMPUTE_INPUT_END",
    "COMPUTE_OUTPUT_START",
    "COMPUTE_END",
    "REQUEST_END",
]


@batch
def _add_sub(INPUT0, INPUT1):
    return {"OUTPUT0": INPUT0 + INPUT1, "OUTPUT1": INPUT0 - INPUT1}


def _bind_simple(triton, name="simple"):
    triton.bind(
        name,
        _add_sub,
        inputs=[Tensor(name="INPUT0", shape=(16,), dtype=np.int32), Tensor(name="INPUT1", shape=(16,), dtype=np.int32)],
        outputs=[
            Tensor(name="OUTPUT0", shape=(16,), dtype=np.int32),
            Tensor(name="OUTPUT1", shape=(16,), dtype=np.int32),
        ],
        config=ModelConfig(max_batch_size=8, batcher=DynamicBatcher()),
    )


def _infer(client, module, name="simple"):
    data = np.arange(16, dtype=np.int32).reshape(1, 16)
    inputs = [module.InferInput("INPUT0", [1, 16], "INT32"), module.InferInput("INPUT1", [1, 16], "INT32")]
    for tensor in inputs:
        tensor.set_data_from_numpy(data)
    result = client.infer(name, inputs)
    assert np.array_equal(result.as_numpy("OUTPUT0"), data * 2)


def _start(triton_server, tmp_path, *specs):
    trace_file = tmp_path / "global_unittest.log"
    config = TritonConfig(trace_config=[f"triton,file={trace_file}", *specs])
    triton = triton_server(config)
    _bind_simple(triton)
    return triton, trace_file


def _grpc_expected(settings):
    """A TraceSettingResponse with ``settings`` (Triton's qa builds its expectations this way)."""
    message = grpcclient.service_pb2.TraceSettingResponse()
    values = {k: {"value": v if isinstance(v, list) else [v]} for k, v in settings.items()}
    json_format.Parse(json.dumps({"settings": values}), message)
    return message


def _initial(trace_file):
    return {
        "trace_file": str(trace_file),
        "trace_level": ["TIMESTAMPS"],
        "trace_rate": "1",
        "trace_count": "-1",
        "log_frequency": "0",
        "trace_mode": "triton",
    }


def test_settings_start_from_the_trace_config_on_both_protocols(triton_server, tmp_path, clients):
    triton, trace_file = _start(triton_server, tmp_path, "level=TIMESTAMPS", "rate=1")
    http, grpc_client = clients(triton)
    assert http.get_trace_settings() == _initial(trace_file)
    assert http.get_trace_settings(model_name="simple") == _initial(trace_file)
    assert grpc_client.get_trace_settings() == _grpc_expected(_initial(trace_file))
    assert grpc_client.get_trace_settings(model_name="simple") == _grpc_expected(_initial(trace_file))
    assert {"trace", "logging"} <= set(http.get_server_metadata()["extensions"])
    assert {"trace", "logging"} <= set(grpc_client.get_server_metadata(as_json=True)["extensions"])
    for client in (http, grpc_client):
        with pytest.raises(InferenceServerException, match="Request for unknown model : does-not-exist"):
            client.get_trace_settings(model_name="does-not-exist")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_update_and_clear_as_tritons_qa(triton_server, tmp_path, protocol, clients):
    triton, trace_file = _start(triton_server, tmp_path, "level=TIMESTAMPS", "rate=1")
    http, grpc_client = clients(triton)
    client = http if protocol == "http" else grpc_client

    def view(settings):
        return settings if protocol == "http" else _grpc_expected(settings)

    with pytest.raises(InferenceServerException, match="trace file location can not be updated through network"):
        client.update_trace_settings(model_name="simple", settings={"trace_file": "model.log"})
    both = dict(_initial(trace_file), trace_level=["TIMESTAMPS", "TENSORS"])
    assert client.update_trace_settings(settings={"trace_level": ["TIMESTAMPS", "TENSORS"]}) == view(both)
    assert client.get_trace_settings(model_name="simple") == view(both)

    client.update_trace_settings(model_name="simple", settings={"trace_rate": "12", "log_frequency": "34"})
    client.update_trace_settings(settings={"trace_rate": "56", "trace_count": "78", "trace_level": ["OFF"]})
    global_after = dict(_initial(trace_file), trace_level=["OFF"])
    model_first = dict(global_after, trace_rate="12", log_frequency="34")
    model_second = dict(global_after, log_frequency="34")
    assert client.update_trace_settings(settings={"trace_rate": None, "trace_count": None}) == view(global_after)
    assert client.get_trace_settings(model_name="simple") == view(model_first)
    cleared = client.update_trace_settings(model_name="simple", settings={"trace_rate": None, "trace_level": None})
    assert cleared == view(model_second)
    assert client.get_trace_settings() == view(global_after)
    with pytest.raises(InferenceServerException, match="Request for unknown model : does-not-exist"):
        client.update_trace_settings(model_name="does-not-exist", settings={"trace_rate": "1"})


def test_bad_values_are_400_or_invalid_argument_and_the_server_keeps_serving(triton_server, tmp_path, clients):
    triton, _ = _start(triton_server, tmp_path)
    http, grpc_client = clients(triton)
    cases = [
        ({"trace_rate": "abc"}, "Unable to parse 'trace_rate', got: abc"),
        ({"trace_count": "-5"}, "Unable to parse 'trace_count'. Expecting value >= -1, got:-5"),
        ({"log_frequency": "-1"}, "Unable to parse 'log_frequency', value is out of range"),
        ({"trace_level": ["OFF", "TENSORS"]}, "Expect only one trace level 'OFF' is specified"),
        ({"trace_level": ["VERBOSE"]}, "Unable to parse 'trace_level', got: VERBOSE"),
    ]
    for settings, message in cases:
        with pytest.raises(InferenceServerException) as info:
            http.update_trace_settings(settings=settings)
        assert info.value.status() == "400" and message in info.value.message()
        with pytest.raises(InferenceServerException) as info:
            grpc_client.update_trace_settings(settings=settings)
        assert info.value.status() == "StatusCode.INVALID_ARGUMENT" and message in info.value.message()
    with httpx.Client(base_url=triton.http_url, timeout=WAIT_S) as raw:
        for body in (b"{nope", b"[1, 2]"):
            response = raw.post("/v2/trace/setting", content=body)
            assert response.status_code == 400 and "failed to parse the request JSON" in response.json()["error"]
        assert raw.put("/v2/trace/setting").status_code == 405
        assert raw.get("/v2/models/simple/versions/1/trace/setting").status_code == 404
        response = raw.post("/v2/trace/setting", json={"trace_file": "x"})
        assert response.status_code == 501
    assert http.get_trace_settings()["trace_rate"] == "1000"  # nothing was applied
    _infer(http, httpclient)


def test_timestamps_are_written_for_sampled_requests(triton_server, tmp_path, clients):
    """rate 2 and count 3: requests 2, 4 and 6 are traced; log_frequency 1 writes one file per trace."""
    triton, trace_file = _start(triton_server, tmp_path, "level=TIMESTAMPS", "rate=2", "count=3")
    http, grpc_client = clients(triton)
    http.update_trace_settings(settings={"log_frequency": "1"})
    for n in range(8):
        _infer(http, httpclient) if n % 2 else _infer(grpc_client, grpcclient)
    assert http.get_trace_settings()["trace_count"] == "0"  # used up, as Triton shows it
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"{trace_file.name}.{i}" for i in range(3)]
    ids = []
    for index in range(3):
        records = json.loads((tmp_path / f"{trace_file.name}.{index}").read_text())
        head, stamps = records
        assert head["model_name"] == "simple" and head["model_version"] == 1 and head["parent_id"] == 0
        assert stamps["id"] == head["id"]
        names = [s["name"] for s in stamps["timestamps"]]
        assert names == PHASES
        values = [s["ns"] for s in stamps["timestamps"]]
        assert values == sorted(values) and values[0] > 0
        ids.append(head["id"])
    assert ids == [1, 2, 3]


def test_log_frequency_zero_writes_the_file_at_stop_and_tensors_are_traced(triton_server, tmp_path, clients):
    triton, trace_file = _start(triton_server, tmp_path, "level=TIMESTAMPS", "level=TENSORS", "rate=1")
    http, grpc_client = clients(triton)
    _infer(http, httpclient)
    _infer(grpc_client, grpcclient)
    assert not trace_file.exists()  # Triton keeps them until it stops
    triton.stop()
    records = json.loads(trace_file.read_text())
    heads = [r for r in records if "model_name" in r]
    assert [h["id"] for h in heads] == [1, 2]
    tensors = [r for r in records if "activity" in r and r["id"] == 1]
    inputs = {r["tensor"]["name"]: r["tensor"] for r in tensors if r["activity"] == "TENSOR_QUEUE_INPUT"}
    outputs = {r["tensor"]["name"]: r["tensor"] for r in tensors if r["activity"] == "TENSOR_BACKEND_OUTPUT"}
    assert inputs["INPUT0"] == {
        "name": "INPUT0",
        "data": ",".join(map(str, range(16))),
        "shape": "1,16",
        "dtype": "INT32",
    }
    assert outputs["OUTPUT1"]["data"] == ",".join(["0"] * 16)


def test_a_model_setting_traces_only_that_model(triton_server, tmp_path, clients):
    triton, trace_file = _start(triton_server, tmp_path, "triton,log-frequency=1")
    _bind_simple(triton, "other")
    http, _ = clients(triton)
    http.update_trace_settings(model_name="other", settings={"trace_level": ["TIMESTAMPS"], "trace_rate": "1"})
    _infer(http, httpclient, "simple")
    _infer(http, httpclient, "other")
    records = json.loads((tmp_path / f"{trace_file.name}.0").read_text())
    assert records[0]["model_name"] == "other"
    assert not (tmp_path / f"{trace_file.name}.1").exists()


def test_asyncio_clients(triton_server, tmp_path):
    triton, trace_file = _start(triton_server, tmp_path)

    async def main():
        http = aiohttpclient.InferenceServerClient(triton.http_url[len("http://") :])
        grpc_client = aiogrpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])
        try:
            updated = await http.update_trace_settings(model_name="simple", settings={"trace_rate": "7"})
            got = await grpc_client.get_trace_settings(model_name="simple", as_json=True)
            cleared = await grpc_client.update_trace_settings(settings={"trace_level": ["TIMESTAMPS"]}, as_json=True)
            return updated, got, cleared, await http.get_trace_settings()
        finally:
            await http.close()
            await grpc_client.close()

    updated, got, cleared, final = asyncio.run(main())
    assert updated["trace_rate"] == "7" and got["settings"]["trace_rate"]["value"] == ["7"]
    assert cleared["settings"]["trace_level"]["value"] == ["TIMESTAMPS"]
    assert final["trace_level"] == ["TIMESTAMPS"] and final["trace_file"] == str(trace_file)


def test_the_trace_group_is_behind_the_access_policy(triton_server, tmp_path, clients):
    config = TritonConfig(http_restricted_api="trace:tk=s3", grpc_restricted_protocol="trace:tk=s3")
    triton = triton_server(config)
    http, grpc_client = clients(triton)
    with pytest.raises(InferenceServerException, match="This API is restricted, expecting header 'tk'"):
        http.get_trace_settings()
    assert http.get_trace_settings(headers={"tk": "s3"})["trace_mode"] == "triton"
    with pytest.raises(InferenceServerException) as info:
        grpc_client.get_trace_settings()
    assert "expecting header 'triton-grpc-protocol-tk'" in info.value.message()
    granted = grpc_client.get_trace_settings(headers={"triton-grpc-protocol-tk": "s3"}, as_json=True)
    assert granted["settings"]["trace_mode"]["value"] == ["triton"]
    assert http.get_log_settings()["log_info"] is True  # another group stays open


def test_a_raw_grpc_setting_with_several_values_is_refused(triton_server, tmp_path):
    triton, _ = _start(triton_server, tmp_path)
    request = grpcclient.service_pb2.TraceSettingRequest()
    request.settings["trace_rate"].value.extend(["1", "2"])
    with grpc.insecure_channel(triton.grpc_url[len("grpc://") :]) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/TraceSetting",
            request_serializer=grpcclient.service_pb2.TraceSettingRequest.SerializeToString,
            response_deserializer=grpcclient.service_pb2.TraceSettingResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=WAIT_S)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Unable to parse 'trace_rate'" in info.value.details()


def test_streamed_requests_are_traced_to_their_end(triton_server, tmp_path):
    """A decoupled model over the gRPC stream: one trace per request, REQUEST_END after its last response."""
    triton, trace_file = _start(triton_server, tmp_path, "level=TIMESTAMPS", "rate=1", "triton,log-frequency=1")

    def infer(requests):
        for i in range(int(requests[0]["COUNT"][0])):
            yield [{"TEXT": np.array([f"tok{i}".encode()], dtype=object)}]

    triton.bind(
        "streamer",
        infer,
        inputs=[Tensor(name="COUNT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="TEXT", shape=(1,), dtype=bytes)],
        config=ModelConfig(batching=False, decoupled=True),
    )
    results: queue.Queue = queue.Queue()
    count = grpcclient.InferInput("COUNT", [1], "INT32")
    count.set_data_from_numpy(np.array([3], dtype=np.int32))
    with grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :]) as client:
        client.start_stream(callback=lambda result, error: results.put((result, error)))
        client.async_stream_infer("streamer", [count])
        answers = [results.get(timeout=WAIT_S) for _ in range(3)]
        client.stop_stream()
    assert all(error is None for _, error in answers)
    records = json.loads((tmp_path / f"{trace_file.name}.0").read_text())
    assert records[0]["model_name"] == "streamer"
    names = [s["name"] for s in records[1]["timestamps"]]
    assert names[0] == "REQUEST_START" and names[-1] == "REQUEST_END" and "COMPUTE_START" in names


def test_opentelemetry_mode_emits_one_span_per_traced_request(triton_server, clients):
    """Runs where opentelemetry-sdk is installed (an optional extra); the settings say which mode is on."""
    pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the application's provider: pytriton_lite uses the global one
    triton = triton_server(TritonConfig(trace_config=["mode=opentelemetry", "level=TIMESTAMPS", "rate=1"]))
    _bind_simple(triton)
    http, _ = clients(triton)
    settings = http.get_trace_settings()
    assert settings["trace_mode"] == "opentelemetry" and "trace_file" not in settings
    _infer(http, httpclient)
    spans = [span for span in exporter.get_finished_spans() if span.name == "simple"]
    assert len(spans) == 1
    assert spans[0].attributes["triton.model_name"] == "simple"
    assert [event.name for event in spans[0].events] == PHASES


def test_a_bad_trace_config_fails_the_start(triton_server):
    from pytriton_lite.exceptions import PyTritonValidationError

    with pytest.raises(PyTritonValidationError, match="invalid --trace-config 'rate=often'"):
        triton_server(TritonConfig(trace_config=["rate=often"]))


MODEL_PY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        pb_utils.Logger.log_info("repository model executes")
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor("OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())])
            for r in requests
        ]
"""
CONFIG_PBTXT = """
backend: "python"
max_batch_size: 0
input [{ name: "IN", data_type: TYPE_INT32, dims: [2] }]
output [{ name: "OUT", data_type: TYPE_INT32, dims: [2] }]
"""


def test_repository_models_are_traced_and_log_through_the_log_settings(triton_server, tmp_path, clients, caplog):
    models = tmp_path / "models"
    (models / "repo_model" / "1").mkdir(parents=True)
    (models / "repo_model" / "1" / "model.py").write_text(MODEL_PY)
    (models / "repo_model" / "config.pbtxt").write_text(CONFIG_PBTXT)
    trace_file = tmp_path / "trace.json"
    config = TritonConfig(
        model_repository=models, trace_config=["level=TIMESTAMPS", "rate=1", f"triton,file={trace_file}"]
    )
    triton = triton_server(config)
    http, grpc_client = clients(triton)
    caplog.set_level(logging.DEBUG)
    tensor = grpcclient.InferInput("IN", [2], "INT32")
    tensor.set_data_from_numpy(np.array([4, 5], dtype=np.int32))
    assert grpc_client.infer("repo_model", [tensor]).as_numpy("OUT").tolist() == [4, 5]
    assert "repository model executes" in caplog.messages
    caplog.clear()
    http.update_log_settings(settings={"log_info": False})
    grpc_client.infer("repo_model", [tensor])
    assert "repository model executes" not in caplog.messages
    triton.stop()
    records = json.loads(trace_file.read_text())
    heads = [r for r in records if "model_name" in r]
    assert [h["model_name"] for h in heads] == ["repo_model", "repo_model"]
    assert all([s["name"] for s in r["timestamps"]] == PHASES for r in records if "timestamps" in r)
