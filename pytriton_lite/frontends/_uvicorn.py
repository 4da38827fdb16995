"""One embedded uvicorn server, shared by the HTTP and metrics front ends.

``EmbeddedServer`` binds its own socket first (a busy port fails before anything runs; port 0 picks a free
one), then drives ``uvicorn.Server`` step by step on the running loop: ``config.load()``,
``config.lifespan_class``, ``startup(sockets=...)``, a ``main_loop`` of its own and a prompt ``shutdown``.
``serve()`` is never called, so uvicorn never touches signal handlers; the owner starts and stops it.

uvicorn polls ``should_exit`` every 0.1 s and sleeps another 0.1 s while shutting down; a test suite that
starts and stops servers per test pays that every time. Here ``stop`` wakes the main loop at once and
shutdown polls the open connections every few milliseconds instead.

The uvicorn internals used here (``Server.startup/main_loop/on_tick/shutdown``, ``server_state.connections``
and ``.tasks``, ``servers``, ``Config.load`` and ``lifespan_class``, the protocols' ``shutdown()`` and
``transport``) are pinned by ``tests/unit/test_uvicorn_pin.py`` and by the upper bound in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
from typing import Any, List, Optional

import uvicorn

from pytriton_lite.frontends._http_limits import HttpLimits, default_max_connections
from pytriton_lite.frontends._http_protocol import bound_protocol

LOGGER = logging.getLogger("pytriton_lite.uvicorn")

DEFAULT_GRACEFUL_SHUTDOWN_S = 5
_STOP_MARGIN_S = 5.0  # beyond the graceful period, before a stop gives up waiting
_SHUTDOWN_POLL_S = 0.005
_UVICORN_KEEP_ALIVE_S = 5.0  # uvicorn's own default, for a server that names none

# Every embedded server: no lifespan, no logging set-up, no access log, no Server header.
_COMMON_OPTIONS = {
    "interface": "asgi3",
    "lifespan": "off",
    "log_config": None,  # leave the application's logging alone
    "log_level": None,  # nor uvicorn's logger levels
    "access_log": False,
    "server_header": False,
}


def bind(host: str, port: int, backlog: int, reuse_port: bool = False) -> socket.socket:
    """A listening, non-blocking socket; port 0 picks a free one; a busy port raises OSError(EADDRINUSE).

    ``reuse_port``: SO_REUSEPORT, for front-end workers that share a port their serving process reserved."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform != "win32":
            # lets a restarted server reuse a port in TIME_WAIT; never lets two listeners share it on POSIX
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _OwnedServer(uvicorn.Server):
    """``uvicorn.Server`` run by its owner: an exit that wakes at once and a shutdown that polls quickly."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        # uvicorn's per-second bookkeeping (default headers) runs once, then once a second only when the
        # Date header needs refreshing; nothing else here ticks.
        await self.on_tick(0)
        tick = 1.0 if self.config.date_header else None
        while not self._exit.is_set():
            try:
                await asyncio.wait_for(self._exit.wait(), tick)
            except asyncio.TimeoutError:
                await self.on_tick(0)

    async def shutdown(self, sockets: Optional[List[socket.socket]] = None) -> None:
        state = getattr(self, "server_state", None)
        servers = getattr(self, "servers", None)
        if state is None or servers is None or not hasattr(state, "connections"):
            await super().shutdown(sockets=sockets)  # an uvicorn we do not know: its own (slower) way
            return
        for server in servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(state.connections):
            connection.shutdown()  # idle keep-alive connections close now; busy ones after their response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.timeout_graceful_shutdown or DEFAULT_GRACEFUL_SHUTDOWN_S)
        while (state.connections or state.tasks) and loop.time() < deadline:
            await asyncio.sleep(_SHUTDOWN_POLL_S)
        for task in list(state.tasks):
            task.cancel()
        for connection in list(state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
        if not self.force_exit:
            await self.lifespan.shutdown()


class EmbeddedServer:
    """An ASGI app served by uvicorn on the running loop; ``start``/``stop`` run on that loop.

    ``options`` are further ``uvicorn.Config`` arguments (``ws``, ``date_header``, ``ssl_*``...). Connections
    are served by ``_http_protocol.HardenedHttpProtocol`` under ``limits`` (defaults: ``HttpLimits`` with a
    connection cap from the open-file limit; a ``timeout_keep_alive`` option sets its idle deadline).
    """

    def __init__(
        self,
        app: Any,
        *,
        label: str,
        host: str,
        port: int,
        backlog: int = 2048,
        graceful_shutdown_s: int = DEFAULT_GRACEFUL_SHUTDOWN_S,
        limits: Optional[HttpLimits] = None,
        **options: Any,
    ) -> None:
        if limits is None:
            keep_alive = options.get("timeout_keep_alive")
            keep_alive_s = float(keep_alive) if keep_alive else _UVICORN_KEEP_ALIVE_S
            limits = HttpLimits(keepalive_timeout_s=keep_alive_s, max_connections=default_max_connections())
        self.limits = limits
        options = {**options, "timeout_keep_alive": limits.keepalive_timeout_s}
        options.setdefault("http", bound_protocol(limits))
        self.app = app
        self.label = label
        self.host = host
        self.requested_port = int(port)
        self.backlog = int(backlog)
        self.graceful_shutdown_s = int(graceful_shutdown_s)
        self.options = {**_COMMON_OPTIONS, **options}
        self.port: Optional[int] = None
        self.server: Optional[_OwnedServer] = None
        self._socket: Optional[socket.socket] = None
        self._main: Optional[asyncio.Task] = None
        self.reuse_port = False  # front-end workers listen on one port together (workers/hub.py reserves it)

    def _bind(self) -> socket.socket:
        try:
            return bind(self.host, self.requested_port, self.backlog, self.reuse_port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                where = f"{self.host}:{self.requested_port}"
                raise OSError(errno.EADDRINUSE, f"{self.label} address {where} is in use") from exc
            raise

    async def start(self) -> int:
        """Bind, then serve; returns the bound port. A busy port raises OSError before anything runs."""
        sock = self._bind()
        port = int(sock.getsockname()[1])
        try:
            config = uvicorn.Config(
                self.app,
                host=self.host,
                port=port,
                backlog=self.backlog,
                timeout_graceful_shutdown=self.graceful_shutdown_s,
                **self.options,
            )
            server = _OwnedServer(config)
            config.load()
            server.lifespan = config.lifespan_class(config)
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        self.server, self._socket, self.port = server, sock, port
        self._main = asyncio.get_running_loop().create_task(server.main_loop())
        LOGGER.debug("%s front end listening on %s:%s", self.label, self.host, port)
        return port

    async def stop(self) -> None:
        """Stop accepting; running requests get ``graceful_shutdown_s``, then their connections close."""
        server, main, sock = self.server, self._main, self._socket
        self.server = self._main = self._socket = None
        if server is None or main is None:
            return
        server.request_exit()
        try:
            await asyncio.wait_for(self._finish(server, main, sock), self.graceful_shutdown_s + _STOP_MARGIN_S)
        except asyncio.TimeoutError:
            server.force_exit = True
            LOGGER.warning("%s front end did not stop in time; its connections were dropped", self.label)
        except Exception:  # stopping must not raise
            LOGGER.exception("%s front end stopped with an error", self.label)
        finally:
            if sock is not None:
                sock.close()

    @staticmethod
    async def _finish(server: _OwnedServer, main: asyncio.Task, sock: Optional[socket.socket]) -> None:
        await asyncio.gather(main, return_exceptions=True)  # the main loop only waits; it does not fail
        await server.shutdown(sockets=[sock] if sock is not None else None)


__all__ = ["EmbeddedServer", "bind", "DEFAULT_GRACEFUL_SHUTDOWN_S"]
