"""core.instances / core.callables: one private loop per instance, stream backpressure, explicit hand-offs."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Dict, List

import numpy as np
import pytest

from pytriton_lite.core import callables
from pytriton_lite.core.dataplane import InProcessDataPlane
from pytriton_lite.core.instances import STREAM_WINDOW
from pytriton_lite.core.model import Model
from pytriton_lite.core.warmup import run_warmup
from pytriton_lite.exceptions import ModelExecutionError
from pytriton_lite.model_config import DynamicBatcher, ModelConfig, ModelWarmup, Tensor, WarmupInput
from pytriton_lite.types import InferenceRequest

IN = [Tensor(name="x", shape=(-1,), dtype=np.float32)]
OUT = [Tensor(name="y", shape=(-1,), dtype=np.float32)]


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _plane(loop, func, config: ModelConfig) -> InProcessDataPlane:
    plane = InProcessDataPlane(loop)
    plane.add_model(Model("m", 1, [func], IN, OUT, config))
    return plane


def _stop(plane: InProcessDataPlane) -> None:
    plane.stop_models()
    plane.join_instances(5.0)


def _request() -> InferenceRequest:
    return InferenceRequest("m", inputs={"x": np.ones((1, 2), np.float32)})


def test_async_callables_share_one_private_loop_closed_on_stop(loop):
    seen: List[Any] = []

    async def infer(requests):
        seen.append((asyncio.get_running_loop(), threading.get_ident()))
        await asyncio.sleep(0)
        return [{"y": r["x"]} for r in requests]

    plane = _plane(loop, infer, ModelConfig(max_batch_size=4))
    for _ in range(3):
        loop.run_until_complete(plane.infer(_request()))
    assert len({id(lp) for lp, _ in seen}) == 1 and len({ident for _, ident in seen}) == 1
    assert seen[0][1] != threading.get_ident()  # never the serving loop's thread
    private = seen[0][0]
    assert private is not loop and not private.is_closed()
    _stop(plane)
    assert private.is_closed()


def test_every_callable_kind_gives_one_result(loop):
    def sync(requests):
        return [{"y": r["x"] + 1} for r in requests]

    async def coroutine(requests):
        return sync(requests)

    def generator(requests):
        yield sync(requests)

    async def async_generator(requests):
        yield sync(requests)

    for func in (sync, coroutine, generator, async_generator):
        plane = _plane(loop, func, ModelConfig(max_batch_size=4))
        try:
            response = loop.run_until_complete(plane.infer(_request()))
            assert response.outputs["y"].tolist() == [[2.0, 2.0]], func.__name__
        finally:
            _stop(plane)


def test_a_non_decoupled_generator_must_yield_exactly_once(loop):
    def twice(requests):
        yield [{"y": r["x"]} for r in requests]
        yield [{"y": r["x"]} for r in requests]

    plane = _plane(loop, twice, ModelConfig(max_batch_size=4))
    try:
        with pytest.raises(ModelExecutionError, match="exactly one result, got 2"):
            loop.run_until_complete(plane.infer(_request()))
    finally:
        _stop(plane)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_stream_nobody_reads_stops_the_generator_at_the_window(loop, kind):
    produced: List[int] = []

    def sync_gen(requests):
        for index in range(10 * STREAM_WINDOW):
            produced.append(index)
            yield [{"y": r["x"]} for r in requests]

    async def async_gen(requests):
        for index in range(10 * STREAM_WINDOW):
            produced.append(index)
            yield [{"y": r["x"]} for r in requests]

    plane = _plane(loop, sync_gen if kind == "sync" else async_gen, ModelConfig(batching=False, decoupled=True))
    try:

        async def read_one_then_stall():
            stream = plane.infer_stream(InferenceRequest("m", inputs={"x": np.ones(2, np.float32)}))
            first = await stream.__anext__()
            await asyncio.sleep(0.3)  # the client stops reading: the model must wait, not fill memory
            stalled_at = len(produced)
            taken = 1
            async for _ in stream:  # then it reads everything: the generator resumes and finishes
                taken += 1
            return first, stalled_at, taken

        first, stalled_at, taken = loop.run_until_complete(asyncio.wait_for(read_one_then_stall(), 30))
        assert first.outputs["y"].tolist() == [1.0, 1.0]
        assert stalled_at <= STREAM_WINDOW + 2, stalled_at
        assert taken == 10 * STREAM_WINDOW and len(produced) == 10 * STREAM_WINDOW
    finally:
        _stop(plane)


def test_closing_a_stream_stops_a_generator_waiting_for_credits(loop):
    closed = threading.Event()

    def endless(requests):
        try:
            while True:
                yield [{"y": r["x"]} for r in requests]
        finally:
            closed.set()

    plane = _plane(loop, endless, ModelConfig(batching=False, decoupled=True))
    try:

        async def read_and_close():
            stream = plane.infer_stream(InferenceRequest("m", inputs={"x": np.ones(2, np.float32)}))
            await stream.__anext__()
            await asyncio.sleep(0.2)  # the generator now waits for credits
            await stream.aclose()
            for _ in range(200):
                if closed.is_set():
                    return True
                await asyncio.sleep(0.01)
            return False

        assert loop.run_until_complete(read_and_close())
    finally:
        _stop(plane)


def test_warm_up_runs_on_the_thread_that_serves(loop):
    threads: List[int] = []

    def infer(requests):
        threads.append(threading.get_ident())
        return [{"y": r["x"]} for r in requests]

    warmup = [ModelWarmup(name="w", batch_size=1, inputs={"x": WarmupInput(np.float32, (2,), zero_data=True)}, count=2)]
    plane = InProcessDataPlane(loop)
    model = Model("m", 1, [infer], IN, OUT, ModelConfig(max_batch_size=4, model_warmup=warmup))
    entry = plane.add_model(model, ready=False)
    try:
        assert run_warmup(model, entry.batcher.instances) == 2
        entry.state = type(entry.state).READY
        loop.run_until_complete(plane.infer(_request()))
        assert len(threads) == 3 and len(set(threads)) == 1 and threads[0] != threading.get_ident()
    finally:
        _stop(plane)


def test_batcher_stop_cancels_its_timer_and_resets_counts(loop):
    gate = threading.Event()

    def held(requests):
        assert gate.wait(10)
        return [{"y": r["x"]} for r in requests]

    config = ModelConfig(max_batch_size=8, batcher=DynamicBatcher(max_queue_delay_microseconds=60_000_000))
    plane = _plane(loop, held, config)
    entry = plane.entry("m")

    async def queue_some() -> List[asyncio.Future]:
        futures = [asyncio.ensure_future(plane.infer(_request())) for _ in range(3)]
        await asyncio.sleep(0.05)
        return futures

    futures = loop.run_until_complete(queue_some())
    batcher = entry.batcher
    assert batcher._timer is not None and entry.stats.pending == 3  # waiting 60 s for a fuller batch
    batcher.stop()
    gate.set()
    assert batcher._timer is None and batcher.queued == 0 and entry.stats.pending == 0
    results = loop.run_until_complete(asyncio.gather(*futures, return_exceptions=True))
    assert all("unloading" in str(r) for r in results)
    plane.join_instances(5.0)


def test_callables_adapters_are_pure():
    async def scenario() -> Dict[str, Any]:
        items: List[Any] = []

        async def emit(item: Any) -> bool:
            items.append(item)
            return len(items) < 2

        await callables.for_each(iter([1, 2, 3]), emit)  # stops after the second (emit returned False)
        await callables.for_each(None, emit)
        single = await callables.one_result(asyncio.sleep(0, result=[{"a": 1}]), "m")
        return {"items": items, "single": single}

    out = asyncio.run(scenario())
    assert out == {"items": [1, 2], "single": [{"a": 1}]}
    assert not callables.is_iterator([1]) and callables.is_iterator(iter([1]))


def test_reject_deadline_fires_while_the_instance_is_busy(loop):
    from pytriton_lite.exceptions import QueueTimeoutError
    from pytriton_lite.model_config import QueuePolicy

    gate = threading.Event()

    def held(requests):
        assert gate.wait(10)
        return [{"y": r["x"]} for r in requests]

    policy = QueuePolicy(default_timeout_microseconds=20_000)  # 20 ms, REJECT
    plane = _plane(loop, held, ModelConfig(max_batch_size=1, batcher=DynamicBatcher(default_queue_policy=policy)))
    try:

        async def scenario():
            first = asyncio.ensure_future(plane.infer(_request()))
            await asyncio.sleep(0.01)  # the only instance now runs it (until the gate opens)
            started = time.monotonic()
            with pytest.raises(QueueTimeoutError):
                await asyncio.wait_for(plane.infer(_request()), 5)
            waited = time.monotonic() - started
            gate.set()
            await first
            return waited

        assert loop.run_until_complete(scenario()) < 2.0  # on time, not when the instance frees up
    finally:
        gate.set()
        _stop(plane)


def test_sync_and_async_calls_alternate_on_one_thread(loop):
    """The thread switches between blocking on its queue (sync) and running its loop (async) without losing a
    batch: each call finishes, on the same thread; an async call always runs on the instance loop."""
    seen: List[Any] = []

    def infer(requests):
        if requests[0]["x"][0] > 0:  # odd calls are sync, even calls return a coroutine
            seen.append(("sync", threading.get_ident(), None))
            return [{"y": r["x"]} for r in requests]

        async def later():
            seen.append(("async", threading.get_ident(), asyncio.get_running_loop() is not None))
            await asyncio.sleep(0)
            return [{"y": r["x"]} for r in requests]

        return later()

    plane = _plane(loop, infer, ModelConfig(batching=False))
    try:

        async def alternate():
            for index in range(60):
                sign = 1.0 if index % 2 else -1.0
                request = InferenceRequest("m", inputs={"x": np.full(2, sign, np.float32)})
                response = await asyncio.wait_for(plane.infer(request), 10)
                assert response.outputs["y"].tolist() == [sign, sign]

        loop.run_until_complete(alternate())
    finally:
        _stop(plane)
    assert len(seen) == 60 and len({ident for _, ident, _ in seen}) == 1
    assert all(running for kind, _, running in seen if kind == "async")


def test_a_batch_handed_over_while_a_stream_runs_starts_at_once(loop):
    """An async generator frees its instance and streams on the instance loop; the next batch, handed to the
    same instance meanwhile, must run there at once (the hand-off wakes the running loop)."""
    second_started = threading.Event()

    async def streams(requests):
        if requests[0]["x"][0] > 0:
            second_started.set()
            yield [{"y": r["x"]} for r in requests]
            return
        for _ in range(500):  # the first stream waits (at most 5 s) until the second one has started
            if second_started.is_set():
                break
            await asyncio.sleep(0.01)
        yield [{"y": r["x"] * 0 + float(second_started.is_set())} for r in requests]

    plane = _plane(loop, streams, ModelConfig(batching=False, decoupled=True))
    try:

        async def both():
            async def collect(sign):
                request = InferenceRequest("m", inputs={"x": np.full(2, sign, np.float32)})
                return [r.outputs["y"].tolist() async for r in plane.infer_stream(request)]

            first = asyncio.ensure_future(collect(-1.0))
            await asyncio.sleep(0.05)  # the first stream is running on the instance loop
            second = await collect(1.0)
            return await first, second

        first, second = loop.run_until_complete(asyncio.wait_for(both(), 30))
        assert second == [[1.0, 1.0]]
        assert first == [[1.0, 1.0]]  # the second stream started while the first waited
    finally:
        _stop(plane)
