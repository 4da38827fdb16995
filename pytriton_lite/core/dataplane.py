"""The in-process data plane: the core's implementation of ``core.api.DataPlane`` (MLServer's pattern).

Front ends decode their wire format into ``InferenceRequest``, call ``infer``/``infer_stream`` and encode the
``InferenceResponse`` they get back; metadata and statistics come out as frozen ``ModelInfo`` /
``StatsSnapshot``. Every method runs on the serving loop, except ``instances_alive`` and
``join_instances``, which read an immutable tuple that the loop replaces (never mutates) when models change.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any, AsyncGenerator, Callable, Dict, List, Mapping, Optional, Tuple

from pytriton_lite.core.api import MODEL_CONTROL_DISABLED, DataPlane, IndexEntry, IsGone, ModelControl
from pytriton_lite.core.batcher import Batcher, Pending, StreamOutcomes
from pytriton_lite.core.cache import ResponseCache, request_key
from pytriton_lite.core.instances import Instance
from pytriton_lite.core.log_settings import LogSettings
from pytriton_lite.core.model import Model
from pytriton_lite.core.registry import Entry, Registry, Unavailable
from pytriton_lite.core.sequence import make_batcher
from pytriton_lite.core.shm import SystemSharedMemory
from pytriton_lite.core.summaries import LatencySummaries
from pytriton_lite.core.trace import TraceSettings
from pytriton_lite.exceptions import (
    DecoupledModelError,
    InvalidArgumentError,
    ModelNotFoundError,
    UnavailableError,
)
from pytriton_lite.types import (
    CustomMetricFamily,
    InferenceRequest,
    InferenceResponse,
    ModelInfo,
    ModelState,
    StatsSnapshot,
)


def model_not_available(name: str) -> InvalidArgumentError:
    """Triton's error for a statistics request naming an unknown (or not ready) model."""
    return InvalidArgumentError(f"requested model '{name}' is not available")


def version_not_available(name: str) -> InvalidArgumentError:
    """Triton's error for a statistics request naming a version the model does not have ready."""
    return InvalidArgumentError(f"requested model version is not available for model '{name}'")


class InProcessDataPlane:
    """Models, their batchers and statistics, behind transport-agnostic calls."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, server_id: str = "triton", cache_bytes: Optional[int] = None
    ) -> None:
        self.loop = loop
        self._server_id = server_id
        self.cache: Optional[ResponseCache] = ResponseCache(cache_bytes) if cache_bytes else None
        self.registry = Registry()
        self.accepting = True
        self.alive = True
        self.on_unrecoverable: Callable[[BaseException], None] = lambda exc: None
        self._instances: Tuple[Instance, ...] = ()  # replaced, never mutated: read from other threads
        # model control: the repository layer sets it (core never imports that layer); None = load/unload refused
        self.control: Optional[ModelControl] = None
        # Triton's --strict-readiness: ready only while every model is (a failed repository model counts)
        self.strict_readiness = True
        # Triton's summary_latencies (metrics_config): the quantiles to keep per model version; None = off
        self.summary_quantiles: Optional[Tuple[Tuple[float, float], ...]] = None
        # python models' custom metrics (pb_utils.MetricFamily): the repository layer sets the source
        self.custom_metrics: Optional[Callable[[], List[CustomMetricFamily]]] = None
        # Triton's trace and logging extensions (core/trace.py, core/log_settings.py); Triton sets them up
        self.trace = TraceSettings()
        self.log = LogSettings()
        # Triton's system shared-memory extension: one registry per server, shared by both front ends
        self._shared_memory = SystemSharedMemory()

    @property
    def server_id(self) -> str:
        return self._server_id

    @property
    def model_control_enabled(self) -> bool:
        return self.control is not None

    @property
    def shared_memory(self) -> SystemSharedMemory:
        return self._shared_memory

    # --- model lifecycle (on the loop, called by Triton) -----------------------------------------------

    def add_model(self, model: Model, *, ready: bool = True) -> Entry:
        """Register ``model`` and start its instances; it serves once READY (``ready=False``: LOADING)."""
        entry = Entry(model)
        self.registry.add(entry)
        self._start_entry(entry)
        if ready:
            entry.state = ModelState.READY
        return entry

    def _start_entry(self, entry: Entry) -> None:
        if self.summary_quantiles is not None:
            entry.stats.summaries = LatencySummaries(self.summary_quantiles)
        entry.batcher = make_batcher(entry.model, self.loop, entry.stats, self._unrecoverable)
        entry.batcher.start()
        self._instances = self._instances + tuple(entry.batcher.instances)

    def start_model(self, model: Model) -> Entry:
        """Start ``model``'s instances without registering it (a reload warms it up beside the version that
        still serves); ``swap_in`` then makes it the served entry."""
        entry = Entry(model)
        self._start_entry(entry)
        return entry

    def swap_in(self, entry: Entry) -> Optional[Entry]:
        """Register a started ``entry`` READY in place of the entry of the same (name, version), which is
        returned UNLOADING (its queued requests still finish: ``retire`` it) or None."""
        model = entry.model
        old = self.registry.exact(model.name, model.version)
        if old is not None:
            self.registry.remove(old)
            old.state, old.reason = ModelState.UNLOADING, ""
        self.registry.add(entry)
        self.registry.clear_unavailable(model.name, model.version)
        entry.state, entry.reason = ModelState.READY, ""
        return old

    async def retire(self, entry: Entry, timeout: float = 30.0) -> bool:
        """Drain an entry that is no longer registered, stop its instances. False when the drain timed out."""
        return await self._retire(entry, timeout)

    def discard(self, entry: Entry) -> None:
        """Stop the instances of an entry that failed before serving (registered or not) and forget it."""
        self.registry.remove(entry)
        entry.batcher.stop()
        gone = set(entry.batcher.instances)
        self._instances = tuple(i for i in self._instances if i not in gone)
        entry.state = ModelState.UNAVAILABLE

    def mark_unavailable(self, name: str, version: int, reason: str, *, failed: bool = True) -> None:
        """Record a version that is not served: it failed to load (``failed``) or was unloaded."""
        self.registry.set_unavailable(Unavailable(name, int(version), reason, failed))

    def clear_unavailable(self, name: str, version: Optional[int] = None) -> None:
        self.registry.clear_unavailable(name, version)

    def set_state(self, name: str, version: int, state: ModelState, reason: str = "") -> None:
        entry = self.entry(name, str(version))
        entry.state, entry.reason = state, reason

    async def remove_model(self, name: str, version: int, timeout: float = 30.0) -> bool:
        """Unload one version: refuse new requests (UNLOADING), finish queued and running ones (up to
        ``timeout`` s), stop its instances and forget it. Returns False when the drain timed out."""
        entry = self.entry(name, str(version))
        entry.state, entry.reason = ModelState.UNLOADING, ""
        return await self._retire(entry, timeout)

    async def _retire(self, entry: Entry, timeout: float) -> bool:
        batcher: Batcher = entry.batcher
        try:
            await asyncio.wait_for(batcher.wait_idle(), timeout)
            drained = True
        except asyncio.TimeoutError:
            drained = False
        self.discard(entry)
        return drained

    def _unrecoverable(self, exc: BaseException) -> None:
        self.on_unrecoverable(exc)

    def entry(self, name: str, version: str = "") -> Entry:
        """The registry entry a request addresses (raises as ``model``)."""
        return self.registry.get(name, version)

    async def drain(self, timeout: float) -> bool:
        """Refuse new requests, then wait (up to ``timeout`` s) until queued and running ones finish."""
        self.accepting = False
        waits = [e.batcher.wait_idle() for e in self.registry.entries()]
        if not waits:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def stop_models(self) -> None:
        for entry in self.registry.entries():
            entry.state = ModelState.UNAVAILABLE
            entry.batcher.stop()
        self._shared_memory.close()  # regions are released at stop

    def join_instances(self, timeout: float) -> None:
        """Wait for the instance threads to end (any thread)."""
        deadline = time.monotonic() + timeout
        for instance in self._instances:
            instance.join(max(0.0, deadline - time.monotonic()))

    def instances_alive(self) -> bool:
        """Every instance thread is alive (any thread: reads the immutable tuple)."""
        return all(instance.is_alive() for instance in self._instances)

    # --- health and metadata (core.api.DataPlane) ------------------------------------------------------

    def live(self) -> bool:
        return self.alive

    def ready(self) -> bool:
        if not (self.alive and self.accepting):
            return False
        if not self.strict_readiness:  # Triton: ready while responsive, even with unavailable models
            return True
        entries = self.registry.entries()
        return all(e.state is ModelState.READY for e in entries) and not self.registry.has_failures()

    def models(self) -> List[ModelInfo]:
        return [e.info() for e in self.registry.entries()]

    def model(self, name: str, version: str = "") -> ModelInfo:
        return self.registry.get(name, version).info()

    def model_ready(self, name: str, version: str = "") -> bool:
        return self.registry.get(name, version).state is ModelState.READY and self.accepting

    def served_versions(self, name: str) -> Tuple[int, ...]:
        return tuple(e.model.version for e in self.registry.served(name))

    def statistics(self, name: Optional[str] = None, version: str = "") -> List[StatsSnapshot]:
        """Triton's selection: no name = every ready version of every model (``version`` ignored, as in
        Triton); a name = its ready versions, or the one named. Unknown or not-ready names and versions are
        INVALID_ARG ("requested model 'x' is not available" / "requested model version is not available for
        model 'x'"); an unparsable version keeps the registry's INVALID_ARG message."""
        if not name:
            entries = [e for e in self.registry.entries() if e.state is ModelState.READY]
        else:
            entries = [e for e in self.registry.entries() if e.model.name == name and e.state is ModelState.READY]
            if not entries:
                raise model_not_available(name)
            if version:
                try:
                    entry = self.registry.get(name, version)
                except ModelNotFoundError:
                    raise version_not_available(name) from None
                if entry.state is not ModelState.READY:
                    raise version_not_available(name)
                entries = [entry]
        return [self._snapshot(e) for e in entries]

    @staticmethod
    def _snapshot(entry: Entry) -> StatsSnapshot:
        model = entry.model
        snapshot = entry.stats.snapshot(
            model.name, model.version, model.max_batch_size, model.response_cache, entry.batcher.queued
        )
        if model.load_duration_s:
            snapshot = dataclasses.replace(snapshot, load_duration_s=model.load_duration_s)
        return snapshot

    def all_statistics(self) -> List[StatsSnapshot]:
        """Statistics of every registered version whatever its state (the metrics endpoint's view)."""
        return [self._snapshot(e) for e in self.registry.entries()]

    def custom_metric_families(self) -> List[CustomMetricFamily]:
        return self.custom_metrics() if self.custom_metrics is not None else []

    # --- trace and logging extensions (core.api.DataPlane) ----------------------------------------------

    def trace_setting(self, name: str = "", changes: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        if name:
            try:
                ready = self.registry.get(name).state is ModelState.READY
            except (ModelNotFoundError, InvalidArgumentError):
                ready = False
            if not ready:
                raise InvalidArgumentError(f"Request for unknown model : {name}")
        if changes is not None:
            self.trace.update(name, changes)
        return self.trace.view(name)

    def log_settings(self, changes: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        return self.log.update(changes) if changes else self.log.view()

    # --- model repository (core.api.DataPlane) ---------------------------------------------------------

    def repository_index(self, ready_only: bool = False) -> List[IndexEntry]:
        rows = [
            IndexEntry(info.name, info.version_str, info.state.value, info.reason)
            for info in self.models()
            if info.ready or not ready_only
        ]
        if not ready_only:
            records = self.registry.unavailable()
            rows += [
                IndexEntry(r.name, str(r.version) if r.version else "", ModelState.UNAVAILABLE.value, r.reason)
                for r in records
            ]
            if self.control is not None:
                listed = {row.name for row in rows}
                rows += [IndexEntry(name) for name in self.control.repository_names() if name not in listed]
        return sorted(rows, key=lambda row: (row.name, int(row.version or 0)))

    async def load_model(self, name: str, config_json: str = "", files: Optional[Mapping[str, bytes]] = None) -> None:
        if self.control is None:
            raise UnavailableError(MODEL_CONTROL_DISABLED)
        if files:
            await self.control.load(name, config_json, files)
        else:
            await self.control.load(name, config_json)

    async def unload_model(self, name: str, unload_dependents: bool = False) -> None:
        if self.control is None:
            raise UnavailableError(MODEL_CONTROL_DISABLED)
        await self.control.unload(name, unload_dependents)

    # --- inference -------------------------------------------------------------------------------------

    def _admit(self, request: InferenceRequest) -> Entry:
        entry = self.registry.get(request.model_name, request.model_version)
        if not self.accepting or entry.state is not ModelState.READY:
            raise UnavailableError(f"Server is not accepting requests: model '{entry.model.name}' is not ready")
        return entry

    async def infer(self, request: InferenceRequest, is_gone: Optional[IsGone] = None) -> InferenceResponse:
        """One request, one response. Cancelling the awaiting task drops the request if still queued; so does
        ``is_gone()`` turning True (a transport's probe for a disconnected client, checked at dispatch)."""
        entry = self._admit(request)
        model = entry.model
        if model.decoupled:
            raise DecoupledModelError(model.name)
        trace = self.trace.start(model.name, model.version_str, request.id) if self.trace.active else None
        callable_request, batch_size, key = model.prepare(request)
        stats = entry.stats
        cache_key = None
        if self.cache is not None and model.response_cache:
            started = time.monotonic_ns()
            cache_key = request_key(request)
            outputs = self.cache.get(cache_key)
            if outputs is not None:
                stats.record_cache_hit(time.monotonic_ns() - started)
                return InferenceResponse(model.name, model.version_str, outputs, id=request.id)
            stats.cache_miss.add(time.monotonic_ns() - started)
        future: asyncio.Future[InferenceResponse] = self.loop.create_future()
        item = Pending(callable_request, request, batch_size, key, future=future, is_gone=is_gone)
        entry.batcher.submit(item)
        response = await (future if trace is None else self.trace.follow(trace, item, future))
        if cache_key is not None and self.cache is not None:
            self.cache.put(cache_key, response.outputs)
        return response

    def submit(self, request: InferenceRequest, reply: Callable[[Any], None]) -> Optional[Pending]:
        """``infer`` without a coroutine or a future, for front-end workers' requests: admit, check and queue
        ``request``; ``reply`` is called on the loop with its response or exception once known (never for a
        cancelled one). Returns the queued item (``cancel()`` drops it). Raises as ``infer`` at admission.
        None when the request needs ``infer``'s whole path (tracing on, or a response cache)."""
        if self.trace.active or self.cache is not None:
            return None
        entry = self._admit(request)
        model = entry.model
        if model.decoupled:
            raise DecoupledModelError(model.name)
        callable_request, batch_size, key = model.prepare(request)
        item = Pending(callable_request, request, batch_size, key, reply=reply)
        entry.batcher.submit(item)
        return item

    async def infer_stream(self, request: InferenceRequest) -> AsyncGenerator[InferenceResponse, None]:
        """0..n responses for a decoupled model (exactly one otherwise); closing the iterator stops the model."""
        entry = self._admit(request)
        model = entry.model
        trace = self.trace.start(model.name, model.version_str, request.id) if self.trace.active else None
        callable_request, batch_size, key = model.prepare(request)
        batcher: Batcher = entry.batcher
        if not model.decoupled:
            future: asyncio.Future[InferenceResponse] = self.loop.create_future()
            single = Pending(callable_request, request, batch_size, key, future=future)
            batcher.submit(single)
            yield await (future if trace is None else self.trace.follow(trace, single, future))
            return
        stream = StreamOutcomes()
        item = Pending(callable_request, request, batch_size, key, stream=stream)
        batcher.submit(item)
        try:
            while True:
                outcome = await stream.get()
                if outcome is None:
                    return
                yield outcome
        finally:
            batcher.close_stream(item)
            if trace is not None:
                self.trace.complete(trace, item, None)


if TYPE_CHECKING:  # mypy proves that the implementation satisfies the seam's protocol

    def _implements(plane: InProcessDataPlane) -> DataPlane:
        return plane


__all__ = ["InProcessDataPlane", "model_not_available", "version_not_available"]
