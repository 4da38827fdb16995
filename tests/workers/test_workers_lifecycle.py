"""Front-end workers over their lifetime: a killed worker is restarted while the other serves, a graceful stop
lets a running request answer, model control through one worker is seen by the others, and the serve CLI's
workers never outlive it (SIGKILL) and stop with it (SIGTERM, exit status 0)."""

from __future__ import annotations

import http.client
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from workers_support import (
    accepted_by,
    bind_identity,
    grpc_identity,
    http_identity,
    is_gone,
    raw_http_infer,
    wait_for,
    worker_config,
    worker_processes,
)

from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.testing import running_triton
from pytriton_lite.triton import Triton

ROOT = pathlib.Path(__file__).resolve().parents[2]

MODEL_PY = """
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "x").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("y", x)]))
        return responses
"""

CONFIG = """
backend: "python"
max_batch_size: 8
input [{ name: "x" data_type: TYPE_FP32 dims: [ -1 ] }]
output [{ name: "y" data_type: TYPE_FP32 dims: [ -1 ] }]
"""


def python_repository(root: pathlib.Path, name: str = "ident") -> pathlib.Path:
    """A model repository with one python-backend model ``y = x`` (FP32)."""
    (root / name / "1").mkdir(parents=True)
    (root / name / "1" / "model.py").write_text(textwrap.dedent(MODEL_PY))
    (root / name / "config.pbtxt").write_text(textwrap.dedent(CONFIG))
    return root


def keep_alive_on_both_workers(port: int, pids: List[int], count: int = 8) -> List[http.client.HTTPConnection]:
    """``count`` open HTTP connections that, together, reach both workers (checked through /proc)."""
    connections = []
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.connect()
        connections.append(connection)
    mine = {c.sock.getsockname()[1] for c in connections}
    owners = wait_for(
        lambda: {o for p, o in accepted_by(port, pids).items() if p in mine} == set(pids) or None,
        10,
        "the connections are accepted by both workers",
    )
    assert owners
    return connections


def status_of(connection: http.client.HTTPConnection, method: str, path: str, body: Any = None) -> int:
    connection.request(method, path, body=body)
    response = connection.getresponse()
    response.read()
    return response.status


# --- a killed worker ------------------------------------------------------------------------------------------


def test_a_killed_worker_is_restarted_and_the_server_answers_meanwhile(triton_server):
    triton = triton_server(worker_config())
    bind_identity(triton)
    hub = triton._workers
    victim, survivor = hub.pids()
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: is_gone(victim), 10, "the killed worker exits")
    answered = 0
    deadline = time.monotonic() + 30
    # until its replacement is up, every request (each on a new connection) goes to the other worker
    while not (len(hub.pids()) == 2 and victim not in hub.pids()):
        assert time.monotonic() < deadline, "no new worker within 30 s"
        http_identity(triton.http_port, float(answered))
        grpc_identity(triton.grpc_port, float(answered))
        answered += 1
    replacement = (set(hub.pids()) - {survivor}).pop()
    assert replacement != victim and not is_gone(replacement) and hub.restarts == 1
    print(f"\nworker {victim} killed: {answered} request pairs answered while it was restarted as {replacement}")
    for i in range(4):
        http_identity(triton.http_port, float(i))
        grpc_identity(triton.grpc_port, float(i))
    # the replacement accepts connections too
    connections = keep_alive_on_both_workers(triton.http_port, [survivor, replacement])
    try:
        body = '{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}'
        for connection in connections:  # the identity model wants "s" too: a 400 from the serving process
            assert status_of(connection, "POST", "/v2/models/identity/infer", body) == 400
            assert status_of(connection, "GET", "/v2/health/ready") == 200
    finally:
        for connection in connections:
            connection.close()
    assert hub.restarts == 1


# --- graceful stop ----------------------------------------------------------------------------------------------


class SlowModel:
    """Sleeps ``seconds`` per execution; ``entered`` is set once a request runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.entered = threading.Event()

    def __call__(self, requests: List[Any]) -> List[Dict[str, np.ndarray]]:
        self.entered.set()
        time.sleep(self.seconds)
        return [{"y": r["x"]} for r in requests]


def test_stop_lets_requests_in_flight_answer_then_the_workers_exit():
    model = SlowModel(0.5)
    results: Dict[str, Any] = {}
    with running_triton(worker_config()) as triton:
        triton.bind(
            "slow",
            model,
            [Tensor(name="x", shape=(-1,), dtype=np.float32)],
            [Tensor(name="y", shape=(-1,), dtype=np.float32)],
            config=ModelConfig(max_batch_size=4),
        )
        pids = triton._workers.pids()
        data = np.full((1, 2), 3.0, np.float32)

        def over_http() -> None:
            client = httpclient.InferenceServerClient(triton.http_url[7:], network_timeout=30)
            try:
                tensor = httpclient.InferInput("x", data.shape, "FP32")
                tensor.set_data_from_numpy(data)
                results["http"] = client.infer("slow", [tensor]).as_numpy("y").tolist()
            except Exception as exc:  # noqa: BLE001 - asserted below
                results["http"] = exc
            finally:
                client.close()

        def over_grpc() -> None:
            client = grpcclient.InferenceServerClient(triton.grpc_url[7:])
            try:
                tensor = grpcclient.InferInput("x", data.shape, "FP32")
                tensor.set_data_from_numpy(data)
                results["grpc"] = client.infer("slow", [tensor], client_timeout=30).as_numpy("y").tolist()
            except Exception as exc:  # noqa: BLE001 - asserted below
                results["grpc"] = exc
            finally:
                client.close()

        clients = [threading.Thread(target=over_http), threading.Thread(target=over_grpc)]
        for thread in clients:
            thread.start()
        assert model.entered.wait(10)
        time.sleep(0.05)  # both requests have reached the serving process (queued or running)
        stopper = threading.Thread(target=triton.stop)
        started = time.monotonic()
        stopper.start()
        for thread in clients:
            thread.join(30)
        stopper.join(30)
        print(f"\nstop with two requests in flight took {time.monotonic() - started:.2f} s")
        assert not stopper.is_alive()
    assert results == {"http": data.tolist(), "grpc": data.tolist()}
    wait_for(lambda: all(is_gone(pid) for pid in pids), 10, "the workers exit after stop")
    assert not any(descendant in pids for descendant in worker_processes(os.getpid()))


# --- model control through one worker ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repository_server(tmp_path_factory) -> Iterator[Triton]:
    repository = python_repository(tmp_path_factory.mktemp("workers_repository"))
    config = worker_config(model_control_mode="explicit", load_model=["ident"])
    with running_triton(config, model_repository=repository) as triton:
        yield triton


def test_load_and_unload_through_one_worker_are_seen_on_every_connection_at_once(repository_server):
    triton = repository_server
    pids = triton._workers.pids()
    connections = keep_alive_on_both_workers(triton.http_port, pids)
    body = '{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}'
    http_control = httpclient.InferenceServerClient(triton.http_url[7:])
    grpc_control = grpcclient.InferenceServerClient(triton.grpc_url[7:])
    try:
        for connection in connections:
            assert raw_http_infer(connection, "ident", 1.0)["outputs"][0]["data"] == [1.0]
        for round_ in range(3):
            # through whichever worker the control client's own connection landed on
            (http_control if round_ % 2 == 0 else grpc_control).unload_model("ident")
            for connection in connections:  # right after the call returned, on every worker
                assert status_of(connection, "GET", "/v2/models/ident/ready") == 404  # as in-process
                assert status_of(connection, "POST", "/v2/models/ident/infer", body) in (404, 503)
            for connection in connections:  # the snapshot resolves READY versions only: 404 at once too
                assert status_of(connection, "GET", "/v2/models/ident") == 404
            (grpc_control if round_ % 2 == 0 else http_control).load_model("ident")
            for connection in connections:
                assert status_of(connection, "GET", "/v2/models/ident/ready") == 200
                assert status_of(connection, "GET", "/v2/models/ident") == 200
                assert raw_http_infer(connection, "ident", float(round_))["outputs"][0]["data"] == [float(round_)]
    finally:
        http_control.close()
        grpc_control.close()
        for connection in connections:
            connection.close()


def test_metadata_of_an_unloaded_model_is_404_on_the_workers_without_waiting_for_the_watcher(tmp_path):
    repository = python_repository(tmp_path)
    config = worker_config(model_control_mode="explicit", load_model=["ident"])
    with running_triton(config, model_repository=repository) as triton:
        hub = triton._workers
        triton._loop.call_soon_threadsafe(hub._watcher.cancel)  # stands for "before the watcher's next tick"
        wait_for(lambda: hub._watcher.done(), 5, "the watcher is stopped")
        client = httpclient.InferenceServerClient(triton.http_url[7:])
        try:
            client.unload_model("ident")
            wait_for(lambda: triton._on_loop(lambda dp: not dp.models()), 5, "the version leaves the registry")
            connections = keep_alive_on_both_workers(triton.http_port, hub.pids())
            try:
                assert [status_of(c, "GET", "/v2/models/ident") for c in connections] == [404] * len(connections)
            finally:
                for connection in connections:
                    connection.close()
        finally:
            client.close()


# --- the serve CLI ----------------------------------------------------------------------------------------------


class Serve:
    """``python -m pytriton_lite serve --frontend-workers 2`` in a session of its own; stderr read on a thread."""

    def __init__(self, repository: pathlib.Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        command = [
            sys.executable, "-m", "pytriton_lite", "serve", f"--model-repository={repository}",
            "--frontend-workers", "2", "--http-port=0", "--grpc-port=0", "--metrics-port=0",
            "--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: List[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def port(self, label: str, timeout: float = 60.0) -> int:
        pattern = re.compile(rf"Started {label} at 127\.0\.0\.1:(\d+)")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = pattern.search(line)
                if match:
                    return int(match.group(1))
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {label} line in:\n" + "\n".join(self.lines))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        self._reader.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def serve(tmp_path) -> Iterator[Serve]:
    server = Serve(python_repository(tmp_path))
    try:
        yield server
    finally:
        server.close()


def _started_workers(server: Serve) -> List[int]:
    http_port, grpc_port = server.port("HTTPService"), server.port("GRPCInferenceService")
    http_identity_ok(http_port)
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    try:
        assert client.is_model_ready("ident")
    finally:
        client.close()
    # two workers (and, where they are forked from one, their zygote)
    found = worker_processes(server.process.pid)
    assert len(found) >= 2, (found, server.lines)
    return found


def http_identity_ok(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = '{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [4, 5]}]}'
        connection.request("POST", "/v2/models/ident/infer", body=body)
        response = connection.getresponse()
        assert response.status == 200 and b"[4.0,5.0]" in response.read().replace(b" ", b"")
    finally:
        connection.close()


def test_the_workers_exit_when_the_serve_process_is_killed(serve):
    workers = _started_workers(serve)
    serve.process.kill()  # SIGKILL: no handler runs, only the channels close
    serve.process.wait(10)
    wait_for(lambda: all(is_gone(pid) for pid in workers), 10, f"the workers {workers} exit after SIGKILL")


def test_sigterm_stops_the_serve_process_and_its_workers_with_status_0(serve):
    workers = _started_workers(serve)
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(30) == 0, "\n".join(serve.lines)
    wait_for(lambda: all(is_gone(pid) for pid in workers), 10, f"the workers {workers} exit after SIGTERM")
