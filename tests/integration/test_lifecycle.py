"""Triton lifecycle: run/serve/stop, draining, signals, unrecoverable errors, ports, config, logging, cache, warm-up."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import List

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.exceptions import (
    PyTritonError,
    PyTritonInvalidOperationError,
    PyTritonUnrecoverableError,
    PyTritonValidationError,
)
from pytriton_lite.model_config import ModelConfig, ModelWarmup, Tensor, WarmupInput
from pytriton_lite.testing import find_free_port, is_accepting, loopback_config, model_statistics, wait_until
from pytriton_lite.triton import Triton, TritonConfig, TritonSecurityConfig

IN = [Tensor(name="x", shape=(-1,), dtype=np.float32)]
OUT = [Tensor(name="y", shape=(-1,), dtype=np.float32)]


def identity(requests):
    return [{"y": r["x"]} for r in requests]


def http_client(triton: Triton) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}", network_timeout=30)


def infer(client, model: str = "m", value: float = 1.0, **kwargs):
    data = np.full((1, 3), value, dtype=np.float32)
    inp = httpclient.InferInput("x", data.shape, "FP32")
    inp.set_data_from_numpy(data)
    return client.infer(model, [inp], **kwargs)


def test_bind_inside_context_is_live_immediately():
    with Triton(config=loopback_config()) as triton:
        triton.bind("m", identity, IN, OUT)
        client = http_client(triton)
        assert client.is_server_ready() and client.is_model_ready("m")
        assert infer(client).as_numpy("y").tolist() == [[1.0, 1.0, 1.0]]
        client.close()
    assert triton.stop() is False  # already stopped by __exit__


def test_bind_before_run_and_validation_errors():
    triton = Triton(config=loopback_config())
    with pytest.raises(PyTritonValidationError):
        triton.bind("bad name!", identity, IN, OUT)
    with pytest.raises(PyTritonValidationError, match="Output tensors cannot be optional"):
        triton.bind("m", identity, IN, [Tensor(name="y", shape=(-1,), dtype=np.float32, optional=True)])
    with pytest.raises(PyTritonValidationError):
        triton.bind("m", 42, IN, OUT)  # type: ignore[arg-type]
    triton.bind("m", identity, IN, OUT)
    with pytest.raises(PyTritonInvalidOperationError, match="same name twice"):
        triton.bind("M", identity, IN, OUT)
    assert not triton.is_alive()
    triton.run()
    try:
        assert triton.is_alive()
        client = http_client(triton)
        assert infer(client).as_numpy("y").shape == (1, 3)
        client.close()
    finally:
        assert triton.stop() is True
    assert not triton.is_alive()


def test_auto_names_and_versions():
    with Triton(config=loopback_config()) as triton:
        triton.bind(
            "v",
            lambda reqs: [{"OUTPUT_1": r["INPUT_1"] + 1} for r in reqs],
            [Tensor(shape=(-1,), dtype=np.float32)],
            [Tensor(shape=(-1,), dtype=np.float32)],
        )
        triton.bind(
            "v",
            lambda reqs: [{"OUTPUT_1": r["INPUT_1"] + 2} for r in reqs],
            [Tensor(shape=(-1,), dtype=np.float32)],
            [Tensor(shape=(-1,), dtype=np.float32)],
            model_version=2,
        )
        client = http_client(triton)
        data = np.zeros((1, 2), np.float32)
        inp = httpclient.InferInput("INPUT_1", data.shape, "FP32")
        inp.set_data_from_numpy(data)
        assert client.infer("v", [inp]).as_numpy("OUTPUT_1")[0, 0] == 2.0  # latest version
        assert client.infer("v", [inp], model_version="1").as_numpy("OUTPUT_1")[0, 0] == 1.0
        client.close()


def test_stop_drains_running_and_queued_requests():
    entered = threading.Event()
    release = threading.Event()

    def slow(requests):
        entered.set()
        assert release.wait(10)
        return [{"y": r["x"]} for r in requests]

    triton = Triton(config=loopback_config())
    triton.bind("m", slow, IN, OUT, config=ModelConfig(max_batch_size=1))
    triton.run()
    results, errors = [], []

    def call(value):
        client = http_client(triton)
        try:
            results.append(float(infer(client, value=value).as_numpy("y")[0, 0]))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=call, args=(v,)) for v in (1.0, 2.0)]
    threads[0].start()
    assert entered.wait(10)
    threads[1].start()
    wait_until(lambda: model_statistics(triton, "m").pending >= 1)  # the second one is queued
    stopper = threading.Thread(target=triton.stop)
    stopper.start()
    wait_until(lambda: not is_accepting(triton))
    release.set()
    stopper.join(15)
    for thread in threads:
        thread.join(15)
    assert errors == []
    assert sorted(results) == [1.0, 2.0]  # nothing in flight was lost


def test_new_requests_are_refused_while_draining():
    entered = threading.Event()
    release = threading.Event()

    def slow(requests):
        entered.set()
        assert release.wait(10)
        return [{"y": r["x"]} for r in requests]

    triton = Triton(config=loopback_config())
    triton.bind("m", slow, IN, OUT)
    triton.run()
    worker = threading.Thread(target=lambda: infer(http_client(triton)))
    worker.start()
    assert entered.wait(10)
    client = http_client(triton)
    stopper = threading.Thread(target=triton.stop)
    stopper.start()
    wait_until(lambda: not is_accepting(triton))
    try:
        assert not client.is_server_ready()
        with pytest.raises(InferenceServerException) as info:
            infer(client)
        assert info.value.status() == "503"
    finally:
        release.set()
        stopper.join(15)
        worker.join(15)
        client.close()


def test_unrecoverable_error_stops_the_server():
    def fatal(requests):
        raise PyTritonUnrecoverableError("GPU fell off the bus")

    triton = Triton(config=loopback_config())
    triton.bind("m", fatal, IN, OUT)
    triton.run()
    client = http_client(triton)
    with pytest.raises(InferenceServerException, match="GPU fell off the bus"):
        infer(client)
    client.close()
    deadline = time.monotonic() + 15
    while triton.is_alive():
        assert time.monotonic() < deadline, "server did not stop after PyTritonUnrecoverableError"
        time.sleep(0.01)
    assert triton.stop() is False


def test_busy_ports_are_all_named():
    blockers = []
    ports = []
    for _ in range(2):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        blockers.append(sock)
        ports.append(sock.getsockname()[1])
    try:
        config = loopback_config(TritonConfig(http_port=ports[0], grpc_port=ports[1]))
        with pytest.raises(PyTritonError) as info:
            Triton(config=config).run()
        assert f"http port {ports[0]}" in str(info.value) and f"grpc port {ports[1]}" in str(info.value)
    finally:
        for sock in blockers:
            sock.close()


def test_two_servers_in_one_process_http_only_and_grpc_only():
    with (
        Triton(config=loopback_config(TritonConfig(allow_grpc=False))) as a,
        Triton(config=loopback_config(TritonConfig(allow_http=False))) as b,
    ):
        a.bind("m", identity, IN, OUT)
        b.bind("m", lambda reqs: [{"y": r["x"] * 3} for r in reqs], IN, OUT)
        assert a.grpc_port is None and b.http_port is None
        client = http_client(a)
        assert infer(client, value=2.0).as_numpy("y")[0, 0] == 2.0
        client.close()
        import tritonclient.grpc as grpcclient

        gclient = grpcclient.InferenceServerClient(f"127.0.0.1:{b.grpc_port}")
        data = np.full((1, 3), 2.0, np.float32)
        inp = grpcclient.InferInput("x", data.shape, "FP32")
        inp.set_data_from_numpy(data)
        assert gclient.infer("m", [inp]).as_numpy("y")[0, 0] == 6.0
        gclient.close()


def test_env_overrides_parse_booleans(monkeypatch):
    monkeypatch.setenv("PYTRITON_TRITON_CONFIG_ALLOW_GRPC", "false")
    monkeypatch.setenv("PYTRITON_TRITON_CONFIG_ALLOW_METRICS", "0")
    monkeypatch.setenv("PYTRITON_TRITON_CONFIG_HTTP_PORT", "0")
    monkeypatch.setenv("PYTRITON_TRITON_CONFIG_HTTP_ADDRESS", "127.0.0.1")
    triton = Triton()
    assert triton.config.allow_grpc is False and triton.config.allow_metrics is False
    triton.run()
    try:
        assert triton.grpc_port is None and triton.metrics_port is None and triton.http_port
    finally:
        triton.stop()
    # explicit config wins over the environment
    assert Triton(config=TritonConfig(allow_grpc=True)).config.allow_grpc is True


def test_both_endpoints_disabled_is_refused():
    with pytest.raises(PyTritonValidationError, match="has to be allowed"):
        TritonConfig(allow_http=False, allow_grpc=False)
    with pytest.raises(TypeError):
        TritonConfig(True)  # type: ignore[misc]


def test_log_verbose_warns_and_log_file_is_written(tmp_path, caplog):
    log_file = tmp_path / "server.log"
    with caplog.at_level(logging.WARNING, logger="pytriton_lite"):
        with Triton(config=loopback_config(TritonConfig(log_verbose=4, log_file=log_file))) as triton:
            triton.bind("m", identity, IN, OUT)
    assert "running with enabled verbose logs (log_verbose_level=4)" in caplog.text
    text = log_file.read_text()
    assert "Infer function available as model: `/v2/models/m`" in text


def test_callable_traceback_logged_once_with_model_name(caplog):
    def boom(requests):
        raise ValueError("bad things")

    with Triton(config=loopback_config()) as triton:
        triton.bind("exploding", boom, IN, OUT)
        client = http_client(triton)
        with caplog.at_level(logging.WARNING, logger="pytriton_lite"):
            with pytest.raises(InferenceServerException, match="ValueError: bad things") as info:
                infer(client, model="exploding")
        assert info.value.status() == "500"
        assert client.is_server_live()  # still serving after the failure
        client.close()
    records = [r for r in caplog.records if "exploding" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is not None


def test_response_cache_answers_identical_requests_without_the_callable():
    calls = []

    def counted(requests):
        calls.append(len(requests))
        return [{"y": r["x"] * 2} for r in requests]

    with pytest.raises(PyTritonValidationError, match="cache_config"):
        Triton(config=loopback_config()).bind("c", counted, IN, OUT, config=ModelConfig(response_cache=True))
    config = loopback_config(TritonConfig(cache_config=["local,size=1048576"]))
    with Triton(config=config) as triton:
        triton.bind("c", counted, IN, OUT, config=ModelConfig(response_cache=True))
        client = http_client(triton)
        for _ in range(10):
            assert infer(client, model="c", value=3.0).as_numpy("y")[0, 0] == 6.0
        assert infer(client, model="c", value=4.0).as_numpy("y")[0, 0] == 8.0
        token = {"triton-access-token": triton.get_access_token() or ""}  # statistics are protected by default
        stats = client.get_inference_statistics("c", headers=token)["model_stats"][0]["inference_stats"]
        client.close()
    assert len(calls) == 2
    assert stats["cache_hit"]["count"] == 9 and stats["cache_miss"]["count"] == 2


def test_warmup_runs_before_the_model_is_ready():
    seen = []

    def model(requests):
        seen.append(requests[0]["x"].shape)
        return [{"y": r["x"]} for r in requests]

    warmup = ModelWarmup(
        name="w", batch_size=2, count=3, inputs={"x": WarmupInput(dtype=np.float32, shape=(4,), zero_data=True)}
    )
    with Triton(config=loopback_config()) as triton:
        triton.bind("w", model, IN, OUT, config=ModelConfig(model_warmup=[warmup]))
        assert seen == [(2, 4)] * 3  # done by the time bind() returned, i.e. before ready
        client = http_client(triton)
        assert client.is_model_ready("w")
        client.close()


SERVER_SCRIPT = textwrap.dedent(
    """
    import sys, time, threading
    import numpy as np
    from pytriton_lite.triton import Triton, TritonConfig
    from pytriton_lite.model_config import Tensor

    release = threading.Event()

    def slow(requests):
        print("ENTERED", flush=True)
        time.sleep(0.5)  # a request in flight when SIGTERM arrives
        return [{"y": r["x"]} for r in requests]

    port = int(sys.argv[1])
    config = TritonConfig(http_address="127.0.0.1", http_port=port, allow_grpc=False, allow_metrics=False)
    with Triton(config=config) as triton:
        triton.bind("m", slow, [Tensor(name="x", shape=(-1,), dtype=np.float32)],
                    [Tensor(name="y", shape=(-1,), dtype=np.float32)])
        print("READY", flush=True)
        triton.serve()
    print("STOPPED", flush=True)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_serve_drains_and_exits_cleanly(tmp_path, signum):
    script = tmp_path / "server.py"
    script.write_text(SERVER_SCRIPT)
    port = find_free_port()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout.readline().strip() == "READY"
        client = httpclient.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=30)
        result = {}
        worker = threading.Thread(target=lambda: result.setdefault("r", infer(client)))
        worker.start()
        assert proc.stdout.readline().strip() == "ENTERED"
        proc.send_signal(signum)
        worker.join(20)
        assert result["r"].as_numpy("y").shape == (1, 3)  # the in-flight request completed
        assert proc.wait(20) == 0
        assert "STOPPED" in proc.stdout.read()
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()


def test_is_alive_polled_while_another_thread_binds():
    """serve() polls is_alive() from its thread while bind() from another inserts models on the loop.

    It used to iterate the data plane's batcher dict, which a concurrent bind() changes under it
    ("dictionary changed size during iteration" stopped the server)."""
    errors: List[BaseException] = []
    with Triton(config=loopback_config()) as triton:
        done = threading.Event()

        def binder():
            try:
                for index in range(150):
                    triton.bind(f"m{index}", lambda reqs: [{"y": r["x"]} for r in reqs], IN, OUT)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                done.set()

        thread = threading.Thread(target=binder)
        thread.start()
        polls = 0
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            try:
                assert triton.is_alive()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                break
            polls += 1
        thread.join(60)
        assert errors == [] and polls > 0
        assert triton.is_alive()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_run_stop_bind_again_run_again_on_the_same_ports(protocol):
    """PyTriton's notebook pattern: the same Triton is started again, with the model re-bound after stop()."""
    from pytriton_lite.client import ModelClient

    config = loopback_config(TritonConfig(http_port=find_free_port(), grpc_port=find_free_port(), allow_metrics=False))
    triton = Triton(config=config, security_config=TritonSecurityConfig(restricted_endpoints=[]))
    port = config.http_port if protocol == "http" else config.grpc_port
    url = f"{protocol}://127.0.0.1:{port}"
    x = np.ones((2, 3), np.float32)
    try:
        for factor in (1.0, 2.0, 3.0):  # three generations of the server
            triton.bind("m", lambda reqs, f=factor: [{"y": r["x"] * f} for r in reqs], IN, OUT)
            with pytest.raises(PyTritonInvalidOperationError, match="same name twice"):
                triton.bind("m", identity, IN, OUT)
            triton.run()
            assert triton.is_alive() and triton.is_connected()
            assert (triton.http_port, triton.grpc_port) == (config.http_port, config.grpc_port)
            with ModelClient(url, "m", init_timeout_s=10) as client:
                assert client.infer_batch(x)["y"].tolist() == (x * factor).tolist()
            assert triton.stop() is True
            assert not triton.is_alive() and not triton.is_connected() and triton.stop() is False
            assert not is_port_open(port)
        # the next start serves what was bound since the last stop(), and only that
        triton.bind("late", identity, IN, OUT)
        triton.run()
        with ModelClient(url, "late", init_timeout_s=10) as client:
            assert client.infer_batch(x)["y"].tolist() == x.tolist()
        with ModelClient(url, "m", init_timeout_s=0.5) as client:
            with pytest.raises(Exception, match="does not know model 'm'"):
                client.infer_batch(x)  # the models of the earlier runs went with their server
    finally:
        triton.stop()


def test_stop_before_serve_still_wins_the_race_and_serve_after_a_full_stop_serves():
    triton = Triton(config=loopback_config(TritonConfig(allow_grpc=False, allow_metrics=False)))
    triton.bind("m", identity, IN, OUT)
    assert triton.stop() is False
    triton.serve(monitoring_period_s=0.05)  # returns at once: stop() came first
    assert not triton.is_alive()
    triton.run()  # an explicit start after that stop() starts
    try:
        client = http_client(triton)
        assert infer(client).as_numpy("y").tolist() == [[1.0, 1.0, 1.0]]
        client.close()
    finally:
        assert triton.stop() is True
    triton.bind("m", identity, IN, OUT)
    server = threading.Thread(target=triton.serve, kwargs={"monitoring_period_s": 0.05})
    server.start()
    try:
        wait_until(triton.is_alive, timeout=10)
        client = http_client(triton)
        wait_until(lambda: client.is_model_ready("m"), timeout=10)  # alive comes before the bound model is READY
        assert infer(client, value=4.0).as_numpy("y")[0, 0] == 4.0
        client.close()
    finally:
        triton.stop()
        server.join(15)
    assert not server.is_alive()


def is_port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0
