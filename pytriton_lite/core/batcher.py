"""The dynamic batcher: Triton's scheduling semantics, in-process (docs/architecture.md, section 5).

Runs entirely on the serving loop: ``submit`` queues a request, ``_schedule`` forms batches of whole
requests whenever an instance is free, instance threads report back through ``batch_done``/``stream_item``.
Deadlines use the monotonic clock. No locks: everything here happens on one thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterator, List, NamedTuple, Optional, Tuple

from pytriton_lite.core.instances import Batch, BatchSink, Instance
from pytriton_lite.core.model import Model
from pytriton_lite.core.stats import ModelStats
from pytriton_lite.exceptions import (
    CancelledError,
    InferenceError,
    QueueTimeoutError,
    UnavailableError,
)
from pytriton_lite.types import InferenceRequest, InferenceResponse, Request

QUEUED, DISPATCHED, DONE = 0, 1, 2
_END = object()


GRANT_EVERY = 16  # a stream's consumer returns credits to the instance in chunks (one post per chunk)


class StreamOutcomes:
    """The responses of one streaming request, on the serving loop: responses, then an error or the end.

    At most ``STREAM_WINDOW`` responses wait here: the instance sends no more until the consumer has taken
    some (``get`` hands credits back), so a client that stops reading stops the model, not the memory.
    """

    __slots__ = ("_queue", "_taken", "_source")

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._taken = 0
        self._source: Optional[Tuple[Instance, Batch]] = None

    def attach(self, instance: Instance, batch: Batch) -> None:
        """The stream now runs as ``batch`` on ``instance`` (set at dispatch)."""
        self._source = (instance, batch)

    def release(self, count: int) -> None:
        if self._source is not None:
            instance, batch = self._source
            instance.grant(batch, count)

    def put(self, outcome: Any) -> None:
        """A response, an exception or ``_END`` (called on the loop)."""
        self._queue.put_nowait(outcome)

    async def get(self) -> Optional[InferenceResponse]:
        """The next response; None at the end; raises the exception that ended the stream."""
        outcome = await self._queue.get()
        if outcome is _END:
            return None
        if isinstance(outcome, BaseException):
            raise outcome
        self._taken += 1
        if self._taken >= GRANT_EVERY:
            self.release(self._taken)
            self._taken = 0
        return outcome  # type: ignore[no-any-return]


class Pending:
    """A queued request: a future (coupled), a stream queue (decoupled / streaming), or a ``reply`` callback
    that is handed the outcome on the loop as it is known (front-end workers: no future and no loop callback
    per request); ``cancel()`` drops a reply item as cancelling its future would."""

    __slots__ = (
        "request",
        "inference_request",
        "batch_size",
        "key",
        "future",
        "stream",
        "closed",
        "enqueue_ns",
        "deadline_ns",
        "reject_on_timeout",
        "state",
        "seq",
        "is_gone",
        "batch",
        "reply",
    )

    def __init__(
        self,
        request: Request,
        inference_request: InferenceRequest,
        batch_size: int,
        key: Tuple[Any, ...],
        future: Optional[asyncio.Future[InferenceResponse]] = None,
        stream: Optional[StreamOutcomes] = None,
        is_gone: Optional[Callable[[], bool]] = None,
        reply: Optional[Callable[[Any], None]] = None,
    ) -> None:
        self.request = request
        self.inference_request = inference_request
        self.batch_size = batch_size
        self.key = key
        self.future = future
        self.stream = stream
        self.closed = False
        self.enqueue_ns = 0
        self.deadline_ns = 0
        self.reject_on_timeout = True
        self.state = QUEUED
        self.seq = 0
        self.is_gone = is_gone  # a transport's cheap "client disconnected?" probe, polled at dispatch
        self.batch: Optional[Batch] = None  # set at dispatch
        self.reply = reply

    def cancel(self) -> None:
        """Nobody waits any more: dropped if still queued, its outcome discarded otherwise."""
        if self.future is not None:
            self.future.cancel()
        self.closed = True

    def gone(self) -> bool:
        """True when nobody waits for this request any more (client disconnected or cancelled)."""
        if self.is_gone is not None and self.is_gone():
            return True
        if self.future is not None:
            return self.future.done()
        return self.closed


class _Policy(NamedTuple):
    """One priority level's queue policy, read once from the served config's ``ModelQueuePolicy``."""

    reject: bool  # timeout_action REJECT (else DELAY)
    default_timeout_microseconds: int
    allow_timeout_override: bool
    max_queue_size: int

    @classmethod
    def of(cls, proto: Any) -> _Policy:
        return cls(
            reject=int(proto.timeout_action) != _DELAY,
            default_timeout_microseconds=int(proto.default_timeout_microseconds),
            allow_timeout_override=bool(proto.allow_timeout_override),
            max_queue_size=int(proto.max_queue_size),
        )


_DELAY = 1  # inference.ModelQueuePolicy.TimeoutAction.DELAY


class Batcher(BatchSink):
    """Queues and schedules the requests of one model over its instances."""

    def __init__(
        self,
        model: Model,
        loop: asyncio.AbstractEventLoop,
        stats: ModelStats,
        on_unrecoverable: Callable[[BaseException], None],
    ) -> None:
        self.model = model
        self.loop = loop
        self.stats = stats
        batching = model.max_batch_size > 0
        cfg = model.served.dynamic_batching  # the served config is the policy (bound or from config.pbtxt)
        self.max_batch_size = model.max_batch_size
        # Triton's default scheduler (batching model, no dynamic_batching) runs each request alone
        self.merging = batching and not model.decoupled and model.served.HasField("dynamic_batching")
        self.delay_ns = int(cfg.max_queue_delay_microseconds) * 1000 if batching else 0
        self.preferred = sorted({int(s) for s in cfg.preferred_batch_size}) if batching else []
        self.levels = max(1, int(cfg.priority_levels)) if batching else 1
        self.default_level = max(1, int(cfg.default_priority_level or 1)) if cfg.priority_levels else 1
        default_policy = _Policy.of(cfg.default_queue_policy)
        self.policies: List[_Policy] = [
            _Policy.of(cfg.priority_queue_policy[level + 1])
            if (level + 1) in cfg.priority_queue_policy
            else default_policy
            for level in range(self.levels)
        ]
        self.queues: List[Deque[Pending]] = [deque() for _ in range(self.levels)]
        self.queued_per_level = [0] * self.levels
        self.queued = 0
        self.in_flight = 0
        self.preserve_ordering = bool(cfg.preserve_ordering) and model.instance_count > 1
        self._next_seq = 0
        self._deliver_seq = 0
        self._held: Dict[int, Tuple[Pending, Any]] = {}
        self._timer: Optional[asyncio.TimerHandle] = None  # the batch-forming delay
        self._expiry: Optional[asyncio.TimerHandle] = None  # the earliest REJECT deadline in the queue
        self._expiry_ns = 0
        self._idle_waiters: List[asyncio.Future[None]] = []
        self.instances = [
            Instance(model, i, func, loop, self, on_unrecoverable) for i, func in enumerate(model.infer_funcs)
        ]
        self.free: Deque[Instance] = deque(self.instances)

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        for instance in self.instances:
            instance.start()

    def stop(self) -> None:
        """Fail what is still queued, cancel the timers and stop the instance threads."""
        for timer in (self._timer, self._expiry):
            if timer is not None:
                timer.cancel()
        self._timer = self._expiry = None
        for index, level in enumerate(self.queues):
            while level:
                item = level.popleft()
                if item.state == QUEUED:
                    self._dequeue(item, index)
                    self._finish(item, UnavailableError(f"Server is stopping: model '{self.model.name}' is unloading"))
        self.queued = 0
        self.queued_per_level = [0] * self.levels
        self.stats.pending = 0
        for instance in self.instances:
            instance.stop()

    def queue_counts(self) -> Tuple[int, int]:
        """(queued requests, queued requests nobody waits for any more)."""
        live = [item for level in self.queues for item in level if item.state == QUEUED]
        return len(live), sum(1 for item in live if item.gone())

    def idle(self) -> bool:
        return self.queued == 0 and self.in_flight == 0

    async def wait_idle(self) -> None:
        if self.idle():
            return
        waiter = self.loop.create_future()
        self._idle_waiters.append(waiter)
        await waiter

    # --- submission ------------------------------------------------------------------------------------

    def submit(self, item: Pending) -> None:
        """Queue ``item`` (raises UnavailableError when its priority level's queue is full)."""
        level = self._level(item.inference_request.priority)
        policy = self.policies[level]
        if policy.max_queue_size and self.queued_per_level[level] >= policy.max_queue_size:
            self.stats.record_failure(0, "REJECTED")  # Triton counts a full queue as a rejected request
            raise UnavailableError(f"Exceeds maximum queue size for model '{self.model.name}'")
        now = time.monotonic_ns()
        item.enqueue_ns = now
        timeout_us = policy.default_timeout_microseconds
        override = item.inference_request.timeout_us
        if override is not None and policy.allow_timeout_override:
            timeout_us = override
        if timeout_us:
            item.deadline_ns = now + int(timeout_us) * 1000
            item.reject_on_timeout = policy.reject
        item.seq = self._next_seq
        self._next_seq += 1
        self.queues[level].append(item)
        self.queued_per_level[level] += 1
        self.queued += 1
        self.stats.pending += 1
        if self.free:
            self._schedule()
        if item.state == QUEUED and item.deadline_ns and item.reject_on_timeout:
            self._arm_expiry(item.deadline_ns)

    # --- REJECT deadlines: a queued request times out on time, even when nothing else happens -----------

    def _arm_expiry(self, deadline_ns: int) -> None:
        if self._expiry is not None and self._expiry_ns <= deadline_ns:
            return
        if self._expiry is not None:
            self._expiry.cancel()
        delay_s = max(0.0, (deadline_ns - time.monotonic_ns()) / 1e9)
        self._expiry_ns = deadline_ns
        self._expiry = self.loop.call_at(self.loop.time() + delay_s, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        now = time.monotonic_ns()
        earliest = 0
        for level, items in enumerate(self.queues):
            for item in items:
                if item.state != QUEUED or not item.deadline_ns or not item.reject_on_timeout:
                    continue
                if now >= item.deadline_ns:
                    self._dequeue(item, level)
                    self._finish(item, QueueTimeoutError("Request timeout expired"))
                elif not earliest or item.deadline_ns < earliest:
                    earliest = item.deadline_ns
        if earliest:
            self._arm_expiry(earliest)
        if self.idle():
            self._wake_idle()

    def _level(self, priority: int) -> int:
        if self.levels == 1:
            return 0
        if not priority or priority > self.levels:
            return self.default_level - 1
        return int(priority) - 1

    # --- scheduling ------------------------------------------------------------------------------------

    def _live(self, now: int) -> Iterator[Pending]:
        """Queued items in scheduling order; drops the gone and the timed-out (REJECT) on the way."""
        deferred: List[Pending] = []
        for level, items in enumerate(self.queues):
            while items and items[0].state != QUEUED:
                items.popleft()
            for item in items:
                if item.state != QUEUED:
                    continue
                if item.gone():
                    self._dequeue(item, level)
                    self._finish(item, CancelledError(f"Request for model '{self.model.name}' was cancelled"))
                    continue
                if item.deadline_ns and now >= item.deadline_ns:
                    if item.reject_on_timeout:
                        self._dequeue(item, level)
                        self._finish(item, QueueTimeoutError("Request timeout expired"))
                        continue
                    deferred.append(item)
                    continue
                yield item
        yield from deferred

    def _dequeue(self, item: Pending, level: Optional[int] = None) -> None:
        item.state = DISPATCHED
        if level is None:
            level = self._level(item.inference_request.priority)
        self.queued_per_level[level] -= 1
        self.queued -= 1
        self.stats.pending -= 1

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.free and self.queued:
            now = time.monotonic_ns()
            taken, wait_until = self._form(now)
            if not taken:
                if wait_until:
                    self._timer = self.loop.call_at(self.loop.time() + (wait_until - now) / 1e9, self._schedule)
                return
            self._dispatch(taken, now)
        if self.idle():
            self._wake_idle()

    def _form(self, now: int) -> Tuple[List[Pending], int]:
        """Pick the next batch; or return ([], t) to wait until monotonic ns ``t`` for more requests."""
        max_size = self.max_batch_size
        taken: List[Pending] = []
        total = 0
        blocked = False
        key = None
        for item in self._live(now):
            if not self.merging:  # no batcher, or decoupled: never batched across requests / streams
                return [item], 0
            if key is None:
                key = item.key
            elif item.key != key or total + item.batch_size > max_size:
                blocked = True  # never reorder past a request that does not fit: keep arrival order
                break
            taken.append(item)
            total += item.batch_size
            if total == max_size:
                break
        if not taken:
            return [], 0
        if total == max_size:
            return taken, 0
        if self.preferred:
            cut = self._preferred_cut(taken)
            if cut:
                return taken[:cut], 0
        oldest = min(item.enqueue_ns for item in taken)
        if self.delay_ns == 0 or blocked or now >= oldest + self.delay_ns:
            return taken, 0
        return [], oldest + self.delay_ns

    def _preferred_cut(self, taken: List[Pending]) -> int:
        """Largest prefix of ``taken`` whose size is a preferred batch size (0 when none)."""
        best = 0
        total = 0
        preferred = self.preferred
        for index, item in enumerate(taken, 1):
            total += item.batch_size
            if total in preferred:
                best = index
        return best

    def _dispatch(self, taken: List[Pending], now: int) -> None:
        requests = []
        size = 0
        for item in taken:
            self._dequeue(item)
            requests.append(item.request)
            size += item.batch_size
        batch = Batch(taken, requests, size)
        batch.start_ns = now
        instance = self.free.popleft()
        for item in taken:
            item.batch = batch
            if item.stream is not None:
                item.stream.attach(instance, batch)
        self.in_flight += 1
        instance.submit(batch)

    # --- outcomes (called on the loop by instance threads) ---------------------------------------------

    def batch_done(
        self, instance: Instance, batch: Batch, results: Optional[List[Any]], error: Optional[BaseException]
    ) -> None:
        if not batch.released:  # a concurrent stream gave its instance back when it started
            batch.released = True
            self.free.append(instance)
        self.in_flight -= 1
        end = time.monotonic_ns()
        self.stats.record_busy(instance.index, end - batch.start_ns)
        if error is None:
            self.stats.record_execution(
                batch.size,
                len(batch.items),
                batch.infer_start_ns - batch.start_ns,
                batch.infer_end_ns - batch.infer_start_ns,
                end - batch.infer_end_ns,
            )
        model = self.model
        for index, item in enumerate(batch.items):
            if error is not None:
                self._finish(item, error, batch.start_ns)
            elif item.stream is not None and model.decoupled:
                self._finish(item, _END, batch.start_ns)
            elif results is not None and isinstance(results[index], InferenceError):
                self._finish(item, results[index], batch.start_ns)  # that request alone failed
            else:
                response = InferenceResponse(
                    model_name=model.name,
                    model_version=model.version_str,
                    outputs=results[index] if results is not None else {},
                    id=item.inference_request.id,
                )
                self._finish(item, response, batch.start_ns)
        # each item refers to its batch (traces read its timestamps): without this every request would stay
        # in a reference cycle for the garbage collector (measured: 16 % of the serving process's CPU with
        # front-end workers at 256 requests in flight, collections scanning what is in flight)
        batch.items = []
        if self.queued:
            self._schedule()
        elif self.idle():
            self._wake_idle()

    def close_stream(self, item: Pending) -> None:
        """The consumer of a streaming request is gone (its iterator closed)."""
        item.closed = True
        batch = item.batch
        if batch is not None and all(other.closed for other in batch.items):
            self._cancel(batch)

    def _cancel(self, batch: Batch) -> None:
        """Every consumer of ``batch``'s stream is gone: stop the generator at its next response."""
        if not batch.cancelled:
            batch.cancelled = True
            for item in batch.items:
                if item.stream is not None:
                    item.stream.release(1)  # wakes a generator waiting for credits
                    break

    def instance_free(self, instance: Instance, batch: Batch) -> None:
        """A stream released ``instance`` when it started (it goes on concurrently): schedule the next batch."""
        batch.released = True
        self.free.append(instance)
        if self.queued:
            self._schedule()

    def stream_item(self, instance: Instance, batch: Batch, results: List[Any]) -> None:
        model = self.model
        live = False
        for item, outputs in zip(batch.items, results):
            if item.closed:
                continue
            live = True
            item.stream.put(
                InferenceResponse(
                    model_name=model.name,
                    model_version=model.version_str,
                    outputs=outputs,
                    id=item.inference_request.id,
                    final=False,
                )
            )
        if not live:
            self._cancel(batch)

    def _finish(self, item: Pending, outcome: Any, dispatch_ns: int = 0) -> None:
        """Record stats and hand ``outcome`` (response, _END or exception) to the waiter, in order if asked."""
        end = time.monotonic_ns()
        total = end - item.enqueue_ns
        if isinstance(outcome, BaseException):
            reason = outcome.reason if isinstance(outcome, InferenceError) else "OTHER"
            self.stats.record_failure(total, reason)
        else:
            self.stats.record_success(total, (dispatch_ns or end) - item.enqueue_ns)
        item.state = DONE
        if not self.preserve_ordering:
            _deliver(item, outcome)
            return
        self._held[item.seq] = (item, outcome)
        while self._deliver_seq in self._held:
            held_item, held_outcome = self._held.pop(self._deliver_seq)
            _deliver(held_item, held_outcome)
            self._deliver_seq += 1

    def _wake_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _deliver(item: Pending, outcome: Any) -> None:
    if item.future is not None:
        if item.future.done():
            return
        if isinstance(outcome, BaseException):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)
    elif item.stream is not None and not item.closed:
        item.stream.put(outcome)
    elif item.reply is not None and not item.closed:
        item.closed = True  # one outcome per request
        item.reply(outcome)
