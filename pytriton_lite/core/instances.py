"""Model instances: one worker thread per infer callable, with a private event loop for what is async.

The serving loop hands work to an instance through a ``queue.SimpleQueue``: while the instance has no
asyncio task (sync callables, the common case) its thread blocks on the queue and calls the callable
inline, so a batch costs one queue put and no self-pipe write or selector wake-up. An ``async def``,
generator or async generator outcome becomes a task on the instance's private loop (see
``core.callables``); while tasks exist the thread runs that loop, and each put also posts one
``call_soon_threadsafe`` that drains the queue there, so new batches never wait behind a running stream.
The loop gives the thread back to the queue once its last task ends. The outcome goes back with one
``call_soon_threadsafe`` per batch (per response for decoupled models). Those posts are the only hand-offs
between the threads: a batch's fields are written by one side before the post and read by the other after
it, and the serving loop's "stop this stream" reaches the instance as the ``cancelled`` flag plus a posted
wake-up.

A sync callable usually runs outside any running event loop (inside it when it comes while tasks run;
``asyncio.get_event_loop()`` returns the instance's loop either way); an ``async def`` callable runs on it.

Streams have backpressure: an instance may have ``STREAM_WINDOW`` responses of one stream that its consumer
has not taken yet; then the model's generator waits until the consumer takes some.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from typing import Any, Callable, List, Optional, Set, Tuple

from pytriton_lite.core import callables
from pytriton_lite.exceptions import InferenceError, ModelExecutionError, PyTritonUnrecoverableError
from pytriton_lite.types import Request

LOGGER = logging.getLogger("pytriton_lite.core")

STREAM_WINDOW = 64  # responses of one stream in flight between the model and its consumer


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
        "released",
        "cancelled",
        "credits",
    )

    def __init__(self, items: List[Any], requests: List[Request], size: int) -> None:
        self.items = items
        self.requests = requests
        self.size = size
        self.start_ns = 0
        self.infer_start_ns = 0
        self.infer_end_ns = 0
        self.end_ns = 0
        self.released = False  # serving loop only: the instance was handed back before the batch finished
        # set by the serving loop, read by the instance thread: every consumer of this stream is gone (a
        # flag, not a threading.Event: nobody waits on it, the wake-up is a posted grant)
        self.cancelled = False
        self.credits: Optional[asyncio.Semaphore] = None  # instance loop only: the stream's window


class BatchSink:
    """Callbacks an instance uses to report outcomes; all are invoked on the serving loop."""

    def batch_done(
        self, instance: Instance, batch: Batch, results: Optional[List[Any]], error: Optional[BaseException]
    ) -> None:
        raise NotImplementedError

    def stream_item(self, instance: Instance, batch: Batch, results: List[Any]) -> None:
        raise NotImplementedError

    def instance_free(self, instance: Instance, batch: Batch) -> None:
        raise NotImplementedError


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InferenceError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


class Instance:
    """One model instance: a worker thread with its own event loop, running one infer callable."""

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
        self.loop = loop  # the serving loop
        self.sink = sink
        self.on_unrecoverable = on_unrecoverable
        self._own: asyncio.AbstractEventLoop = asyncio.new_event_loop()  # used only on this instance's thread
        self._queue: queue.SimpleQueue[Optional[Tuple[Callable[..., Any], Tuple[Any, ...]]]] = queue.SimpleQueue()
        self._looping = False  # the thread runs its loop (tasks exist): a put must also wake the loop
        self._stopping = False
        self._tasks: Set[asyncio.Task[Any]] = set()
        self._thread = threading.Thread(
            target=self._run, name=f"pytriton_lite-{model.name}-{model.version}-{index}", daemon=True
        )

    # --- any thread ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, batch: Batch) -> None:
        """Run ``batch`` on this instance (called on the serving loop)."""
        self._call(self._begin, batch)

    def grant(self, batch: Batch, count: int) -> None:
        """The consumer took ``count`` responses of ``batch``'s stream (or left): let the model go on."""
        self._call(_release, batch, count)

    def execute(self, func: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        """Run ``func()`` on this instance's thread (awaiting what it returns); warm-up uses it."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._call(self._execute, func, future)
        return future

    def stop(self) -> None:
        """Stop after the work already handed over (a batch that runs inline finishes; tasks are cancelled)."""
        self._queue.put(None)
        self._wake()

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        self._queue.put((callback, args))
        if self._looping:  # read after the put: the thread sets it before it drains (see _run)
            self._wake()

    def _wake(self) -> None:
        try:
            self._own.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the instance loop is closed: nothing waits any more
            pass

    def join(self, timeout: Optional[float] = None) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # --- the instance thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        loop = self._own
        asyncio.set_event_loop(loop)
        get = self._queue.get
        try:
            while not self._stopping:
                if self._tasks:
                    # set before the first drain: a put that sees False is taken by that drain or by get()
                    self._looping = True
                    loop.call_soon(self._drain)
                    loop.run_forever()  # until the last task ends (_task_done) or stop
                    self._looping = False
                    continue
                item = get()
                if item is None:
                    break
                item[0](*item[1])
        finally:
            try:
                tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in tasks:
                    task.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def _drain(self) -> None:
        """On the instance loop: run what was handed over while tasks run."""
        get = self._queue.get_nowait
        while not self._stopping:
            try:
                item = get()
            except queue.Empty:
                return
            if item is None:
                self._stopping = True
                self._own.stop()
                return
            item[0](*item[1])

    def _spawn(self, coro: Any) -> None:
        task = self._own.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks and self._looping:
            self._own.stop()  # back to blocking on the queue

    def _execute(self, func: Callable[[], Any], future: concurrent.futures.Future[Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return

        async def run() -> None:
            try:
                result = await callables.settle(func())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)
                return
            future.set_result(result)

        self._spawn(run())

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # serving loop closed during shutdown: nobody is waiting any more
            pass

    def _fail(self, exc: BaseException) -> BaseException:
        """Turn a callable's exception into what the batch fails with; log the traceback once."""
        if isinstance(exc, InferenceError):
            return exc
        LOGGER.warning("Model '%s' (instance %d) failed", self.model.name, self.index, exc_info=exc)
        error = ModelExecutionError(_describe(exc))
        error.model_message = str(exc) or type(exc).__name__
        if isinstance(exc, PyTritonUnrecoverableError):
            error = ModelExecutionError(
                f"{_describe(exc)} (unrecoverable error: the server stops, no further inferences possible)"
            )
            self._post(self.on_unrecoverable, exc)
        return error

    def _begin(self, batch: Batch) -> None:
        batch.infer_start_ns = time.monotonic_ns()
        try:
            out = self.func(batch.requests)
        except BaseException as exc:  # noqa: BLE001 - any failure fails only this batch
            self._done(batch, None, self._fail(exc))
            return
        if self.model.decoupled:
            self._spawn(self._stream(batch, out))
        elif callables.is_iterator(out) or callables.is_async_iterable(out) or _is_awaitable(out):
            self._spawn(self._complete(batch, out))
        else:
            self._finish(batch, out)

    async def _complete(self, batch: Batch, out: Any) -> None:
        try:
            result = await callables.one_result(out, self.model.name)
        except BaseException as exc:  # noqa: BLE001
            self._done(batch, None, self._fail(exc))
            return
        self._finish(batch, result)

    def _finish(self, batch: Batch, out: Any) -> None:
        batch.infer_end_ns = time.monotonic_ns()
        try:
            results = self.model.postprocess(out, batch.requests)
        except BaseException as exc:  # noqa: BLE001
            self._done(batch, None, self._fail(exc))
            return
        self._done(batch, results, None)

    def _done(self, batch: Batch, results: Optional[List[Any]], error: Optional[BaseException]) -> None:
        if not batch.infer_end_ns:
            batch.infer_end_ns = time.monotonic_ns()
        batch.end_ns = time.monotonic_ns()
        self._post(self.sink.batch_done, self, batch, results, error)

    async def _stream(self, batch: Batch, out: Any) -> None:
        batch.credits = asyncio.Semaphore(STREAM_WINDOW)
        error: Optional[BaseException] = None
        try:
            value = await callables.settle(out)
            if callables.is_async_iterable(value):
                # Like Triton's decoupled execute, an async generator does not hold its instance: it streams
                # on this loop concurrently with the streams started after it. instance_free is posted first
                # so that the serving loop sees it before anything this stream reports.
                self._post(self.sink.instance_free, self, batch)
            await callables.for_each(value, lambda item: self._emit(item, batch))
        except BaseException as exc:  # noqa: BLE001 - fails only this stream
            error = self._fail(exc)
        batch.infer_end_ns = batch.end_ns = time.monotonic_ns()
        self._post(self.sink.batch_done, self, batch, None, error)

    async def _emit(self, item: Any, batch: Batch) -> bool:
        """Send one response of a stream; False once every consumer is gone (the model's generator stops)."""
        if batch.cancelled:
            return False
        results = self.model.postprocess(item, batch.requests)
        assert batch.credits is not None
        await batch.credits.acquire()  # backpressure: wait while STREAM_WINDOW responses are not taken
        if batch.cancelled:
            return False
        self._post(self.sink.stream_item, self, batch, results)
        return True


def _release(batch: Batch, count: int) -> None:
    credits = batch.credits
    if credits is not None:
        for _ in range(count):
            credits.release()


def _is_awaitable(value: Any) -> bool:
    return hasattr(value, "__await__")


__all__ = ["Batch", "BatchSink", "Instance", "STREAM_WINDOW"]
