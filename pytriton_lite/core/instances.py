"""Model instances: one worker thread per infer callable.

A thread takes a whole batch, calls the callable and hands the outcome back to the serving loop with one
``loop.call_soon_threadsafe`` per batch (per yielded item for decoupled models). Sync, ``async def``,
generator and async-generator callables are adapted here; async callables run on a private event loop
owned by the instance thread, so they never block the serving loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from typing import Any, Callable, List, Optional, Sequence

from pytriton_lite.exceptions import InferenceError, ModelExecutionError, PyTritonUnrecoverableError
from pytriton_lite.types import Request

LOGGER = logging.getLogger("pytriton_lite.core")

_STOP = object()


class Batch:
    """A dispatched batch: the pending items, their callable Requests and per-phase timestamps (ns)."""

    __slots__ = (
        "items",
        "requests",
        "size",
        "start_ns",
        "infer_start_ns",
        "infer_end_ns",
        "end_ns",
        "cancelled",
        "released",
    )

    def __init__(self, items: List[Any], requests: List[Request], size: int) -> None:
        self.items = items
        self.requests = requests
        self.size = size
        self.start_ns = 0
        self.infer_start_ns = 0
        self.infer_end_ns = 0
        self.end_ns = 0
        self.cancelled = False  # set by the loop when every stream consumer of a decoupled batch is gone
        self.released = False  # the instance was handed back before the batch finished (concurrent streams)


class BatchSink:
    """Callbacks an instance uses to report outcomes; all are invoked on the serving loop."""

    def batch_done(
        self, instance: Instance, batch: Batch, results: Optional[list], error: Optional[BaseException]
    ) -> None:
        raise NotImplementedError

    def stream_item(self, instance: Instance, batch: Batch, results: list) -> None:
        raise NotImplementedError

    def instance_free(self, instance: Instance, batch: Batch) -> None:
        raise NotImplementedError


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InferenceError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


class Instance:
    """One model instance: a worker thread running one infer callable, one batch at a time."""

    def __init__(
        self,
        model: Any,
        index: int,
        func: Callable[..., Any],
        loop: asyncio.AbstractEventLoop,
        sink: BatchSink,
        on_unrecoverable: Callable[[BaseException], None],
    ) -> None:
        self.model = model
        self.index = index
        self.func = func
        self.loop = loop
        self.sink = sink
        self.on_unrecoverable = on_unrecoverable
        self.busy = False
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._aloop: Optional[asyncio.AbstractEventLoop] = None
        self._stream_loop: Optional[asyncio.AbstractEventLoop] = None  # async-generator streams, concurrently
        self._thread = threading.Thread(
            target=self._run, name=f"pytriton_lite-{model.name}-{model.version}-{index}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def submit(self, batch: Batch) -> None:
        self.busy = True
        self._queue.put(batch)

    def stop(self) -> None:
        self._queue.put(_STOP)

    def join(self, timeout: Optional[float] = None) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # --- worker thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                batch = self._queue.get()
                if batch is _STOP:
                    break
                if self.model.decoupled:
                    self._run_stream(batch)
                else:
                    self._run_batch(batch)
        finally:
            if self._aloop is not None:
                self._aloop.close()
            if self._stream_loop is not None:
                self._stream_loop.call_soon_threadsafe(self._stream_loop.stop)

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # loop closed during shutdown: nobody is waiting any more
            pass

    def _await(self, awaitable: Any) -> Any:
        if self._aloop is None:
            self._aloop = asyncio.new_event_loop()
        return self._aloop.run_until_complete(awaitable)

    def _fail(self, exc: BaseException) -> BaseException:
        """Turn a callable's exception into what the batch fails with; log the traceback once."""
        if isinstance(exc, InferenceError):
            return exc
        LOGGER.warning("Model '%s' (instance %d) failed", self.model.name, self.index, exc_info=exc)
        error = ModelExecutionError(_describe(exc))
        if isinstance(exc, PyTritonUnrecoverableError):
            error = ModelExecutionError(
                f"{_describe(exc)} (unrecoverable error: the server stops, no further inferences possible)"
            )
            self._post(self.on_unrecoverable, exc)
        return error

    def _run_batch(self, batch: Batch) -> None:
        batch.infer_start_ns = time.monotonic_ns()
        results = None
        error: Optional[BaseException] = None
        try:
            out = self.func(batch.requests)
            if inspect.isawaitable(out):
                out = self._await(out)
            elif inspect.isgenerator(out):
                out = _single(list(out), self.model.name)
            elif inspect.isasyncgen(out):
                out = _single(self._await(_drain(out)), self.model.name)
            batch.infer_end_ns = time.monotonic_ns()
            results = self.model.postprocess(out, batch.requests)
        except BaseException as exc:  # noqa: BLE001 - any failure fails only this batch
            if not batch.infer_end_ns:
                batch.infer_end_ns = time.monotonic_ns()
            error = self._fail(exc)
        batch.end_ns = time.monotonic_ns()
        self._post(self.sink.batch_done, self, batch, results, error)

    def _run_stream(self, batch: Batch) -> None:
        batch.infer_start_ns = time.monotonic_ns()
        error: Optional[BaseException] = None
        try:
            out = self.func(batch.requests)
            if inspect.isawaitable(out):
                out = self._await(out)
            if inspect.isasyncgen(out):
                # Like Triton's decoupled execute, an async generator does not hold its instance: it streams on
                # the instance's stream loop, concurrently with the streams started after it.
                # instance_free is posted first so the loop sees it before anything this stream reports
                self._post(self.sink.instance_free, self, batch)
                asyncio.run_coroutine_threadsafe(self._stream_concurrently(out, batch), self._streams())
                return
            elif inspect.isgenerator(out) or isinstance(out, (map, filter)) or hasattr(out, "__next__"):
                try:
                    for item in out:
                        self._emit(item, batch)
                        if batch.cancelled:
                            break
                finally:
                    close = getattr(out, "close", None)
                    if close is not None:
                        close()
            elif out is not None:
                self._emit(out, batch)
        except BaseException as exc:  # noqa: BLE001
            error = self._fail(exc)
        batch.infer_end_ns = batch.end_ns = time.monotonic_ns()
        self._post(self.sink.batch_done, self, batch, None, error)

    def _streams(self) -> asyncio.AbstractEventLoop:
        if self._stream_loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name=f"{self._thread.name}-streams", daemon=True).start()
            self._stream_loop = loop
        return self._stream_loop

    async def _stream_concurrently(self, agen: Any, batch: Batch) -> None:
        error: Optional[BaseException] = None
        try:
            await self._pump_async(agen, batch)
        except BaseException as exc:  # noqa: BLE001 - fails only this stream's batch
            error = self._fail(exc)
        batch.infer_end_ns = batch.end_ns = time.monotonic_ns()
        self._post(self.sink.batch_done, self, batch, None, error)

    async def _pump_async(self, agen: Any, batch: Batch) -> None:
        try:
            async for item in agen:
                self._emit(item, batch)
                if batch.cancelled:
                    break
        finally:
            await agen.aclose()

    def _emit(self, item: Any, batch: Batch) -> None:
        results = self.model.postprocess(item, batch.requests)
        self._post(self.sink.stream_item, self, batch, results)
        # consumers close on the loop; reading their flags here stops a fast generator without waiting a hop
        if all(pending.closed for pending in batch.items):
            batch.cancelled = True


def _single(items: Sequence[Any], model: str) -> Any:
    if len(items) != 1:
        raise ModelExecutionError(
            f"Model '{model}' is not decoupled: its infer function must produce exactly one result, got {len(items)}"
        )
    return items[0]


async def _drain(agen: Any) -> List[Any]:
    return [item async for item in agen]
