"""Statistics extension and Prometheus metrics over real sockets, with real tritonclient clients.

Requests are sent one at a time to a batching model, so every count is deterministic: one request = one
execution of its own batch size.
"""

from __future__ import annotations

import asyncio
import pathlib
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Dict, List

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.decorators import batch
from pytriton_lite.frontends.metrics import MetricsFrontend
from pytriton_lite.model_config import ModelConfig, Tensor

IN = [Tensor(name="x", shape=(-1,), dtype=np.float32)]
OUT = [Tensor(name="y", shape=(-1,), dtype=np.float32)]
BATCH_SIZES = [1, 2, 3, 4, 5, 8]
SERIES = '{{model="{model}",version="{version}"}}'


@batch
def double(x):
    if np.any(x < 0):
        raise ValueError("negative input")
    return {"y": x * 2}


def scrape(triton, path: str = "/metrics") -> Dict[str, float]:
    """Every sample of one scrape: 'name{labels}' -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{triton.metrics_port}{path}", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            values[key] = float(value)
    return values


def metric(values: Dict[str, float], name: str, model: str = "m", version: int = 1, **extra: str) -> float:
    labels = dict(model=model, version=str(version), **extra)
    return values[name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"]


def bind_double(triton, name: str = "m", version: int = 1, max_batch_size: int = 8) -> None:
    triton.bind(name, double, IN, OUT, model_version=version, config=ModelConfig(max_batch_size=max_batch_size))


def send(client, batch_size: int, model: str = "m", value: float = 1.0, module=httpclient):
    data = np.full((batch_size, 3), value, dtype=np.float32)
    inp = module.InferInput("x", list(data.shape), "FP32")
    inp.set_data_from_numpy(data)
    return client.infer(model, [inp])


def http_client(triton) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}", network_timeout=30)


def grpc_client(triton) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}")


def test_series_exist_with_zero_once_a_model_is_bound(triton_server):
    triton = triton_server()
    assert not any(key.startswith("nv_inference") for key in scrape(triton))
    bind_double(triton, "m", 1)
    bind_double(triton, "m", 2, max_batch_size=4)
    values = scrape(triton)
    for version in (1, 2):
        for name in (
            "nv_inference_request_success",
            "nv_inference_count",
            "nv_inference_exec_count",
            "nv_inference_request_duration_us",
            "nv_inference_queue_duration_us",
            "nv_inference_compute_input_duration_us",
            "nv_inference_compute_infer_duration_us",
            "nv_inference_compute_output_duration_us",
            "nv_inference_pending_request_count",
            "pytriton_lite_queue_size",
            "pytriton_lite_batch_size_count",
            "pytriton_lite_batch_size_sum",
        ):
            assert metric(values, name, version=version) == 0, name
        for reason in ("REJECTED", "CANCELED", "BACKEND", "OTHER"):
            assert metric(values, "nv_inference_request_failure", version=version, reason=reason) == 0
    assert metric(values, "pytriton_lite_batch_size_bucket", version=2, le="4.0") == 0
    assert not any(key.endswith("_total") or "_created" in key for key in values)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_exact_counts_after_sequential_requests(triton_server, transport):
    triton = triton_server()
    bind_double(triton)
    client = http_client(triton) if transport == "http" else grpc_client(triton)
    module = httpclient if transport == "http" else grpcclient
    for size in BATCH_SIZES:
        result = send(client, size, module=module)
        assert result.as_numpy("y").shape == (size, 3)

    values = scrape(triton)
    assert metric(values, "nv_inference_request_success") == len(BATCH_SIZES)
    assert metric(values, "nv_inference_count") == sum(BATCH_SIZES)
    assert metric(values, "nv_inference_exec_count") == len(BATCH_SIZES)
    assert metric(values, "nv_inference_pending_request_count") == 0
    assert metric(values, "pytriton_lite_queue_size") == 0
    for reason in ("REJECTED", "CANCELED", "BACKEND", "OTHER"):
        assert metric(values, "nv_inference_request_failure", reason=reason) == 0
    # the request duration covers the queue and compute phases of each request
    total = metric(values, "nv_inference_request_duration_us")
    assert total >= metric(values, "nv_inference_compute_infer_duration_us")
    assert total >= metric(values, "nv_inference_queue_duration_us")
    # the batch-size histogram: one observation per execution, of its batch size
    assert metric(values, "pytriton_lite_batch_size_count") == len(BATCH_SIZES)
    assert metric(values, "pytriton_lite_batch_size_sum") == sum(BATCH_SIZES)
    expected = {"1.0": 1, "2.0": 2, "4.0": 4, "8.0": 6, "+Inf": 6}
    assert {le: metric(values, "pytriton_lite_batch_size_bucket", le=le) for le in expected} == expected

    # the statistics extension agrees, in Triton's shape
    if transport == "http":
        stats = client.get_inference_statistics("m")["model_stats"]
        to_int = int
    else:
        stats = client.get_inference_statistics("m", as_json=True)["model_stats"]
        to_int = int  # int64 members are strings in proto JSON
    assert [(s["name"], s["version"]) for s in stats] == [("m", "1")]
    entry = stats[0]
    assert to_int(entry["inference_count"]) == sum(BATCH_SIZES)
    assert to_int(entry["execution_count"]) == len(BATCH_SIZES)
    assert to_int(entry["last_inference"]) > 0
    inference = entry["inference_stats"]
    for key in ("success", "queue", "compute_input", "compute_infer", "compute_output"):
        assert to_int(inference[key]["count"]) == len(BATCH_SIZES), key
    assert sorted(to_int(b["batch_size"]) for b in entry["batch_stats"]) == BATCH_SIZES
    assert all(to_int(b["compute_infer"]["count"]) == 1 for b in entry["batch_stats"])
    client.close()


def test_backend_failure_is_counted_with_its_reason(triton_server):
    triton = triton_server()
    bind_double(triton)
    client = http_client(triton)
    send(client, 2)
    with pytest.raises(InferenceServerException, match="negative input"):
        send(client, 3, value=-1.0)
    values = scrape(triton)
    assert metric(values, "nv_inference_request_failure", reason="BACKEND") == 1
    for reason in ("REJECTED", "CANCELED", "OTHER"):
        assert metric(values, "nv_inference_request_failure", reason=reason) == 0
    assert metric(values, "nv_inference_request_success") == 1
    assert metric(values, "nv_inference_exec_count") == 1  # the failed execution is not counted
    assert metric(values, "nv_inference_count") == 2
    stats = client.get_inference_statistics("m")["model_stats"][0]["inference_stats"]
    assert stats["fail"]["count"] == 1 and stats["success"]["count"] == 1
    client.close()


def test_pending_and_queue_size_rise_while_waiting_and_return_to_zero(triton_server):
    triton = triton_server()
    entered, release = threading.Event(), threading.Event()

    @batch
    def gated(x):
        entered.set()
        assert release.wait(60), "test never released the model"
        return {"y": x}

    triton.bind("m", gated, IN, OUT, config=ModelConfig(max_batch_size=8))
    errors: List[BaseException] = []

    def one_request() -> None:
        client = http_client(triton)
        try:
            send(client, 1)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            client.close()

    first = threading.Thread(target=one_request)
    first.start()
    try:
        assert entered.wait(30)  # the only instance is now busy
        waiting = [threading.Thread(target=one_request) for _ in range(2)]
        for thread in waiting:
            thread.start()
        deadline = time.monotonic() + 30
        values = scrape(triton)
        while metric(values, "nv_inference_pending_request_count") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling for the two requests to arrive; the assert below decides
            values = scrape(triton)
        assert metric(values, "nv_inference_pending_request_count") == 2
        assert metric(values, "pytriton_lite_queue_size") == 2
        assert metric(values, "nv_inference_request_success") == 0
    finally:
        release.set()
        first.join(60)
        for thread in locals().get("waiting", []):
            thread.join(60)
    assert errors == []
    values = scrape(triton)
    assert metric(values, "nv_inference_pending_request_count") == 0
    assert metric(values, "pytriton_lite_queue_size") == 0
    assert metric(values, "nv_inference_request_success") == 3
    # the two waiting requests ran either together (1 execution of 2) or apart; rows always add up
    assert metric(values, "nv_inference_count") == 3


def test_two_servers_in_one_process_do_not_share_series(triton_server):
    one, two = triton_server(), triton_server()
    assert one.metrics_port != two.metrics_port
    bind_double(one)
    bind_double(two)
    bind_double(two, "only_two")
    client_one, client_two = http_client(one), http_client(two)
    for _ in range(2):
        send(client_one, 4)
    for _ in range(3):
        send(client_two, 1)
    first, second = scrape(one), scrape(two)
    assert metric(first, "nv_inference_request_success") == 2 and metric(first, "nv_inference_count") == 8
    assert metric(second, "nv_inference_request_success") == 3 and metric(second, "nv_inference_count") == 3
    assert not any('model="only_two"' in key for key in first)
    assert metric(second, "nv_inference_count", model="only_two") == 0
    client_one.close()
    client_two.close()


def _status(triton, path: str, method: str = "GET"):
    request = urllib.request.Request(f"http://127.0.0.1:{triton.metrics_port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_metrics_routes_and_methods(triton_server):
    triton = triton_server()
    bind_double(triton)
    assert metric(scrape(triton, "/metrics/"), "nv_inference_count") == 0
    assert _status(triton, "/metrics", "POST") == (405, b'{"error":"Method Not Allowed"}')
    assert _status(triton, "/metrics", "PUT")[0] == 405
    assert _status(triton, "/metrics", "HEAD")[0] == 405
    assert _status(triton, "/other") == (400, b"")  # Triton's metrics server: anything else is a bad request


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_statistics_errors_are_invalid_argument(triton_server, transport):
    triton = triton_server()
    bind_double(triton)
    client = http_client(triton) if transport == "http" else grpc_client(triton)
    status = "400" if transport == "http" else "StatusCode.INVALID_ARGUMENT"
    with pytest.raises(InferenceServerException) as info:
        client.get_inference_statistics("nope")
    assert info.value.status() == status
    assert info.value.message() == "requested model 'nope' is not available"
    with pytest.raises(InferenceServerException) as info:
        client.get_inference_statistics("m", "3")
    assert info.value.status() == status
    assert info.value.message() == "requested model version is not available for model 'm'"
    # all models: every ready version
    bind_double(triton, "m", 2)
    everything = (
        client.get_inference_statistics(as_json=True) if transport == "grpc" else client.get_inference_statistics()
    )
    assert sorted((s["name"], s["version"]) for s in everything["model_stats"]) == [("m", "1"), ("m", "2")]
    client.close()


def test_allow_metrics_false_serves_no_metrics(triton_server):
    triton = triton_server(TritonConfig(allow_metrics=False))
    assert triton.metrics_port is None


def test_busy_port_raises_oserror_and_port_zero_is_ephemeral():
    class _NoModels:
        def models(self):
            return []

    async def main() -> None:
        first = MetricsFrontend(_NoModels(), host="127.0.0.1", port=0)
        await first.start()
        try:
            assert first.port and first.port > 0
            second = MetricsFrontend(_NoModels(), host="127.0.0.1", port=first.port)
            with pytest.raises(OSError):
                await second.start()
        finally:
            await first.stop()
        # the port is free again once stopped
        third = MetricsFrontend(_NoModels(), host="127.0.0.1", port=first.port)
        await third.start()
        await third.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_docs_python_example_runs(capsys):
    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(page), "exec"), {"__name__": "docs_metrics"})
    assert capsys.readouterr().out.splitlines()[0] == "8 3 3"


def test_busy_port_error_names_the_metrics_address():
    import errno
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        frontend = MetricsFrontend(object(), host="127.0.0.1", port=port)
        with pytest.raises(OSError) as info:
            asyncio.run(asyncio.wait_for(frontend.start(), 30))
    # the same words as the HTTP front end's (one embedded-uvicorn helper binds both)
    assert info.value.errno == errno.EADDRINUSE
    assert f"Metrics address 127.0.0.1:{port} is in use" in str(info.value)
    assert frontend.port is None


def test_scrapes_on_a_kept_alive_connection_and_a_prompt_stop():
    class _NoModels:
        def all_statistics(self):
            return []

    async def main():
        frontend = MetricsFrontend(_NoModels(), host="127.0.0.1", port=0)
        await frontend.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", frontend.port)
        for _ in range(2):  # one connection, two scrapes
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200") and b"date: " in head.lower()
            length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))
            await asyncio.wait_for(reader.readexactly(length), 10)
        began = time.monotonic()
        await frontend.stop()
        elapsed = time.monotonic() - began
        assert await asyncio.wait_for(reader.read(), 10) == b""  # the idle connection is closed
        writer.close()
        return elapsed

    assert asyncio.run(asyncio.wait_for(main(), 60)) < 2.0


@pytest.mark.skipif(not pathlib.Path("/proc/stat").exists(), reason="CPU metrics read /proc (Linux)")
def test_cpu_families_as_triton_and_allow_cpu_metrics_false_removes_them(triton_server):
    triton = triton_server()
    bind_double(triton)
    values = scrape(triton)
    assert 0.0 <= values["nv_cpu_utilization"] <= 1.0
    assert values["nv_cpu_memory_total_bytes"] > values["nv_cpu_memory_used_bytes"] > 0
    closed = triton_server(config=TritonConfig(allow_cpu_metrics=False))
    bind_double(closed)
    assert not any(key.startswith("nv_cpu_") for key in scrape(closed))


def test_summary_latencies_as_triton_when_metrics_config_asks(triton_server):
    triton = triton_server(config=TritonConfig(metrics_config=["summary_latencies=true", "counter_latencies=false"]))
    bind_double(triton)
    client = http_client(triton)
    for _ in range(4):
        send(client, 2)
    values = scrape(triton)
    for phase in ("request", "queue", "compute_input", "compute_infer", "compute_output"):
        name = f"nv_inference_{phase}_summary_us"
        assert metric(values, name + "_count") == 4
        assert metric(values, name + "_sum") >= 0
        for quantile in ("0.5", "0.9", "0.95", "0.99"):
            assert metric(values, name, quantile=quantile) >= 0
    assert metric(values, "nv_inference_request_summary_us", quantile="0.5") > 0
    assert not any(key.startswith("nv_inference_request_duration_us") for key in values)  # counters off
    plain = triton_server()
    bind_double(plain)
    assert not any("_summary_us" in key for key in scrape(plain))  # off by default, as in Triton


def test_a_bad_metrics_config_entry_fails_at_construction():
    from pytriton_lite.exceptions import PyTritonValidationError
    from pytriton_lite.triton import Triton

    with pytest.raises(PyTritonValidationError, match="summary_latency=true"):
        Triton(config=TritonConfig(metrics_config=["summary_latency=true"]))
