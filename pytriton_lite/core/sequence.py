"""The sequence batcher: Triton's scheduler for stateful models, in-process (docs/sequences.md).

Every instance has sequence slots (Direct: ``max(1, max_batch_size)``; Oldest: ``max_candidate_sequences``).
A request starting a sequence (``sequence_start``) takes a free slot, or waits in a backlog until one frees;
every later request of that sequence id goes to the same slot, so to the same instance, in arrival order. A
batch holds at most one request per slot; the model gets the configured control tensors (START, END, READY,
CORRID) as extra inputs of each request. A sequence with no new request for ``max_sequence_idle_microseconds``
loses its slot; a later request for it then fails as an unknown sequence, with Triton's text.

Like the dynamic batcher it runs only on the serving loop (no locks); instance threads report back through
``Batcher.batch_done``, which calls ``_schedule`` again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union

from pytriton_lite.core.batcher import QUEUED, Batcher, Pending
from pytriton_lite.core.instances import Batch, Instance
from pytriton_lite.core.model import Model
from pytriton_lite.core.sequence_config import (
    FLAG_END,
    FLAG_START,
    SEQUENCE_IDLE_DEFAULT_MICROSECONDS,
    controls_of,
)
from pytriton_lite.core.stats import ModelStats
from pytriton_lite.exceptions import CancelledError, InvalidArgumentError, UnavailableError

LOGGER = logging.getLogger("pytriton_lite.core")

CorrelationId = Union[int, str]


class _Slot:
    """One sequence slot of one instance: the sequence holding it and that sequence's queued requests."""

    __slots__ = ("instance", "index", "owner", "queue", "expired")

    def __init__(self, instance: Instance, index: int) -> None:
        self.instance = instance
        self.index = index
        self.owner: Optional[CorrelationId] = None
        self.queue: Deque[Pending] = deque()
        self.expired = False  # idle too long: released once its queued requests are taken

    def order(self) -> Tuple[int, int]:
        # Triton hands out slot 0 of every instance before slot 1 of any: sequences spread over instances
        return (self.index, self.instance.index)


class _Backlog:
    """The requests of one sequence that found no free slot (they keep their order)."""

    __slots__ = ("owner", "items")

    def __init__(self, owner: CorrelationId) -> None:
        self.owner = owner
        self.items: Deque[Pending] = deque()


def _in_sequence(correlation_id: CorrelationId) -> bool:
    return correlation_id != 0 and correlation_id != ""


class SequenceBatcher(Batcher):
    """Schedules the requests of a model with ``sequence_batching`` over its instances' sequence slots."""

    def __init__(
        self,
        model: Model,
        loop: asyncio.AbstractEventLoop,
        stats: ModelStats,
        on_unrecoverable: Callable[[BaseException], None],
    ) -> None:
        super().__init__(model, loop, stats, on_unrecoverable)
        section = model.served.sequence_batching
        self.controls = controls_of(model.served)
        self.oldest = section.HasField("oldest")
        # requests (one row each) per execution; a decoupled model streams each request from its own call
        self.rows = 1 if model.decoupled else max(1, model.max_batch_size)
        if self.oldest:
            per_instance = int(section.oldest.max_candidate_sequences) or self.rows
            self.seq_delay_ns = int(section.oldest.max_queue_delay_microseconds) * 1000
            self.seq_preferred = sorted({int(s) for s in section.oldest.preferred_batch_size})
            self.min_utilization = 0.0
        else:
            per_instance = self.rows
            self.seq_delay_ns = int(section.direct.max_queue_delay_microseconds) * 1000
            self.seq_preferred = []
            self.min_utilization = float(section.direct.minimum_slot_utilization)
        idle_us = int(section.max_sequence_idle_microseconds) or SEQUENCE_IDLE_DEFAULT_MICROSECONDS
        self.idle_ns = idle_us * 1000
        self.slots: Dict[Instance, List[_Slot]] = {
            instance: [_Slot(instance, i) for i in range(per_instance)] for instance in self.instances
        }
        self.free_slots: List[_Slot] = [slot for slots in self.slots.values() for slot in slots]
        self.owned: Dict[CorrelationId, _Slot] = {}  # sequence id -> its slot
        self.backlogs: Deque[_Backlog] = deque()
        self.backlog_of: Dict[CorrelationId, _Backlog] = {}  # sequence id -> its (unfinished) backlog
        self.last_seen: Dict[CorrelationId, int] = {}  # sequence id -> monotonic ns of its latest request
        self._reaper: Optional[asyncio.TimerHandle] = None

    # --- submission ------------------------------------------------------------------------------------

    def submit(self, item: Pending) -> None:
        """Route ``item`` to its sequence's slot or backlog; raises InvalidArgumentError with Triton's text."""
        request = item.request
        correlation_id = request.correlation_id
        corrid_value = self._check(item)
        end = bool(request.flags & FLAG_END)
        # the control tensors are set now: they depend only on this request's own flags and sequence id
        for control_name, tensor in self.controls.tensors(request.flags, corrid_value):
            request.data[control_name] = tensor
        now = time.monotonic_ns()
        item.enqueue_ns = now
        item.seq = self._next_seq
        self._next_seq += 1
        self.queued += 1
        self.queued_per_level[0] += 1
        self.stats.pending += 1
        if end:
            self.last_seen.pop(correlation_id, None)
        else:
            self.last_seen[correlation_id] = now
            self._arm_reaper(now + self.idle_ns)
        slot = self._route(item, correlation_id, end)
        if slot is not None and slot.instance in self.free:
            self._schedule()

    def _check(self, item: Pending) -> Any:
        """Triton's checks of a sequence request, in its order; returns the CORRID control's value."""
        name = self.model.name
        request = item.request
        if item.batch_size > 1:
            raise InvalidArgumentError(
                f"inference request to model '{name}' must specify batch-size 1 due to requirements of sequence batcher"
            )
        correlation_id = request.correlation_id
        if not _in_sequence(correlation_id):
            raise InvalidArgumentError(
                f"inference request to model '{name}' must specify a non-zero or non-empty correlation ID"
            )
        corrid_value = None
        if self.controls.corrid is not None:
            try:
                corrid_value = self.controls.corrid_value(correlation_id, name)
            except ValueError as exc:
                raise InvalidArgumentError(str(exc)) from None
        known = correlation_id in self.owned or correlation_id in self.backlog_of
        if not request.flags & FLAG_START and not known:
            raise InvalidArgumentError(
                f"inference request for sequence {_shown(correlation_id)} to model '{name}' must specify the "
                "START flag on the first request of the sequence"
            )
        if request.flags & FLAG_START and known:
            LOGGER.warning(
                "sequence %s for model '%s' has a conflict. The previous sequence did not end before this sequence "
                "start. Previous sequence will be terminated early.",
                _shown(correlation_id),
                name,
            )
        return corrid_value

    def _route(self, item: Pending, correlation_id: CorrelationId, end: bool) -> Optional[_Slot]:
        """Queue ``item`` in its sequence's slot (returned) or backlog (None); an END forgets the sequence id."""
        slot = self.owned.get(correlation_id)
        backlog = self.backlog_of.get(correlation_id)
        if slot is not None:
            slot.queue.append(item)
            if end:
                del self.owned[correlation_id]
            return slot
        if backlog is not None:
            backlog.items.append(item)
            if end:
                del self.backlog_of[correlation_id]
            return None
        if self.free_slots:
            slot = min(self.free_slots, key=_Slot.order)
            self.free_slots.remove(slot)
            slot.owner = correlation_id
            slot.queue.append(item)
            if not end:
                self.owned[correlation_id] = slot
            return slot
        backlog = _Backlog(correlation_id)
        backlog.items.append(item)
        self.backlogs.append(backlog)
        if not end:
            self.backlog_of[correlation_id] = backlog
        return None

    # --- idle sequences: Triton's reaper -----------------------------------------------------------------

    def _arm_reaper(self, due_ns: int) -> None:
        if self._reaper is not None:
            return  # the armed reaper re-arms itself for the earliest due sequence
        delay_s = max(0.0, (due_ns - time.monotonic_ns()) / 1e9)
        self._reaper = self.loop.call_at(self.loop.time() + delay_s, self._reap)

    def _reap(self) -> None:
        self._reaper = None
        now = time.monotonic_ns()
        earliest = 0
        for correlation_id in list(self.last_seen):
            seen = self.last_seen.get(correlation_id)
            if seen is None:
                continue
            due = seen + self.idle_ns  # read now: a release earlier in this loop may have refreshed it
            if due > now:
                earliest = due if not earliest else min(earliest, due)
                continue
            slot = self.owned.get(correlation_id)
            if slot is not None:
                LOGGER.info("sequence %s of model '%s' idle too long: released", correlation_id, self.model.name)
                del self.owned[correlation_id]
                del self.last_seen[correlation_id]
                slot.expired = True
                if not slot.queue:
                    self._release(slot)
            elif correlation_id in self.backlog_of:
                due = now + 50_000_000  # waiting for a slot is not idleness: look again later
                earliest = due if not earliest else min(earliest, due)
            else:
                del self.last_seen[correlation_id]
        if earliest:
            self._arm_reaper(earliest)
        if self.queued and self.free:
            self._schedule()  # a freed slot may have taken a backlogged sequence

    def _release(self, slot: _Slot) -> None:
        """``slot``'s sequence ended (or idled out): the oldest backlogged sequence takes it, or it is free."""
        slot.owner = None
        slot.expired = False
        if not self.backlogs:
            self.free_slots.append(slot)
            return
        backlog = self.backlogs.popleft()
        slot.owner = backlog.owner
        slot.queue.extend(backlog.items)
        if self.backlog_of.get(backlog.owner) is backlog:  # the sequence goes on: its later requests come here
            del self.backlog_of[backlog.owner]
            self.owned[backlog.owner] = slot
            if backlog.owner in self.last_seen:  # time spent waiting for a slot is not idle time
                self.last_seen[backlog.owner] = time.monotonic_ns()

    # --- scheduling ------------------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wait_until = 0
        progress = True
        while progress and self.free and self.queued:
            progress = False
            now = time.monotonic_ns()
            for instance in list(self.free):
                taken, wait = self._form_for(instance, now)
                if taken:
                    self._dispatch_on(instance, taken, now)
                    progress = True
                elif wait:
                    wait_until = wait if not wait_until else min(wait_until, wait)
        if wait_until and self.free and self.queued:
            delay_s = max(0.0, (wait_until - time.monotonic_ns()) / 1e9)
            self._timer = self.loop.call_at(self.loop.time() + delay_s, self._schedule)
        if self.idle():
            self._wake_idle()

    def _take(self, slot: _Slot) -> Pending:
        """Pop ``slot``'s next request; an END (or the last request of an idled-out sequence) frees the slot."""
        item = slot.queue.popleft()
        self._dequeue(item, 0)
        if not slot.queue and (item.request.flags & FLAG_END or slot.expired):
            self._release(slot)
        return item

    def _ready_slots(self, instance: Instance) -> List[_Slot]:
        """``instance``'s slots with a request to run (requests whose client is gone are dropped here)."""
        ready: List[_Slot] = []
        for slot in self.slots[instance]:
            while slot.queue and slot.queue[0].gone():
                gone = self._take(slot)
                self._finish(gone, CancelledError(f"Request for model '{self.model.name}' was cancelled"))
            if slot.queue:
                ready.append(slot)
        if self.oldest:
            ready.sort(key=lambda s: s.queue[0].enqueue_ns)
        return ready

    def _form_for(self, instance: Instance, now: int) -> Tuple[List[Pending], int]:
        """The next batch for ``instance`` (one request per ready slot), or ([], t): wait until ``t``."""
        ready = self._ready_slots(instance)
        if not ready:
            return [], 0
        key = ready[0].queue[0].key
        chosen = [slot for slot in ready if slot.queue[0].key == key][: self.rows]  # other shapes: a later batch
        count = len(chosen)
        if count < self.rows:
            waited = min(slot.queue[0].enqueue_ns for slot in chosen) + self.seq_delay_ns
            if self.oldest and count not in self.seq_preferred:
                # the dynamic batcher's rule among the oldest sequences' next requests
                if self.seq_delay_ns and now < waited:
                    return [], waited
                fitting = [size for size in self.seq_preferred if size <= count]
                if fitting:
                    chosen = chosen[: fitting[-1]]
            elif (
                not self.oldest and self.seq_delay_ns and len(ready) / len(self.slots[instance]) < self.min_utilization
            ):
                if now < waited:  # Direct: wait for more ready slots, at most the delay
                    return [], waited
        if not self.oldest:
            chosen.sort(key=lambda s: s.index)  # Direct: rows in slot order
        return [self._take(slot) for slot in chosen], 0

    def _dispatch_on(self, instance: Instance, taken: List[Pending], now: int) -> None:
        self.free.remove(instance)
        batch = Batch(taken, [item.request for item in taken], len(taken))
        batch.start_ns = now
        for item in taken:
            item.batch = batch
            if item.stream is not None:
                item.stream.attach(instance, batch)
        self.in_flight += 1
        instance.submit(batch)

    def instance_free(self, instance: Instance, batch: Batch) -> None:
        """An async generator's stream started: the dynamic batcher would hand its instance out again, but the
        sequence's next request must wait for this one to end, so the instance stays busy until ``batch_done``."""

    # --- lifecycle -------------------------------------------------------------------------------------

    def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        error = UnavailableError(f"Server is stopping: model '{self.model.name}' is unloading")
        queues = [slot.queue for slots in self.slots.values() for slot in slots]
        queues += [backlog.items for backlog in self.backlogs]
        for queue in queues:
            while queue:
                item = queue.popleft()
                if item.state == QUEUED:
                    self._dequeue(item, 0)
                    self._finish(item, error)
        self.backlogs.clear()
        self.backlog_of.clear()
        self.owned.clear()
        self.last_seen.clear()
        super().stop()

    def queue_counts(self) -> Tuple[int, int]:
        live = [item for slots in self.slots.values() for slot in slots for item in slot.queue]
        live += [item for backlog in self.backlogs for item in backlog.items]
        return len(live), sum(1 for item in live if item.gone())


def _shown(correlation_id: CorrelationId) -> str:
    return correlation_id[:128] if isinstance(correlation_id, str) else str(correlation_id)


def make_batcher(
    model: Model,
    loop: asyncio.AbstractEventLoop,
    stats: ModelStats,
    on_unrecoverable: Callable[[BaseException], None],
) -> Batcher:
    """The scheduler a model's served config asks for: the sequence batcher or the dynamic batcher."""
    if model.served.HasField("sequence_batching"):
        return SequenceBatcher(model, loop, stats, on_unrecoverable)
    return Batcher(model, loop, stats, on_unrecoverable)


__all__ = ["SequenceBatcher", "make_batcher"]
