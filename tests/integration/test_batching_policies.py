"""Batcher policies over the wire: queue size, queue timeouts (REJECT/DELAY), priorities, dropped disconnects."""

from __future__ import annotations

import threading
import time
from typing import List

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.model_config import DynamicBatcher, ModelConfig, QueuePolicy, Tensor, TimeoutAction
from pytriton_lite.testing import model_statistics, queue_state

IN = [Tensor(name="x", shape=(-1,), dtype=np.float32)]
OUT = [Tensor(name="y", shape=(-1,), dtype=np.float32)]


class Gate:
    """A model whose first call blocks until released; records the first value of every request it runs."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen: List[float] = []
        self._first = True

    def __call__(self, requests):
        if self._first:
            self._first = False
            self.entered.set()
            assert self.release.wait(20)
        self.seen.extend(float(r["x"].reshape(-1)[0]) for r in requests)
        return [{"y": r["x"]} for r in requests]


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def pending(triton, model: str = "m") -> int:
    return model_statistics(triton, model).pending


def http_infer(triton, value: float, **kwargs):
    client = httpclient.InferenceServerClient(triton.http_url[7:], network_timeout=30)
    try:
        data = np.full((1, 2), value, np.float32)
        inp = httpclient.InferInput("x", data.shape, "FP32")
        inp.set_data_from_numpy(data)
        return client.infer("m", [inp], **kwargs)
    finally:
        client.close()


def grpc_infer(triton, value: float, **kwargs):
    client = grpcclient.InferenceServerClient(triton.grpc_url[7:])
    try:
        data = np.full((1, 2), value, np.float32)
        inp = grpcclient.InferInput("x", data.shape, "FP32")
        inp.set_data_from_numpy(data)
        return client.infer("m", [inp], **kwargs)
    finally:
        client.close()


def start_in_thread(fn, *args, **kwargs):
    box = {}

    def run():
        try:
            box["result"] = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def test_queue_full_is_503_over_http_and_unavailable_over_grpc(triton_server):
    gate = Gate()
    triton = triton_server()
    config = ModelConfig(max_batch_size=1, batcher=DynamicBatcher(default_queue_policy=QueuePolicy(max_queue_size=1)))
    triton.bind("m", gate, IN, OUT, config=config)
    running, _ = start_in_thread(http_infer, triton, 1.0)
    assert gate.entered.wait(10)
    queued, queued_box = start_in_thread(http_infer, triton, 2.0)
    wait_for(lambda: pending(triton) == 1)
    with pytest.raises(InferenceServerException, match="Exceeds maximum queue size") as info:
        http_infer(triton, 3.0)
    assert info.value.status() == "503"
    with pytest.raises(InferenceServerException, match="Exceeds maximum queue size") as ginfo:
        grpc_infer(triton, 3.0)
    assert ginfo.value.status() == "StatusCode.UNAVAILABLE"
    gate.release.set()
    running.join(15)
    queued.join(15)
    assert "result" in queued_box and gate.seen == [1.0, 2.0]
    assert dict(model_statistics(triton, "m").failures)["REJECTED"] == 2


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_queue_timeout_reject_with_request_override(triton_server, transport):
    gate = Gate()
    triton = triton_server()
    policy = QueuePolicy(
        timeout_action=TimeoutAction.REJECT, default_timeout_microseconds=60_000_000, allow_timeout_override=True
    )
    triton.bind(
        "m", gate, IN, OUT, config=ModelConfig(max_batch_size=1, batcher=DynamicBatcher(default_queue_policy=policy))
    )
    infer = http_infer if transport == "http" else grpc_infer
    running, _ = start_in_thread(infer, triton, 1.0)
    assert gate.entered.wait(10)
    expiring, box = start_in_thread(infer, triton, 2.0, timeout=1000)  # 1 ms queue timeout, overriding 60 s
    # it times out on time although the only instance stays held and nothing else arrives
    expiring.join(15)
    assert not gate.release.is_set() and pending(triton) == 0
    gate.release.set()
    running.join(15)
    error = box.get("error")
    assert isinstance(error, InferenceServerException) and "Request timeout expired" in str(error)
    assert error.status() in ("503", "StatusCode.UNAVAILABLE")
    assert gate.seen == [1.0]  # the expired request never ran


def test_queue_timeout_delay_keeps_the_request_but_behind_others(triton_server):
    gate = Gate()
    triton = triton_server()
    policy = QueuePolicy(
        timeout_action=TimeoutAction.DELAY, default_timeout_microseconds=60_000_000, allow_timeout_override=True
    )
    triton.bind(
        "m", gate, IN, OUT, config=ModelConfig(max_batch_size=1, batcher=DynamicBatcher(default_queue_policy=policy))
    )
    running, _ = start_in_thread(http_infer, triton, 1.0)
    assert gate.entered.wait(10)
    delayed, delayed_box = start_in_thread(http_infer, triton, 2.0, timeout=1000)
    wait_for(lambda: pending(triton) == 1)
    time.sleep(0.01)  # its 1 ms timeout expires: DELAY keeps it, behind requests still within their timeout
    normal, normal_box = start_in_thread(http_infer, triton, 3.0)
    wait_for(lambda: pending(triton) == 2)
    gate.release.set()
    for thread in (running, delayed, normal):
        thread.join(15)
    assert "result" in delayed_box and "result" in normal_box
    assert gate.seen == [1.0, 3.0, 2.0]


def test_priority_parameter_reorders_the_queue(triton_server):
    gate = Gate()
    triton = triton_server()
    config = ModelConfig(max_batch_size=1, batcher=DynamicBatcher(priority_levels=3, default_priority_level=3))
    triton.bind("m", gate, IN, OUT, config=config)
    running, _ = start_in_thread(http_infer, triton, 1.0)
    assert gate.entered.wait(10)
    threads = []
    for value, priority in ((2.0, 0), (3.0, 2), (4.0, 1)):  # 0 = default level (3, the lowest)
        thread, _ = start_in_thread(grpc_infer, triton, value, priority=priority)
        threads.append(thread)
        wait_for(lambda n=len(threads): pending(triton) == n)
    gate.release.set()
    for thread in [running, *threads]:
        thread.join(15)
    assert gate.seen == [1.0, 4.0, 3.0, 2.0]


def test_request_whose_http_client_disconnected_is_dropped_before_it_runs(triton_server):
    gate = Gate()
    triton = triton_server()
    triton.bind("m", gate, IN, OUT, config=ModelConfig(max_batch_size=1))
    running, _ = start_in_thread(http_infer, triton, 1.0)
    assert gate.entered.wait(10)

    def impatient():
        client = httpclient.InferenceServerClient(triton.http_url[7:], network_timeout=0.5, connection_timeout=5)
        data = np.full((1, 2), 2.0, np.float32)
        inp = httpclient.InferInput("x", data.shape, "FP32")
        inp.set_data_from_numpy(data)
        try:
            client.infer("m", [inp])
        except Exception:  # noqa: BLE001 - the client gives up: that is the point
            pass
        finally:
            client.close()

    impatient()  # returns after its 0.5 s network timeout, closing the connection
    # the server sees the disconnect and cancels the waiting call; the queued request is then dropped
    wait_for(lambda: queue_state(triton, "m").abandoned == queue_state(triton, "m").queued)
    gate.release.set()
    running.join(15)
    http_infer(triton, 3.0)
    assert gate.seen == [1.0, 3.0]  # 2.0 never reached the callable
    assert dict(model_statistics(triton, "m").failures)["CANCELED"] == 1
