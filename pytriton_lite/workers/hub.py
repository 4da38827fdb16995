"""The serving process's side of front-end workers: start them, serve their calls, keep them told, stop them.

``WorkerHub`` reserves the HTTP and gRPC ports (a bound, non-listening ``SO_REUSEPORT`` socket each, so port 0
picks one port for every worker and a busy port fails here), starts ``count`` processes of
``python -m pytriton_lite.workers.process`` with a socketpair pair each, and answers what they send on the
serving loop with the in-process data plane: inference (one task per request, cancelled when the worker says
its client left), streams (with a credit window so a slow client holds back only its own stream), and calls.

Workers learn the models from a ``Snapshot`` pushed whenever the registry changes (a cheap fingerprint is
compared every ``WATCH_S``) and, with acknowledgements awaited, before a load or unload answers, so a model
loaded through one worker is served by every worker once the load returns.

A worker that exits is logged and started again (at most ``MAX_RESTARTS_PER_MINUTE``); the workers exit when
this process does, because their channel closes (no orphans even after SIGKILL).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import errno
import functools
import logging
import os
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

import pytriton_lite
from pytriton_lite.core.dataplane import InProcessDataPlane
from pytriton_lite.exceptions import PyTritonError
from pytriton_lite.workers import wire
from pytriton_lite.workers.channel import Channel
from pytriton_lite.workers.remote import Snapshot
from pytriton_lite.workers.zygote import Zygote

LOGGER = logging.getLogger("pytriton_lite.workers")

WATCH_S = 0.05
SYNC_TIMEOUT_S = 5.0
START_TIMEOUT_S = 60.0
MAX_RESTARTS_PER_MINUTE = 10

_SYNC_CALLS = {
    "live": lambda dp: dp.live,
    "ready": lambda dp: dp.ready,
    "model": lambda dp: dp.model,
    "model_ready": lambda dp: dp.model_ready,
    "served_versions": lambda dp: dp.served_versions,
    "statistics": lambda dp: dp.statistics,
    "all_statistics": lambda dp: dp.all_statistics,
    "custom_metric_families": lambda dp: dp.custom_metric_families,
    "repository_index": lambda dp: dp.repository_index,
    "trace_setting": lambda dp: dp.trace_setting,
    "log_settings": lambda dp: dp.log_settings,
    "shm_register": lambda dp: dp.shared_memory.register,
    "shm_unregister": lambda dp: dp.shared_memory.unregister,
    "shm_status": lambda dp: dp.shared_memory.status,
}
_ASYNC_CALLS = {
    "load_model": lambda dp: dp.load_model,
    "unload_model": lambda dp: dp.unload_model,
    "remove_model": lambda dp: dp.remove_model,
}
_CHANGES_SHM = {"shm_register", "shm_unregister"}


def reserve_port(host: str, port: int, label: str) -> socket.socket:
    """A bound, non-listening SO_REUSEPORT socket holding ``port`` (0: a free one) for the workers' listeners."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(errno.EADDRINUSE, f"{label} address {host}:{port} is in use") from exc
        raise
    return sock


@dataclasses.dataclass
class _StreamState:
    credit: int
    more: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class _Worker:
    """One worker process and its two channels, as the serving process sees them."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: Any = None  # subprocess.Popen, or zygote.ForkedProcess
        self.channel: Optional[Channel] = None
        self.sync_channel: Optional[Channel] = None
        self.tasks: Dict[int, Any] = {}  # call id -> its asyncio task
        self.streams: Dict[int, _StreamState] = {}
        self.acked = 0
        self.ready: Optional[asyncio.Future] = None
        self.lost = False

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None


class WorkerHub:
    """``count`` front-end worker processes serving HTTP and gRPC for ``dataplane``."""

    def __init__(
        self,
        dataplane: InProcessDataPlane,
        config: Any,
        count: int,
        *,
        api_keys: Any = None,
        status_info: Optional[Callable[[], Dict[str, Any]]] = None,
        http: bool = True,
        grpc: bool = True,
    ) -> None:
        self.dataplane = dataplane
        self.config = config
        self.count = int(count)
        self.api_keys = api_keys
        self.status_info = status_info
        self.http, self.grpc = http, grpc
        self.http_port: Optional[int] = None
        self.grpc_port: Optional[int] = None
        self.workers: List[_Worker] = []
        self.restarts = 0
        self._recent_restarts: Deque[float] = collections.deque()
        self._reserved: List[socket.socket] = []
        self._generation = 0
        self._fingerprint: Any = None
        self._watcher: Optional[asyncio.Task] = None
        self.stopping = False
        self._acked = asyncio.Event()
        self._background: set = set()
        self._zygote: Optional[Zygote] = None

    # --- start and stop -------------------------------------------------------------------------------

    async def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Reserve the ports, start every worker and wait until each serves; PyTritonError if one cannot."""
        cfg, busy = self.config, []
        for kind, label, wanted, address, default in (
            ("http", "HTTP", self.http, cfg.http_address, 8000),
            ("grpc", "gRPC", self.grpc, cfg.grpc_address, 8001),
        ):
            if not wanted:
                continue
            port = _port(getattr(cfg, f"{kind}_port"), default)
            try:
                sock = reserve_port(address or "0.0.0.0", port, label)
            except OSError as exc:
                busy.append(f"{kind} port {port} ({exc.strerror or exc})")
                continue
            self._reserved.append(sock)
            setattr(self, f"{kind}_port", int(sock.getsockname()[1]))
        if busy:
            self._release_ports()
            raise PyTritonError("Cannot start the server: " + "; ".join(busy))
        self._fingerprint = self._current_fingerprint()
        self._generation += 1
        self.workers = [_Worker(i) for i in range(self.count)]
        if hasattr(os, "fork") and hasattr(socket, "send_fds"):
            self._zygote = Zygote(self._child_env())
            self._zygote.start()
        try:
            await asyncio.gather(*(self._spawn(w) for w in self.workers))
            await asyncio.wait_for(asyncio.gather(*(self._until_ready(w) for w in self.workers)), timeout)
        except BaseException:
            await self.stop(0.5)
            raise
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _until_ready(self, worker: _Worker) -> None:
        assert worker.ready is not None
        await worker.ready

    @staticmethod
    def _child_env() -> Dict[str, str]:
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(pytriton_lite.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
        return env

    async def _spawn(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        main_async, child_async = socket.socketpair()
        main_sync, child_sync = socket.socketpair()
        fds = (child_async.fileno(), child_sync.fileno())
        proc: Any = None
        try:
            zygote = self._zygote
            if zygote is not None and zygote.alive:  # a fork of a process that imported everything: fast
                try:
                    proc = await loop.run_in_executor(None, zygote.spawn, worker.index, fds)
                except OSError:
                    LOGGER.warning("front-end worker zygote failed; starting worker %d afresh", worker.index)
            if proc is None:
                command = [sys.executable, "-m", "pytriton_lite.workers.process", str(worker.index), *map(str, fds)]
                proc = subprocess.Popen(command, pass_fds=fds, env=self._child_env(), stdin=subprocess.DEVNULL)
            worker.proc = proc
        finally:
            child_async.close()
            child_sync.close()
        worker.lost = False
        worker.acked = 0
        worker.ready = loop.create_future()
        on_lost = functools.partial(self._on_lost, worker)
        _, worker.channel = await loop.create_unix_connection(
            lambda: Channel(functools.partial(self._on_message, worker), on_lost), sock=main_async
        )
        _, worker.sync_channel = await loop.create_unix_connection(
            lambda: Channel(functools.partial(self._on_sync_message, worker), lambda: None), sock=main_sync
        )
        worker.channel.send((wire.BOOT, self._boot(worker)))

    def _boot(self, worker: _Worker) -> Dict[str, Any]:
        return {
            "config": self.config,
            "api_keys": self.api_keys,
            "workers": self.count,
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "snapshot": self._snapshot(),
            "status_info": self._status(),
            "log_level": logging.getLogger("pytriton_lite").getEffectiveLevel(),
        }

    def _status(self) -> Optional[Dict[str, Any]]:
        if self.status_info is None:
            return None
        info = dict(self.status_info())
        info.update(http_port=self.http_port, grpc_port=self.grpc_port)
        return info

    async def stop(self, timeout: float) -> None:
        """Workers stop accepting and finish what they serve (up to ``timeout`` s), then exit; stragglers are
        killed. The ports are released."""
        self.stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
        for worker in self.workers:
            if worker.channel is not None and not worker.channel.closed:
                worker.channel.send((wire.STOP,))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for worker in self.workers:
            proc = worker.proc
            if proc is None:
                continue
            while proc.poll() is None and loop.time() < deadline:
                await asyncio.sleep(0.01)
            if proc.poll() is None:
                LOGGER.warning("front-end worker %d (pid %d) did not stop in time; killing it", worker.index, proc.pid)
                proc.kill()
                await loop.run_in_executor(None, proc.wait)
            for channel in (worker.channel, worker.sync_channel):
                if channel is not None:
                    channel.close()
            for task in list(worker.tasks.values()):
                task.cancel()
        self._release_ports()
        if self._zygote is not None:
            zygote, self._zygote = self._zygote, None
            await loop.run_in_executor(None, zygote.close)

    def _release_ports(self) -> None:
        for sock in self._reserved:
            sock.close()
        self._reserved = []

    # --- a worker's death -----------------------------------------------------------------------------

    def _on_lost(self, worker: _Worker) -> None:
        worker.lost = True
        for task in list(worker.tasks.values()):
            task.cancel()
        worker.tasks.clear()
        worker.streams.clear()
        if worker.sync_channel is not None:
            worker.sync_channel.close()
        if not self.stopping:
            self._spawn_in_background(self._restart(worker))

    def _spawn_in_background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _restart(self, worker: _Worker) -> None:
        proc = worker.proc
        code = await asyncio.get_running_loop().run_in_executor(None, _wait, proc)
        if worker.ready is not None and not worker.ready.done():
            worker.ready.set_exception(
                PyTritonError(f"front-end worker {worker.index} exited with code {code} before it was ready")
            )
            return
        if self.stopping:
            return
        now = time.monotonic()
        while self._recent_restarts and now - self._recent_restarts[0] > 60:
            self._recent_restarts.popleft()
        if len(self._recent_restarts) >= MAX_RESTARTS_PER_MINUTE:
            LOGGER.error(
                "front-end worker %d (pid %s) exited with code %s; not restarted: %d restarts in the last minute",
                worker.index,
                worker.pid,
                code,
                len(self._recent_restarts),
            )
            return
        self._recent_restarts.append(now)
        LOGGER.error("front-end worker %d (pid %s) exited with code %s; restarting it", worker.index, worker.pid, code)
        self.restarts += 1
        await self._spawn(worker)
        try:
            await asyncio.wait_for(self._until_ready(worker), START_TIMEOUT_S)
        except Exception:
            LOGGER.exception("front-end worker %d could not be restarted", worker.index)
            return
        LOGGER.info("front-end worker %d restarted (pid %s)", worker.index, worker.pid)

    # --- what workers send ----------------------------------------------------------------------------

    def _on_message(self, worker: _Worker, message: Tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == wire.INFER:
            call_id = message[1]
            request = wire.unpack_request(message[2])
            try:  # the outcome is handed to _reply by the batcher: no task, future or loop callback per request
                pending: Any = self.dataplane.submit(request, functools.partial(self._reply, worker, call_id))
            except Exception as exc:  # noqa: BLE001 - refused at admission: answered to the worker
                self._reply(worker, call_id, exc)
                return
            if pending is None:  # tracing or a response cache: infer's whole path, in a task
                pending = asyncio.ensure_future(self.dataplane.infer(request))
                pending.add_done_callback(functools.partial(self._infer_done, worker, call_id))
            elif pending.closed:  # answered while it was queued (a timeout of a few microseconds)
                return
            worker.tasks[call_id] = pending
        elif kind == wire.CANCEL:
            task = worker.tasks.pop(message[1], None)
            if task is not None:
                task.cancel()
        elif kind == wire.STREAM:
            call_id, packed, window = message[1], message[2], message[3]
            state = _StreamState(window)
            worker.streams[call_id] = state
            worker.tasks[call_id] = asyncio.ensure_future(self._stream(worker, call_id, packed, state))
        elif kind == wire.CREDIT:
            credited = worker.streams.get(message[1])
            if credited is not None:
                credited.credit += message[2]
                credited.more.set()
        elif kind == wire.CALL:
            self._spawn_in_background(self._call(worker, worker.channel, message[1], message[2], message[3]))
        elif kind == wire.ACK:
            worker.acked = max(worker.acked, message[1])
            self._acked.set()
        elif kind == wire.READY:
            LOGGER.debug("front-end worker %d ready (pid %s)", worker.index, message[1])
            if worker.ready is not None and not worker.ready.done():
                worker.ready.set_result(None)

    def _on_sync_message(self, worker: _Worker, message: Tuple[Any, ...]) -> None:
        if message[0] == wire.CALL:
            self._answer(worker.sync_channel, message[1], message[2], message[3])

    def _infer_done(self, worker: _Worker, call_id: int, task: asyncio.Future) -> None:
        if worker.tasks.get(call_id) is not task:
            return  # cancelled by the worker, or its process is gone (a restarted one counts ids afresh)
        if not task.cancelled():
            self._reply(worker, call_id, task.exception() or task.result())

    def _reply(self, worker: _Worker, call_id: int, outcome: Any) -> None:
        """Answer one request: its response or its exception (called by the batcher, on the loop)."""
        worker.tasks.pop(call_id, None)
        channel = worker.channel
        if channel is None or channel.closed:
            return
        try:
            if isinstance(outcome, BaseException):
                message = (wire.ERR, call_id, wire.pack_error(outcome))
            else:
                message = (wire.OK, call_id, wire.pack_response(outcome))
        except Exception as exc:
            LOGGER.exception("Could not pack the answer to a front-end worker's request")
            message = (wire.ERR, call_id, wire.pack_error(exc))
        channel.send(message)

    async def _stream(self, worker: _Worker, call_id: int, packed: Tuple[Any, ...], state: _StreamState) -> None:
        channel = worker.channel
        assert channel is not None
        stream = self.dataplane.infer_stream(wire.unpack_request(packed))
        try:
            async for item in stream:
                while state.credit <= 0:
                    state.more.clear()
                    await state.more.wait()
                state.credit -= 1
                channel.send((wire.ITEM, call_id, wire.pack_response(item)))
            channel.send((wire.END, call_id))
        except asyncio.CancelledError:
            pass  # the client left: closing the stream below stops the model's generator
        except Exception as exc:  # noqa: BLE001 - answered to the worker, which answers its client
            channel.send((wire.ERR, call_id, wire.pack_error(exc)))
        finally:
            await stream.aclose()
            if worker.streams.get(call_id) is state:  # not a restarted process's stream of the same id
                worker.streams.pop(call_id, None)
                worker.tasks.pop(call_id, None)

    def _answer(self, channel: Optional[Channel], call_id: int, method: str, args: Tuple[Any, ...]) -> None:
        if channel is None:
            return
        getter = _SYNC_CALLS.get(method)
        if getter is None:
            self._spawn_in_background(self._call(None, channel, call_id, method, args))
            return
        try:
            value = getter(self.dataplane)(*args)
        except Exception as exc:  # noqa: BLE001 - the caller raises it
            channel.send((wire.ERR, call_id, wire.pack_error(exc)))
            return
        channel.send((wire.OK, call_id, value))
        if method in _CHANGES_SHM:
            self.publish()

    async def _call(
        self, worker: Optional[_Worker], channel: Optional[Channel], call_id: int, method: str, args: Tuple[Any, ...]
    ) -> None:
        if channel is None:
            return
        if method in _SYNC_CALLS:
            self._answer(channel, call_id, method, args)
            return
        getter = _ASYNC_CALLS.get(method)
        try:
            if getter is None:
                raise PyTritonError(f"unknown data plane call {method!r}")
            value = await getter(self.dataplane)(*args)
            await self.sync()  # every worker knows the change before the caller hears of it
        except Exception as exc:  # noqa: BLE001 - the caller raises it
            channel.send((wire.ERR, call_id, wire.pack_error(exc)))
            return
        channel.send((wire.OK, call_id, value))

    # --- snapshots ------------------------------------------------------------------------------------

    def _current_fingerprint(self) -> Any:
        dp = self.dataplane
        entries = tuple((e.model.name, e.model.version, e.state, e.reason, id(e)) for e in dp.registry.entries())
        regions = tuple((r["name"], r["key"], r["offset"], r["byte_size"]) for r in dp.shared_memory.status(None))
        return entries, regions, dp.model_control_enabled

    def _snapshot(self) -> Snapshot:
        dp = self.dataplane
        models = tuple(dp.models())
        resolved = {}
        names = sorted({m.name for m in models})
        for name in names:
            for version in ["", *(m.version_str for m in models if m.name == name)]:
                try:
                    info = dp.model(name, version)
                except Exception:  # noqa: BLE001 - not resolvable now: the worker asks when it is needed
                    continue
                if info.ready:  # LOADING/UNLOADING ones are asked for on use: the same answers as in-process
                    resolved[(name, version)] = info
        regions = tuple((r["name"], r["key"], r["offset"], r["byte_size"]) for r in dp.shared_memory.status(None))
        return Snapshot(
            generation=self._generation,
            server_id=dp.server_id,
            control_enabled=dp.model_control_enabled,
            models=models,
            resolved=resolved,
            served={name: dp.served_versions(name) for name in names},
            regions=regions,
        )

    def publish(self) -> int:
        """Push the current snapshot to every worker; returns its generation."""
        self._fingerprint = self._current_fingerprint()
        self._generation += 1
        snapshot = self._snapshot()
        for worker in self.workers:
            if worker.channel is not None and not worker.channel.closed:
                worker.channel.send((wire.SNAPSHOT, self._generation, snapshot))
        return self._generation

    async def sync(self, timeout: float = SYNC_TIMEOUT_S) -> None:
        """Publish, then wait until every running worker has applied it (or ``timeout``)."""
        generation = self.publish()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            waiting = [w for w in self.workers if not w.lost and w.channel is not None and w.acked < generation]
            if not waiting:
                return
            self._acked.clear()
            try:
                await asyncio.wait_for(self._acked.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                break
        LOGGER.warning("front-end workers did not confirm model changes within %.1f s", timeout)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            try:
                if self._current_fingerprint() != self._fingerprint:
                    self.publish()
            except Exception:
                LOGGER.exception("Error while telling front-end workers about model changes")

    def pids(self) -> List[int]:
        """The process ids of the workers that serve now (a replacement counts once it listens)."""
        return [w.pid for w in self.workers if w.pid is not None and not w.lost and _serving(w.ready)]


def _serving(ready: Optional[asyncio.Future]) -> bool:
    return ready is not None and ready.done() and not ready.cancelled() and ready.exception() is None


def _port(port: Optional[int], default: int) -> int:
    return default if port is None else int(port)


def _wait(proc: Any) -> Optional[int]:
    if proc is None:
        return None
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


__all__ = ["WorkerHub", "reserve_port"]
