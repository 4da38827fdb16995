"""The HTTP front end's request object and response helpers over raw ASGI messages.

``_Request`` wraps one ASGI scope (headers scanned once, lazily; the body read once and counted against the
size limit as it streams); ``_respond*`` send complete responses with precomputed headers;
``_unless_client_leaves`` awaits work while watching for ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from pytriton_lite.exceptions import InferenceError
from pytriton_lite.frontends._http_limits import body_too_large
from pytriton_lite.protocol import http_codec

LOGGER = logging.getLogger("pytriton_lite.http")

_JSON = (b"content-type", b"application/json")
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")
_INFERENCE_HEADER = http_codec.INFERENCE_HEADER.encode()
Headers = Sequence[Tuple[bytes, bytes]]
T = TypeVar("T")


class _ClientGone(Exception):
    """The client closed the connection; nothing can be answered."""


class _Answer(InferenceError):
    """An error answer of the HTTP front end's own (404, 405, 403, ...)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, http_status=status)


class _Request:
    """What a handler needs from the ASGI scope; headers are scanned once, lazily."""

    __slots__ = ("scope", "receive", "send", "method", "started", "_headers")

    def __init__(self, scope: Dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self.started = False  # http.response.start is out: an error can no longer become a status
        self._headers: Optional[Dict[bytes, bytes]] = None

    async def start(self, status: int, headers: List[Tuple[bytes, bytes]]) -> None:
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def respond(self, status: int, headers: Headers, body: Sequence[bytes]) -> None:
        """A complete response: ``headers`` without Content-Length (added here), ``body`` as chunks. Under our
        protocol it is one write (``_http_protocol._Cycle.respond``); elsewhere, plain ASGI messages."""
        self.started = True
        respond = getattr(getattr(self.receive, "__self__", None), "respond", None)
        if respond is not None:
            await respond(status, headers, body)
            return
        length = str(sum(memoryview(chunk).nbytes for chunk in body)).encode()
        start = {"type": "http.response.start", "status": status, "headers": [*headers, (b"content-length", length)]}
        await self.send(start)
        for chunk in body[:-1]:
            await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
        await self.send({"type": "http.response.body", "body": body[-1] if body else b""})

    def header(self, name: bytes) -> Optional[str]:
        if self._headers is None:
            self._headers = dict(self.scope["headers"])
        value = self._headers.get(name)
        return None if value is None else value.decode("latin-1")

    async def body(self, limit: Optional[int] = None) -> bytes:
        """The whole body; over ``limit`` bytes a 413 (the protocol refuses earlier; this guards any server)."""
        message = await self.receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone()
        body = message.get("body", b"")
        if not message.get("more_body", False):
            _check_size(len(body), limit)
            return body
        chunks = [body]
        size = len(body)
        while True:
            _check_size(size, limit)
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                _check_size(size, limit)
                return b"".join(chunks)

    @property
    def gone(self) -> bool:
        """The client closed the connection (uvicorn's request cycle says so; False when it cannot tell)."""
        cycle = getattr(self.receive, "__self__", None)
        return getattr(cycle, "disconnected", False) is True


def _check_size(size: int, limit: Optional[int]) -> None:
    if limit is not None and size > limit:
        raise _Answer(body_too_large(size, limit), 413)


async def _respond(request: _Request, status: int, body: bytes = b"", headers: Headers = (_JSON,)) -> None:
    await request.respond(status, headers, (body,))


async def _respond_json(request: _Request, data: Any) -> None:
    await _respond(request, 200, http_codec.dumps_json(data))


async def _respond_empty(request: _Request, status: int = 200) -> None:
    await request.respond(status, (), ())


class _DisconnectWatch:
    """Waits for ``http.disconnect`` after the body was read and cancels the handler task when it comes."""

    __slots__ = ("gone", "_task", "_watcher", "_label")

    def __init__(self, receive: Callable[[], Awaitable[Any]], label: str) -> None:
        self.gone = False
        self._label = label
        self._task = asyncio.current_task()
        self._watcher = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Callable[[], Awaitable[Any]]) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
        self.gone = True
        if self._task is not None:
            self._task.cancel()
        LOGGER.debug("Client disconnected; cancelled its %s", self._label)

    def stop(self) -> None:
        self._watcher.cancel()

    def absorb(self) -> bool:
        """Inside ``except CancelledError``: True when the cancellation was ours (the client left)."""
        if not self.gone:
            return False
        task = self._task
        if task is not None and hasattr(task, "uncancel"):
            task.uncancel()
        return True


async def _unless_client_leaves(receive: Callable[[], Awaitable[Any]], label: str, work: Awaitable[T]) -> Optional[T]:
    """Await ``work`` while watching for ``http.disconnect``; None when the client left (``work`` cancelled)."""
    watch = _DisconnectWatch(receive, label)
    try:
        return await work
    except asyncio.CancelledError:
        if watch.absorb():
            return None
        raise
    finally:
        watch.stop()
