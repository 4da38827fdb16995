"""A front-end worker process: ``python -m pytriton_lite.workers.process <index> <channel fd> <call fd>``.

Started by ``WorkerHub`` with two connected sockets. It waits for the BOOT message (the server's
``TritonConfig``, API keys, the reserved ports and the first model snapshot), serves HTTP and gRPC on those
ports with ``SO_REUSEPORT`` over a ``RemoteDataPlane``, says READY, and runs until STOP (finish what it
serves, then exit) or until the serving process is gone (exit at once). SIGINT is ignored: a terminal's
Ctrl+C reaches the whole process group, and the serving process decides when its workers stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
from typing import Any, List, Optional, Tuple

from pytriton_lite._gc import raise_young_threshold
from pytriton_lite.workers import wire
from pytriton_lite.workers.channel import BlockingCaller, Channel
from pytriton_lite.workers.remote import RemoteDataPlane

LOGGER = logging.getLogger("pytriton_lite.workers")


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.new_event_loop()


def _configure_logging(index: int, level: int) -> None:
    root = logging.getLogger("pytriton_lite")
    root.setLevel(level)
    if not logging.getLogger().handlers and not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        layout = f"%(asctime)s %(levelname)s frontend-worker-{index} %(name)s: %(message)s"
        handler.setFormatter(logging.Formatter(layout))
        root.addHandler(handler)


def share_limits(config: Any, workers: int) -> Any:
    """The config with the server-wide gRPC connection cap split between ``workers`` (rounded up): each worker
    counts only its own connections (HTTP's split is ``HttpLimits.from_triton_config``'s, which also keeps
    the server-wide figure for its refusal message)."""
    changes = {}
    for name in ("grpc_max_connections",):
        value = getattr(config, name, None)
        if value and workers > 1:
            changes[name] = -(-int(value) // workers)
    return dataclasses.replace(config, **changes) if changes else config


class _Worker:
    def __init__(self, index: int, channel_fd: int, call_fd: int) -> None:
        self.index = index
        self.channel_fd, self.call_fd = channel_fd, call_fd
        self.plane: Optional[RemoteDataPlane] = None
        self.frontends: List[Any] = []
        self.main_gone = False

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        boot: asyncio.Future = loop.create_future()
        stop = asyncio.Event()

        def on_message(message: Tuple[Any, ...]) -> None:
            kind = message[0]
            if kind == wire.BOOT:
                if not boot.done():
                    boot.set_result(message[1])
            elif kind == wire.STOP:
                stop.set()
            elif self.plane is not None:
                self.plane.on_message(message)

        def on_lost() -> None:
            self.main_gone = True
            if self.plane is not None:
                self.plane.connection_lost()
            if not boot.done():
                boot.cancel()
            stop.set()

        sock = socket.socket(fileno=self.channel_fd)
        _, channel = await loop.create_unix_connection(lambda: Channel(on_message, on_lost), sock=sock)
        try:
            settings = await boot
        except asyncio.CancelledError:
            return 1
        _configure_logging(self.index, settings["log_level"])
        call_sock = socket.socket(fileno=self.call_fd)
        call_sock.setblocking(True)
        self.plane = RemoteDataPlane(channel, BlockingCaller(call_sock), settings["snapshot"])
        await self._start(settings)
        channel.send((wire.READY, os.getpid()))
        await stop.wait()
        await self._stop(graceful=not self.main_gone)
        self.plane.close()
        channel.close()
        return 0

    async def _start(self, settings: Any) -> None:
        from pytriton_lite.frontends.grpc import GrpcFrontend
        from pytriton_lite.frontends.http import HttpFrontend

        assert self.plane is not None
        config = share_limits(settings["config"], settings["workers"])
        api_keys = settings["api_keys"]
        if settings["http_port"] is not None:
            http_config = dataclasses.replace(config, http_port=settings["http_port"])
            http = HttpFrontend.from_triton_config(self.plane, http_config, settings["workers"])
            http.reuse_port = True
            info = settings["status_info"]
            if info is not None:
                http.app.enable_status_page(self._status_page(info))
            self.frontends.append(http)
        if settings["grpc_port"] is not None:
            grpc_config = dataclasses.replace(config, grpc_port=settings["grpc_port"])
            grpc = GrpcFrontend.from_triton_config(self.plane, grpc_config)
            grpc.reuse_port = True
            self.frontends.append(grpc)
        for frontend in self.frontends:
            if api_keys is not None:
                frontend.require_api_keys(api_keys)
            await frontend.start()

    def _status_page(self, info: Any) -> Any:
        page: List[Any] = []

        def app() -> Any:
            if not page:
                from pytriton_lite.frontends.status import StatusPage

                assert self.plane is not None
                page.append(StatusPage(self.plane, lambda: info))
            return page[0]

        return app

    async def _stop(self, graceful: bool) -> None:
        from pytriton_lite.frontends.grpc import GrpcFrontend

        steps = []
        for frontend in self.frontends:
            if isinstance(frontend, GrpcFrontend):
                steps.append(frontend.stop(5.0 if graceful else None))
            else:
                steps.append(frontend.stop())
        if steps:
            await asyncio.gather(*steps, return_exceptions=True)


def preload() -> None:
    """Import what a worker runs (the zygote does this once, before it forks workers)."""
    import pytriton_lite.frontends.grpc
    import pytriton_lite.frontends.http  # noqa: F401

    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover
        pass


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    index, channel_fd, call_fd = (int(a) for a in args[:3])
    raise_young_threshold()  # a worker is pytriton_lite's own process (see _gc.py)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_Worker(index, channel_fd, call_fd).run())
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
