"""The dynamic batcher and data plane, driven directly on a private event loop (no network)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Dict, List

import numpy as np
import pytest

from pytriton_lite.core.dataplane import InProcessDataPlane
from pytriton_lite.core.model import Model
from pytriton_lite.exceptions import (
    InvalidArgumentError,
    ModelExecutionError,
    ModelNotFoundError,
    QueueTimeoutError,
    UnavailableError,
    UnsupportedError,
)
from pytriton_lite.model_config import DynamicBatcher, ModelConfig, QueuePolicy, Tensor, TimeoutAction
from pytriton_lite.types import InferenceRequest

IN = [Tensor(name="x", shape=(-1,), dtype=np.float32)]
OUT = [Tensor(name="y", shape=(-1,), dtype=np.float32)]


class Recorder:
    """An identity callable that records batch sizes and can be held on an event."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: List[List[int]] = []
        self.widths: List[int] = []
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, requests: List[Any]) -> List[Dict[str, np.ndarray]]:
        self.calls.append([int(r["x"].shape[0]) for r in requests])
        self.widths.extend(int(r["x"].shape[-1]) for r in requests)
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        return [{"y": r["x"] * 2} for r in requests]


def make(
    loop: asyncio.AbstractEventLoop, funcs, config: ModelConfig | None = None, name: str = "m"
) -> InProcessDataPlane:
    dataplane = InProcessDataPlane(loop)
    dataplane.add_model(Model(name, 1, funcs if isinstance(funcs, list) else [funcs], IN, OUT, config or ModelConfig()))
    return dataplane


def req(rows: int, width: int = 3, **kwargs: Any) -> InferenceRequest:
    data = np.arange(rows * width, dtype=np.float32).reshape(rows, width)
    return InferenceRequest(model_name=kwargs.pop("model", "m"), inputs={"x": data}, **kwargs)


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def run(loop, coro, timeout: float = 10):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def test_single_request_round_trip(loop):
    rec = Recorder()
    dp = make(loop, rec)
    response = run(loop, dp.infer(req(2, id="7")))
    assert response.id == "7" and response.model_version == "1"
    np.testing.assert_array_equal(response.outputs["y"], np.arange(6, dtype=np.float32).reshape(2, 3) * 2)
    assert rec.calls == [[2]]
    dp.stop_models()


def test_requests_queued_while_busy_are_batched_up_to_max(loop):
    gate = threading.Event()
    rec = Recorder(gate)
    dp = make(loop, rec, ModelConfig(max_batch_size=4))

    async def scenario():
        first = asyncio.ensure_future(dp.infer(req(1)))
        await asyncio.sleep(0)
        while not rec.entered.is_set():
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(dp.infer(req(b))) for b in (2, 1, 2, 1)]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(first, *rest)

    responses = run(loop, scenario())
    assert len(responses) == 5
    # 2+1 fit (3), the next 2 would exceed 4 -> stays at the head, then 2+1
    assert rec.calls == [[1], [2, 1], [2, 1]]
    stats = dp.entry("m").stats
    assert stats.execution_count == 3 and stats.inference_count == 7 and stats.success.count == 5
    dp.stop_models()


def test_incompatible_shapes_are_not_batched_together(loop):
    gate = threading.Event()
    rec = Recorder(gate)
    dp = make(loop, rec, ModelConfig(max_batch_size=8))

    async def scenario():
        first = asyncio.ensure_future(dp.infer(req(1)))
        while not rec.entered.is_set():
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(dp.infer(req(1, width=w))) for w in (3, 3, 5, 3)]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(first, *rest)

    run(loop, scenario())
    assert rec.calls == [[1], [1, 1], [1], [1]]
    dp.stop_models()


def test_queue_delay_waits_for_more_requests(loop):
    rec = Recorder()
    dp = make(loop, rec, ModelConfig(max_batch_size=4, batcher=DynamicBatcher(max_queue_delay_microseconds=200_000)))

    async def scenario():
        tasks = [asyncio.ensure_future(dp.infer(req(1)))]
        await asyncio.sleep(0.02)  # well inside the 200 ms window
        tasks += [asyncio.ensure_future(dp.infer(req(1))) for _ in range(3)]
        return await asyncio.gather(*tasks)

    run(loop, scenario())
    assert rec.calls == [[1, 1, 1, 1]]  # max reached -> dispatched at once, as one batch
    dp.stop_models()


def test_preferred_batch_size_dispatches_before_the_delay(loop):
    rec = Recorder()
    config = ModelConfig(
        max_batch_size=8, batcher=DynamicBatcher(max_queue_delay_microseconds=5_000_000, preferred_batch_size=[2])
    )
    dp = make(loop, rec, config)

    async def scenario():
        tasks = [asyncio.ensure_future(dp.infer(req(1))) for _ in range(2)]
        return await asyncio.gather(*tasks)

    run(loop, scenario(), timeout=3)  # would take 5 s if the preferred size were ignored
    assert rec.calls == [[1, 1]]
    dp.stop_models()


def test_batching_disabled_means_one_request_per_call(loop):
    rec = Recorder()
    dp = make(loop, rec, ModelConfig(batching=False))

    async def scenario():
        one = InferenceRequest("m", inputs={"x": np.zeros(5, np.float32)})
        return await asyncio.gather(*[dp.infer(one) for _ in range(3)])

    run(loop, scenario())
    assert rec.calls == [[5], [5], [5]]  # one request (of 5 elements, no batch dim) per call
    dp.stop_models()


def test_exception_fails_only_its_batch(loop):
    def boom(requests):
        if any(r["x"].shape[1] == 5 for r in requests):
            raise ZeroDivisionError("division by zero")
        return [{"y": r["x"]} for r in requests]

    dp = make(loop, boom)
    with pytest.raises(ModelExecutionError, match="division by zero"):
        run(loop, dp.infer(req(1, width=5)))
    assert run(loop, dp.infer(req(1))).outputs["y"].shape == (1, 3)
    assert dp.entry("m").stats.failures["BACKEND"] == 1
    dp.stop_models()


def test_validation_errors(loop):
    dp = make(loop, Recorder(), ModelConfig(max_batch_size=2))
    with pytest.raises(InvalidArgumentError, match="batch-size must be <= 2 for 'm'"):
        run(loop, dp.infer(req(3)))
    with pytest.raises(InvalidArgumentError, match="data-type is 'INT32', but model 'm' expects 'FP32'"):
        run(loop, dp.infer(InferenceRequest("m", inputs={"x": np.zeros((1, 2), np.int32)})))
    with pytest.raises(InvalidArgumentError, match="missing required input"):
        run(loop, dp.infer(InferenceRequest("m", inputs={})))
    with pytest.raises(InvalidArgumentError, match="unexpected inference input 'z'"):
        run(
            loop,
            dp.infer(
                InferenceRequest("m", inputs={"x": np.zeros((1, 2), np.float32), "z": np.zeros((1, 2), np.float32)})
            ),
        )
    with pytest.raises(InvalidArgumentError, match="unexpected shape for input 'x'"):
        run(loop, dp.infer(InferenceRequest("m", inputs={"x": np.zeros((1, 2, 2), np.float32)})))
    with pytest.raises(InvalidArgumentError, match="unexpected inference output 'nope'"):
        run(loop, dp.infer(req(1, requested_outputs=["nope"])))
    with pytest.raises(ModelNotFoundError, match="Request for unknown model: 'other' is not found"):
        run(loop, dp.infer(req(1, model="other")))
    with pytest.raises(ModelNotFoundError, match="version 9 is not found"):
        run(loop, dp.infer(req(1, model_version="9")))
    dp.stop_models()


def test_max_queue_size_rejects_with_unavailable(loop):
    gate = threading.Event()
    rec = Recorder(gate)
    config = ModelConfig(max_batch_size=1, batcher=DynamicBatcher(default_queue_policy=QueuePolicy(max_queue_size=1)))
    dp = make(loop, rec, config)

    async def scenario():
        running = asyncio.ensure_future(dp.infer(req(1)))
        while not rec.entered.is_set():
            await asyncio.sleep(0.001)
        queued = asyncio.ensure_future(dp.infer(req(1)))
        await asyncio.sleep(0)
        with pytest.raises(UnavailableError, match="Exceeds maximum queue size"):
            await dp.infer(req(1))
        gate.set()
        return await asyncio.gather(running, queued)

    assert len(run(loop, scenario())) == 2
    dp.stop_models()


def test_queue_timeout_rejects_expired_requests(loop):
    gate = threading.Event()
    rec = Recorder(gate)
    policy = QueuePolicy(
        timeout_action=TimeoutAction.REJECT, default_timeout_microseconds=1_000, allow_timeout_override=True
    )
    dp = make(loop, rec, ModelConfig(max_batch_size=1, batcher=DynamicBatcher(default_queue_policy=policy)))

    async def scenario():
        running = asyncio.ensure_future(dp.infer(req(1, timeout_us=10_000_000)))
        while not rec.entered.is_set():
            await asyncio.sleep(0.001)
        expired = asyncio.ensure_future(dp.infer(req(1)))
        await asyncio.sleep(0.05)  # > 1 ms timeout while the instance is held
        gate.set()
        await running
        with pytest.raises(QueueTimeoutError, match="Request timeout expired"):
            await expired

    run(loop, scenario())
    assert dp.entry("m").stats.failures["REJECTED"] == 1
    dp.stop_models()


def test_priority_levels_serve_higher_priority_first(loop):
    gate = threading.Event()
    rec = Recorder(gate)
    config = ModelConfig(max_batch_size=1, batcher=DynamicBatcher(priority_levels=2, default_priority_level=2))
    dp = make(loop, rec, config)

    async def scenario():
        running = asyncio.ensure_future(dp.infer(req(1)))
        while not rec.entered.is_set():
            await asyncio.sleep(0.001)
        low = asyncio.ensure_future(dp.infer(req(1, width=2)))
        high = asyncio.ensure_future(dp.infer(req(1, width=4, priority=1)))
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(running, low, high)

    run(loop, scenario())
    assert rec.widths == [3, 4, 2]  # the priority-1 request (width 4) overtook the default-level one
    dp.stop_models()


def test_cancelled_request_is_dropped_before_it_runs(loop):
    gate = threading.Event()
    rec = Recorder(gate)
    dp = make(loop, rec, ModelConfig(max_batch_size=1))

    async def scenario():
        running = asyncio.ensure_future(dp.infer(req(1)))
        while not rec.entered.is_set():
            await asyncio.sleep(0.001)
        doomed = asyncio.ensure_future(dp.infer(req(1, width=7)))
        await asyncio.sleep(0)
        doomed.cancel()
        gate.set()
        await running
        await asyncio.gather(doomed, return_exceptions=True)
        await dp.infer(req(1))

    run(loop, scenario())
    assert rec.calls == [[1], [1]]  # the cancelled (width 7) request never reached the callable
    dp.stop_models()


def test_multiple_instances_run_concurrently(loop):
    barrier = threading.Barrier(2, timeout=5)

    def make_instance():
        def infer(requests):
            barrier.wait()  # both instances must be inside at the same time
            return [{"y": r["x"]} for r in requests]

        return infer

    dp = make(loop, [make_instance(), make_instance()], ModelConfig(max_batch_size=1))

    async def scenario():
        return await asyncio.gather(dp.infer(req(1)), dp.infer(req(1)))

    assert len(run(loop, scenario())) == 2
    dp.stop_models()


def test_decoupled_stream_and_refusal_on_infer(loop):
    def gen(requests):
        for i in range(3):
            yield [{"y": r["x"] + i} for r in requests]

    dp = make(loop, gen, ModelConfig(decoupled=True))
    with pytest.raises(UnsupportedError):
        run(loop, dp.infer(req(1)))

    async def collect():
        return [r async for r in dp.infer_stream(req(1))]

    responses = run(loop, collect())
    assert [float(r.outputs["y"][0, 0]) for r in responses] == [0.0, 1.0, 2.0]
    dp.stop_models()


def test_closing_a_stream_stops_the_generator(loop):
    stopped = threading.Event()
    consumer_closed = threading.Event()
    produced = []

    def gen(requests):
        try:
            for i in range(1000):
                produced.append(i)
                yield [{"y": r["x"]} for r in requests]
                if i == 2:
                    assert consumer_closed.wait(5)
        finally:
            stopped.set()

    dp = make(loop, gen, ModelConfig(decoupled=True))

    async def take_two():
        stream = dp.infer_stream(req(1))
        got = [await stream.__anext__(), await stream.__anext__()]
        await stream.aclose()
        consumer_closed.set()
        return got

    assert len(run(loop, take_two())) == 2
    assert stopped.wait(5)
    assert len(produced) <= 4  # at most one more yield after the close is noticed (item 3)
    dp.stop_models()


def test_async_callable(loop):
    async def infer(requests):
        await asyncio.sleep(0)
        return [{"y": r["x"] + 1} for r in requests]

    dp = make(loop, infer)
    assert float(run(loop, dp.infer(req(1))).outputs["y"][0, 0]) == 1.0
    dp.stop_models()


def test_outputs_are_filtered_and_cast(loop):
    def infer(requests):
        return [{"y": r["x"].astype(np.float64), "undeclared": r["x"]} for r in requests]

    dp = make(loop, infer)
    response = run(loop, dp.infer(req(1)))
    assert list(response.outputs) == ["y"] and response.outputs["y"].dtype == np.float32
    dp.stop_models()


def test_preserve_ordering_holds_later_responses_until_earlier_ones_finish(loop):
    release_first = threading.Event()
    first_entered = threading.Event()

    def make_instance():
        def infer(requests):
            if requests[0]["x"][0, 0] == 0.0 and not first_entered.is_set():
                first_entered.set()
                assert release_first.wait(10)
            return [{"y": r["x"]} for r in requests]

        return infer

    config = ModelConfig(max_batch_size=1, batcher=DynamicBatcher(preserve_ordering=True))
    dp = make(loop, [make_instance(), make_instance()], config)
    stats = dp.entry("m").stats

    async def scenario():
        slow = asyncio.ensure_future(dp.infer(InferenceRequest("m", inputs={"x": np.zeros((1, 2), np.float32)})))
        while not first_entered.is_set():
            await asyncio.sleep(0.001)
        fast = asyncio.ensure_future(dp.infer(InferenceRequest("m", inputs={"x": np.ones((1, 2), np.float32)})))
        while stats.execution_count < 1:  # the second request ran on the other instance and came back
            await asyncio.sleep(0.001)
        assert not fast.done()  # held back: the first request has not finished yet
        release_first.set()
        await slow
        return await fast

    assert float(run(loop, scenario()).outputs["y"][0, 0]) == 1.0
    dp.stop_models()


def test_async_generator_streams_run_concurrently_on_one_instance(loop):
    """Like Triton's decoupled execute: stream A can only finish once stream B has started on the same instance."""
    state = {}

    async def gen(requests):
        events = state.setdefault("b_started", asyncio.Event())  # created on the instance's stream loop
        if float(requests[0]["x"][0, 0]) == 0.0:  # stream A
            yield [{"y": r["x"]} for r in requests]
            await asyncio.wait_for(events.wait(), 5)  # deadlocks if streams were served one at a time
            yield [{"y": r["x"] + 10} for r in requests]
        else:  # stream B
            events.set()
            yield [{"y": r["x"]} for r in requests]

    dp = make(loop, gen, ModelConfig(decoupled=True, max_batch_size=1))

    async def scenario():
        async def collect(value):
            request = InferenceRequest("m", inputs={"x": np.full((1, 2), value, np.float32)})
            return [float(r.outputs["y"][0, 0]) async for r in dp.infer_stream(request)]

        return await asyncio.gather(collect(0.0), collect(1.0))

    assert run(loop, scenario()) == [[0.0, 10.0], [1.0]]
    stats = dp.entry("m").stats
    assert stats.success.count == 2 and dp.entry("m").batcher.idle()
    dp.stop_models()


def test_async_generator_stream_error_fails_only_its_request(loop):
    async def gen(requests):
        if float(requests[0]["x"][0, 0]) == 0.0:
            yield [{"y": r["x"]} for r in requests]
            raise ZeroDivisionError("division by zero")
        yield [{"y": r["x"]} for r in requests]

    dp = make(loop, gen, ModelConfig(decoupled=True, max_batch_size=1))

    async def collect(value):
        got = []
        request = InferenceRequest("m", inputs={"x": np.full((1, 2), value, np.float32)})
        try:
            async for response in dp.infer_stream(request):
                got.append(float(response.outputs["y"][0, 0]))
        except ModelExecutionError as exc:
            got.append(str(exc))
        return got

    async def scenario():
        return await asyncio.gather(collect(0.0), collect(1.0))

    first, second = run(loop, scenario())
    assert first[0] == 0.0 and "division by zero" in first[1] and second == [1.0]
    dp.stop_models()


def test_a_per_request_error_fails_only_that_request_of_the_batch(loop):
    gate = threading.Event()

    def some_fail(requests):
        assert gate.wait(10)
        return [InvalidArgumentError("negative") if float(r["x"].ravel()[0]) < 0 else {"y": r["x"]} for r in requests]

    dp = make(
        loop, some_fail, ModelConfig(max_batch_size=8, batcher=DynamicBatcher(max_queue_delay_microseconds=50_000))
    )

    async def scenario():
        good = InferenceRequest("m", inputs={"x": np.ones((1, 2), np.float32)})
        bad = InferenceRequest("m", inputs={"x": -np.ones((1, 2), np.float32)})
        tasks = [asyncio.ensure_future(dp.infer(r)) for r in (good, bad, good)]
        await asyncio.sleep(0.1)
        gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, second, third = loop.run_until_complete(scenario())
    assert isinstance(second, InvalidArgumentError)
    assert first.outputs["y"].tolist() == [[1.0, 1.0]] and third.outputs["y"].tolist() == [[1.0, 1.0]]
    stats = dp.entry("m").stats
    assert stats.execution_count == 1 and stats.success.count == 2 and stats.failures["OTHER"] == 1
    dp.stop_models()
