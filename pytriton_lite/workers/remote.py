"""``RemoteDataPlane``: the ``core.api.DataPlane`` a front-end worker's HTTP and gRPC front ends hold.

Inference goes to the serving process over the worker's channel, many requests in flight at once; the model
lookup every request starts with (``model``) is answered from the snapshot the serving process pushes whenever
its models change, so the hot path makes one round trip. A name the snapshot lacks is asked for (a model bound
a moment ago is found; an unknown one gets the serving process's own error). Rare calls (statistics, the
repository index, trace and log settings, readiness, shared-memory registration) block this worker's loop
for one round trip over its second socket (``BlockingCaller``).

A request whose client leaves is cancelled in the serving process: gRPC cancels the awaiting task, and HTTP's
``is_gone`` probes are polled every ``GONE_POLL_S`` while such requests are in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncGenerator, Dict, List, Mapping, Optional, Tuple

from pytriton_lite.core.api import IndexEntry, IsGone
from pytriton_lite.core.shm import RegionNotFoundError, SystemSharedMemory, _Region
from pytriton_lite.exceptions import UnavailableError
from pytriton_lite.types import CustomMetricFamily, InferenceRequest, InferenceResponse, ModelInfo, StatsSnapshot
from pytriton_lite.workers import wire
from pytriton_lite.workers.channel import BlockingCaller, Channel

LOGGER = logging.getLogger("pytriton_lite.workers")

GONE_POLL_S = 0.02
STREAM_WINDOW = 32  # stream items the serving process may send ahead of the client


@dataclass(frozen=True)
class Snapshot:
    """What the serving process tells its workers about its models (and its shared-memory regions)."""

    generation: int
    server_id: str
    control_enabled: bool
    models: Tuple[ModelInfo, ...]
    resolved: Dict[Tuple[str, str], ModelInfo]  # (name, version or "") -> the version a request gets
    served: Dict[str, Tuple[int, ...]]
    regions: Tuple[Tuple[str, str, int, int], ...] = ()  # shared-memory regions: name, key, offset, size
    extra: Dict[str, Any] = field(default_factory=dict)


class WorkerSharedMemory(SystemSharedMemory):
    """The serving process's region registry, mapped in this worker: registration is made there (its checks
    and errors) and here; a region registered through another worker is looked up there on first use."""

    def __init__(self, caller: BlockingCaller) -> None:
        super().__init__()
        self._caller = caller
        self.cuda = None  # CUDA IPC regions are served with frontend_workers=0 only (docs/scaling.md)

    def register(self, name: str, key: str, offset: int, byte_size: int) -> None:
        self._caller.call("shm_register", name, key, offset, byte_size)
        self._map(name, key, offset, byte_size)

    def _map(self, name: str, key: str, offset: int, byte_size: int) -> None:
        super().unregister(name)  # a stale mapping of the same name
        try:
            super().register(name, key, offset, byte_size)
        except Exception:
            LOGGER.debug("region %r could not be mapped in this worker", name, exc_info=True)

    def unregister(self, name: Optional[str] = None) -> None:
        self._caller.call("shm_unregister", name)
        super().unregister(name)

    def status(self, name: Optional[str] = None) -> List[Dict[str, Any]]:
        result: List[Dict[str, Any]] = self._caller.call("shm_status", name)
        return result

    def _region(self, name: str) -> _Region:
        region = self._regions.get(name)
        if region is not None:
            return region
        try:
            rows = self._caller.call("shm_status", name)
        except RegionNotFoundError:
            rows = []
        if rows:
            row = rows[0]
            self._lock.release()  # view/write hold it; registering takes it again
            try:
                self._map(row["name"], row["key"], row["offset"], row["byte_size"])
            finally:
                self._lock.acquire()
        return super()._region(name)

    def reconcile(self, regions: Tuple[Tuple[str, str, int, int], ...]) -> None:
        """Forget the regions the serving process no longer has (unregistered through another worker)."""
        wanted = {r[0]: r for r in regions}
        for name, region in list(self._regions.items()):
            if wanted.get(name) != (region.name, region.key, region.offset, region.byte_size):
                SystemSharedMemory.unregister(self, name)


class _Stream:
    __slots__ = ("queue", "consumed")

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.consumed = 0


class RemoteDataPlane:
    """The serving process's data plane, as seen from a front-end worker."""

    def __init__(self, channel: Channel, caller: BlockingCaller, snapshot: Snapshot) -> None:
        self._channel = channel
        self._caller = caller
        self._snapshot = snapshot
        self._ids = itertools.count(1)
        self._calls: Dict[int, asyncio.Future] = {}
        self._streams: Dict[int, _Stream] = {}
        self._watched: Dict[int, IsGone] = {}
        self._watcher: Optional[asyncio.Task] = None
        self._shm = WorkerSharedMemory(caller)
        self._shm.reconcile(snapshot.regions)
        self.lost = False

    # --- messages from the serving process -----------------------------------------------------------------

    def on_message(self, message: Tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == wire.OK:
            future = self._calls.pop(message[1], None)
            if future is not None and not future.done():
                future.set_result(message[2])
        elif kind == wire.ERR:
            call_id = message[1]
            future = self._calls.pop(call_id, None)
            if future is not None and not future.done():
                future.set_exception(wire.unpack_error(message[2]))
            stream = self._streams.get(call_id)
            if stream is not None:
                stream.queue.put_nowait(wire.unpack_error(message[2]))
        elif kind == wire.ITEM:
            stream = self._streams.get(message[1])
            if stream is not None:
                stream.queue.put_nowait(wire.unpack_response(message[2]))
        elif kind == wire.END:
            stream = self._streams.get(message[1])
            if stream is not None:
                stream.queue.put_nowait(None)
        elif kind == wire.SNAPSHOT:
            self.apply(message[2])
            self._channel.send((wire.ACK, message[1]))

    def apply(self, snapshot: Snapshot) -> None:
        if snapshot.generation >= self._snapshot.generation:
            self._snapshot = snapshot
            self._shm.reconcile(snapshot.regions)

    def close(self) -> None:
        """The worker is stopping: its gone-client poll ends."""
        if self._watcher is not None:
            self._watcher.cancel()

    def connection_lost(self) -> None:
        """The serving process is gone: every call in flight fails."""
        self.lost = True
        error = UnavailableError("the serving process is gone")
        for future in self._calls.values():
            if not future.done():
                future.set_exception(error)
        self._calls.clear()
        for stream in self._streams.values():
            stream.queue.put_nowait(error)

    # --- the DataPlane protocol ------------------------------------------------------------------------------

    @property
    def server_id(self) -> str:
        return self._snapshot.server_id

    @property
    def model_control_enabled(self) -> bool:
        return self._snapshot.control_enabled

    @property
    def shared_memory(self) -> SystemSharedMemory:
        return self._shm

    def live(self) -> bool:
        return not self.lost and bool(self._caller.call("live"))

    def ready(self) -> bool:
        return not self.lost and bool(self._caller.call("ready"))

    def models(self) -> List[ModelInfo]:
        return list(self._snapshot.models)

    def model(self, name: str, version: str = "") -> ModelInfo:
        info = self._snapshot.resolved.get((name, version))
        if info is not None:
            return info
        found: ModelInfo = self._caller.call("model", name, version)  # raises the serving process's error
        return found

    def model_ready(self, name: str, version: str = "") -> bool:
        return bool(self._caller.call("model_ready", name, version))

    def served_versions(self, name: str) -> Tuple[int, ...]:
        versions = self._snapshot.served.get(name)
        if versions is None:
            versions = tuple(self._caller.call("served_versions", name))
        return versions

    def statistics(self, name: Optional[str] = None, version: str = "") -> List[StatsSnapshot]:
        result: List[StatsSnapshot] = self._caller.call("statistics", name, version)
        return result

    def all_statistics(self) -> List[StatsSnapshot]:
        result: List[StatsSnapshot] = self._caller.call("all_statistics")
        return result

    def custom_metric_families(self) -> List[CustomMetricFamily]:
        result: List[CustomMetricFamily] = self._caller.call("custom_metric_families")
        return result

    def repository_index(self, ready_only: bool = False) -> List[IndexEntry]:
        result: List[IndexEntry] = self._caller.call("repository_index", ready_only)
        return result

    def trace_setting(self, name: str = "", changes: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        result: Dict[str, Any] = self._caller.call("trace_setting", name, dict(changes) if changes else changes)
        return result

    def log_settings(self, changes: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        result: Dict[str, Any] = self._caller.call("log_settings", dict(changes) if changes else changes)
        return result

    async def _call(self, method: str, *args: Any) -> Any:
        if self.lost:
            raise UnavailableError("the serving process is gone")
        call_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        self._channel.send((wire.CALL, call_id, method, args))
        return await future

    async def load_model(self, name: str, config_json: str = "", files: Optional[Mapping[str, bytes]] = None) -> None:
        await self._call("load_model", name, config_json, dict(files) if files else None)

    async def unload_model(self, name: str, unload_dependents: bool = False) -> None:
        await self._call("unload_model", name, unload_dependents)

    async def remove_model(self, name: str, version: int, timeout: float = 30.0) -> bool:
        return bool(await self._call("remove_model", name, version, timeout))

    async def infer(self, request: InferenceRequest, is_gone: Optional[IsGone] = None) -> InferenceResponse:
        if self.lost:
            raise UnavailableError("the serving process is gone")
        call_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        self._channel.send((wire.INFER, call_id, wire.pack_request(request)))
        if is_gone is not None:
            self._watch(call_id, is_gone)
        try:
            packed = await future
        except asyncio.CancelledError:
            self._cancel(call_id)
            raise
        finally:
            self._watched.pop(call_id, None)
        return wire.unpack_response(packed)

    def _cancel(self, call_id: int) -> None:
        self._calls.pop(call_id, None)
        self._channel.send((wire.CANCEL, call_id))

    def _watch(self, call_id: int, is_gone: IsGone) -> None:
        self._watched[call_id] = is_gone
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._poll_gone())

    async def _poll_gone(self) -> None:
        while self._watched:
            await asyncio.sleep(GONE_POLL_S)
            for call_id, is_gone in list(self._watched.items()):
                if is_gone():
                    del self._watched[call_id]
                    future = self._calls.get(call_id)
                    self._cancel(call_id)
                    if future is not None and not future.done():
                        future.cancel()

    async def infer_stream(self, request: InferenceRequest) -> AsyncGenerator[InferenceResponse, None]:
        if self.lost:
            raise UnavailableError("the serving process is gone")
        call_id = next(self._ids)
        stream = _Stream()
        self._streams[call_id] = stream
        self._channel.send((wire.STREAM, call_id, wire.pack_request(request), STREAM_WINDOW))
        finished = False
        try:
            while True:
                item = await stream.queue.get()
                if item is None:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                stream.consumed += 1
                if stream.consumed >= STREAM_WINDOW // 2:
                    self._channel.send((wire.CREDIT, call_id, stream.consumed))
                    stream.consumed = 0
                yield item
        finally:
            del self._streams[call_id]
            if not finished:
                self._channel.send((wire.CANCEL, call_id))


__all__ = ["RemoteDataPlane", "Snapshot", "WorkerSharedMemory"]
