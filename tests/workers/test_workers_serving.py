"""Front-end workers serving (``TritonConfig(frontend_workers=2)``): both protocols through worker processes,
connections spread over the workers by the kernel, dynamic batches across workers, models bound while running,
the config checks and the start-to-ready figure. One server for the module: nothing here kills a worker."""

from __future__ import annotations

import http.client
import os
import queue
import threading
import time
from typing import Any, Iterator, List, Tuple

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException
from workers_support import (
    accepted_by,
    bind_identity,
    bind_sleeper,
    descends_from,
    grpc_identity,
    http_identity,
    is_gone,
    raw_http_infer,
    wait_for,
    worker_config,
    worker_processes,
)

from pytriton_lite.config import TritonConfig, frontend_worker_count
from pytriton_lite.exceptions import InferenceError, PyTritonValidationError
from pytriton_lite.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton_lite.testing import model_statistics, running_triton
from pytriton_lite.triton import Triton
from pytriton_lite.workers.remote import STREAM_WINDOW


@pytest.fixture(scope="module")
def triton() -> Iterator[Triton]:
    with running_triton(worker_config()) as server:
        bind_identity(server)
        bind_sleeper(server, 0.0, name="echo")
        bind_sleeper(
            server, 0.05, name="batched", batcher=DynamicBatcher(max_queue_delay_microseconds=200_000)
        )  # waits up to 0.2 s for a batch of 16
        yield server


def test_both_protocols_answer_through_the_workers(triton):
    assert triton._workers is not None and triton._frontends != []
    for i in range(3):
        http_identity(triton.http_port, float(i))
        grpc_identity(triton.grpc_port, float(i))
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("identity")
        assert client.get_model_metadata("identity")["inputs"][0]["name"] == "x"
        stats = client.get_inference_statistics("identity")["model_stats"][0]
        assert stats["inference_count"] >= 6  # the serving process counts what every worker sent
    finally:
        client.close()
    grpc_client = grpcclient.InferenceServerClient(triton.grpc_url[7:])
    try:
        assert grpc_client.is_server_ready() and grpc_client.get_model_config("identity").config.max_batch_size == 8
    finally:
        grpc_client.close()


def test_there_are_two_worker_processes_children_of_this_one(triton):
    pids = triton._workers.pids()
    assert len(pids) == 2 and len(set(pids)) == 2 and os.getpid() not in pids
    assert all(descends_from(pid, os.getpid()) and not is_gone(pid) for pid in pids)
    assert set(pids) <= set(worker_processes(os.getpid()))


def test_connections_are_spread_over_both_workers_and_none_is_accepted_here(triton):
    pids = triton._workers.pids()
    connections: List[http.client.HTTPConnection] = []
    try:
        for i in range(16):  # 2 workers: all 16 on one worker has odds of 2 in 65536
            connection = http.client.HTTPConnection("127.0.0.1", triton.http_port, timeout=30)
            assert raw_http_infer(connection, "echo", float(i))["outputs"][0]["data"] == [float(i)]
            connections.append(connection)
        owners = accepted_by(triton.http_port, [*pids, os.getpid()])
        mine = {c.sock.getsockname()[1] for c in connections}
        seen = {port: owner for port, owner in owners.items() if port in mine}
        assert set(seen) == mine  # every connection of ours is found, established
        assert set(seen.values()) == set(pids), seen  # on both workers, none in the serving process
        for connection in connections:  # keep-alive connections stay with their worker and keep working
            assert raw_http_infer(connection, "echo", 2.0)["outputs"][0]["data"] == [2.0]
    finally:
        for connection in connections:
            connection.close()


def test_dynamic_batches_hold_requests_that_came_through_different_workers(triton):
    pids = triton._workers.pids()
    before = model_statistics(triton, "batched")
    # channels to one target share one connection unless each has its own subchannel pool
    own = [("grpc.use_local_subchannel_pool", 1)]
    clients = [grpcclient.InferenceServerClient(triton.grpc_url[7:], channel_args=own) for _ in range(16)]
    errors: List[BaseException] = []
    try:
        for client in clients:  # each opens its own connection now
            assert client.is_server_live()
        owners = set(accepted_by(triton.grpc_port, pids).values())
        assert owners == set(pids), owners  # the 16 connections landed on both workers
        start = threading.Barrier(len(clients))

        def one(index: int, client: Any) -> None:
            try:
                data = np.full((1, 4), index, np.float32)
                tensor = grpcclient.InferInput("x", data.shape, "FP32")
                tensor.set_data_from_numpy(data)
                start.wait(10)
                result = client.infer("batched", [tensor], client_timeout=30)
                assert result.as_numpy("y").tolist() == data.tolist()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for client in clients:
            client.close()
    assert not errors, errors
    after = model_statistics(triton, "batched")
    requests = after.inference_count - before.inference_count
    executions = after.execution_count - before.execution_count
    print(f"\n16 gRPC clients on both workers: {requests} requests in {executions} executions")
    assert requests == 16 and executions < requests


def test_a_model_bound_while_running_is_served_by_every_worker_at_once(triton):
    for k in range(3):
        name = f"late_{k}"
        bind_identity(triton, name)
        # right after bind returns: new connections, whichever worker they land on, find it
        for i in range(4):
            http_identity(triton.http_port, float(i), model=name)
            grpc_identity(triton.grpc_port, float(i), model=name)
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    try:
        names = {row["name"] for row in client.get_model_repository_index()}
        assert {"late_0", "late_1", "late_2"} <= names
    finally:
        client.close()


def counter(requests: List[Any]) -> Iterator[List[Any]]:
    """Decoupled: ``n`` responses ``y = x + i`` (more than the workers' stream credit window)."""
    for i in range(int(requests[0]["n"].reshape(-1)[0])):
        yield [{"y": r["x"] + i} for r in requests]


def test_streams_longer_than_the_credit_window_arrive_whole_and_in_order(triton):
    triton.bind(
        "counter",
        counter,
        [Tensor(name="x", shape=(-1,), dtype=np.float32), Tensor(name="n", shape=(1,), dtype=np.int32)],
        [Tensor(name="y", shape=(-1,), dtype=np.float32)],
        config=ModelConfig(decoupled=True, batching=False),
    )
    items = 3 * STREAM_WINDOW + 5
    own = [("grpc.use_local_subchannel_pool", 1)]
    clients = [grpcclient.InferenceServerClient(triton.grpc_url[7:], channel_args=own) for _ in range(4)]
    got: List[queue.Queue[Any]] = [queue.Queue() for _ in clients]
    try:
        for index, client in enumerate(clients):
            client.start_stream(callback=lambda result, error, q=got[index]: q.put((result, error)))
            x = np.full((2,), float(index * 1000), np.float32)
            inputs = [grpcclient.InferInput("x", [2], "FP32"), grpcclient.InferInput("n", [1], "INT32")]
            inputs[0].set_data_from_numpy(x)
            inputs[1].set_data_from_numpy(np.array([items], np.int32))
            client.async_stream_infer("counter", inputs, enable_empty_final_response=True)
        for index, answers in enumerate(got):
            values = []
            for _ in range(items + 1):  # and the empty final response
                result, error = answers.get(timeout=30)
                assert error is None, error
                final = result.get_response().parameters["triton_final_response"].bool_param
                if not final:
                    values.append(float(result.as_numpy("y")[0]))
            assert final and values == [index * 1000.0 + i for i in range(items)]
    finally:
        for client in clients:
            client.stop_stream()
            client.close()
    http_identity(triton.http_port, 1.0)  # and the server serves on


def test_a_stream_the_client_cancels_stops_the_model_in_the_serving_process(triton):
    closed = threading.Event()
    produced: List[int] = []

    def endless(requests: List[Any]) -> Iterator[List[Any]]:
        try:
            while len(produced) < 2000:  # bounded: ~10 s if the cancel never arrives
                time.sleep(0.005)
                produced.append(1)
                yield [{"y": r["x"]} for r in requests]
        finally:
            closed.set()

    triton.bind(
        "endless",
        endless,
        [Tensor(name="x", shape=(-1,), dtype=np.float32)],
        [Tensor(name="y", shape=(-1,), dtype=np.float32)],
        config=ModelConfig(decoupled=True, batching=False),
    )
    client = grpcclient.InferenceServerClient(triton.grpc_url[7:])
    answers: queue.Queue[Any] = queue.Queue()
    try:
        client.start_stream(callback=lambda result, error: answers.put((result, error)))
        tensor = grpcclient.InferInput("x", [1], "FP32")
        tensor.set_data_from_numpy(np.ones(1, np.float32))
        client.async_stream_infer("endless", [tensor])
        for _ in range(5):
            assert answers.get(timeout=30)[1] is None
        client.stop_stream(cancel_requests=True)
        assert closed.wait(10)  # the worker told the serving process; its generator was closed
        assert len(produced) < 2000
    finally:
        client.close()


def test_an_unknown_model_is_the_serving_process_404(triton):
    connection = http.client.HTTPConnection("127.0.0.1", triton.http_port, timeout=30)
    try:
        connection.request("POST", "/v2/models/nope/infer", body=b'{"inputs": []}')
        response = connection.getresponse()
        body = response.read()
        assert response.status == 404 and b"error" in body
    finally:
        connection.close()
    with pytest.raises(Exception, match="nope") as caught:
        grpc_identity(triton.grpc_port, 1.0, model="nope")
    assert "NOT_FOUND" in str(caught.value.status())


@pytest.mark.parametrize("value", [-1, "2", 1.5, True])
def test_frontend_workers_must_be_a_whole_number_at_least_0(value):
    with pytest.raises(PyTritonValidationError, match="frontend_workers"):
        frontend_worker_count(TritonConfig(frontend_workers=value))
    before = worker_processes(os.getpid())
    server = Triton(config=worker_config(frontend_workers=value, http_address="127.0.0.1", grpc_address="127.0.0.1"))
    try:
        with pytest.raises(PyTritonValidationError, match="frontend_workers"):
            server.run()
    finally:
        server.stop()
    assert worker_processes(os.getpid()) == before  # no worker was started


def test_frontend_workers_0_or_none_is_in_process():
    assert frontend_worker_count(TritonConfig()) == 0
    assert frontend_worker_count(TritonConfig(frontend_workers=0)) == 0
    assert frontend_worker_count(TritonConfig(frontend_workers=3)) == 3


def test_the_serve_cli_takes_frontend_workers():
    from pytriton_lite.__main__ import parser

    args = parser().parse_args(["serve", "--model-repository=/m", "--frontend-workers", "2"])
    assert args.frontend_workers == 2
    assert parser().parse_args(["serve", "--model-repository=/m"]).frontend_workers is None
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--model-repository=/m", "--frontend-workers=two"])


def test_start_to_ready_with_four_workers_is_printed():
    started = time.perf_counter()
    with running_triton(worker_config(frontend_workers=4)) as server:
        bind_identity(server)
        ready = time.perf_counter() - started
        assert len(server._workers.pids()) == 4
        http_identity(server.http_port, 1.0)
        grpc_identity(server.grpc_port, 1.0)
        pids = server._workers.pids()
    print(f"\nfrontend_workers=4: start to ready (run + bind) {ready:.2f} s")
    wait_for(lambda: all(is_gone(pid) for pid in pids), 10, "the 4 workers exit at stop")


class TeapotError(InferenceError):
    """A model's own error class, defined where a worker process cannot import it (this test module)."""

    http_status = 418
    grpc_code = "RESOURCE_EXHAUSTED"


def teapot(requests: List[Any]) -> List[Any]:
    raise TeapotError("short and stout", headers=[("Retry-After", "7")])


def answers_of_teapot(server: Triton) -> Tuple[int, Any, bytes, str]:
    """(HTTP status, Retry-After, body, gRPC status) of the model raising TeapotError."""
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        body = '{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}'
        connection.request("POST", "/v2/models/teapot/infer", body=body)
        response = connection.getresponse()
        answer = (response.status, response.getheader("Retry-After"), response.read())
    finally:
        connection.close()
    client = grpcclient.InferenceServerClient(server.grpc_url[7:])
    try:
        tensor = grpcclient.InferInput("x", [1, 1], "FP32")
        tensor.set_data_from_numpy(np.ones((1, 1), np.float32))
        with pytest.raises(InferenceServerException) as caught:
            client.infer("teapot", [tensor], client_timeout=30)
    finally:
        client.close()
    return (*answer, str(caught.value.status()))


def bind_teapot(server: Triton) -> None:
    server.bind(
        "teapot",
        teapot,
        [Tensor(name="x", shape=(-1,), dtype=np.float32)],
        [Tensor(name="y", shape=(-1,), dtype=np.float32)],
        config=ModelConfig(max_batch_size=4),
    )


TEAPOT = (418, "7", b'{"error":"short and stout"}', "StatusCode.RESOURCE_EXHAUSTED")


def test_a_model_error_class_of_its_own_keeps_its_status_in_process():
    with running_triton(worker_config(frontend_workers=0)) as server:  # the reference the workers must match
        bind_teapot(server)
        assert answers_of_teapot(server) == TEAPOT


def test_a_model_error_class_of_its_own_keeps_its_status_through_the_workers(triton):
    bind_teapot(triton)
    assert answers_of_teapot(triton) == TEAPOT
