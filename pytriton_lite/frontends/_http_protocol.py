"""uvicorn's httptools protocol with the limits of ``_http_limits.HttpLimits`` enforced per connection.

uvicorn alone arms its keep-alive timer only after a response, so a connection that never sends a byte,
or sends its head one byte a second, stays open for ever; it parses a head of any size; it reads a body of
any length; and once a body over 64 KiB has been read it stops reading the socket, so a client that leaves
is never noticed. ``HardenedHttpProtocol`` adds, before the application sees a request:

- an idle deadline from accept (and, as uvicorn, between requests): the connection is closed;
- a head deadline from a request's first byte, and a body deadline from the end of its head: 408;
- a connection cap per server: a connection beyond it gets 503 at once and is closed;
- a head-size cap (431), a ``Content-Length`` over the body limit refused before any body byte is read and
  a chunked body cut as it streams at the limit (413); ``Transfer-Encoding`` other than a single final
  ``chunked`` refused (400 when the framing is ambiguous, 501 for a coding it does not implement), and
  ``Content-Length`` together with ``Transfer-Encoding`` refused with 400 (RFC 9112 section 6.3 allows
  refusing; refusing closes the request-smuggling door);
- reading resumes once a request's body is complete, so a client that leaves mid-request is seen at once.

Each request cycle also offers ``respond`` (``_Cycle``): a complete response in one ``write``, used by the
front end for its own answers (``_http_request._Request.respond``); streamed responses go through ASGI.

Every refusal is a complete ``{"error": ...}`` response with ``connection: close``; the connection then
lingers briefly, discarding what the client still sends, so that the client reads the answer instead of a
reset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, List, Optional, Sequence, Tuple

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from pytriton_lite.frontends._http_limits import HttpLimits, body_too_large, refusal

LOGGER = logging.getLogger("pytriton_lite.http")

_LINGER_S = 1.0  # a refused connection reads and drops what the client still sends, then closes
_IDLE, _HEAD, _BODY = 0, 1, 2  # where the parser is within the current request


class HardenedHttpProtocol(HttpToolsProtocol):
    """One HTTP/1.1 connection; ``limits`` is set per server by ``bound_protocol``."""

    limits: HttpLimits = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _IDLE
        self._head_bytes = 0
        self._body_bytes = 0
        self._deadline: Optional[asyncio.TimerHandle] = None
        self._refused = False
        self._has_cycle = False  # the application runs (or ran) the current request

    # --- connection ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self.limits
        if len(self.connections) > limits.max_connections:
            _log_refusal(limits.max_connections)
            limit = limits.announced_connections or limits.max_connections
            message = f"the server has reached its limit of {limit} open connections; retry later"
            self._refuse(503, message, linger_s=0.25)
            return
        # uvicorn arms this only after a response: a client that never sends a byte would stay for ever
        self.timeout_keep_alive_task = self.loop.call_later(limits.keepalive_timeout_s, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: the answer is out, the rest is dropped unparsed
        in_head = self._phase == _HEAD
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            return  # as uvicorn without websockets: the request went to the application, the rest is ignored
        except httptools.HttpParserError as exc:
            if not self._refused:
                self._refuse(400, f"invalid HTTP request: {_parser_text(exc)}")
            return
        if self._refused:
            return
        if self._phase == _HEAD:
            # httptools gathers a header line internally until it ends: bound it per read, not per line
            if in_head:
                self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_size:
                self._refuse(
                    431, f"request head exceeds the maximum allowed size of {self.limits.max_header_size} bytes"
                )
            elif self._deadline is None:
                self._arm(self.limits.header_timeout_s, "request head")
        elif self._phase == _BODY and self._deadline is None:
            self._arm(self.limits.body_timeout_s, "request body")

    # --- parser callbacks ----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._refused:
            return
        self._phase = _HEAD
        self._has_cycle = False
        self._head_bytes = 0
        self._body_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._phase = _BODY
        self._cancel_deadline()
        problem = self._check_head()
        if problem is not None:
            self._refuse(*problem)
            return
        super().on_headers_complete()
        self._has_cycle = True
        self.cycle.__class__ = _Cycle  # uvicorn builds its own class; ours only adds respond()
        if not self.parser.should_keep_alive():
            self.cycle.keep_alive = False  # a request's Connection: close (uvicorn < 0.40 ignores it)

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        limit = self.limits.max_body_size
        if limit is not None and self._body_bytes > limit:
            self._refuse(413, body_too_large(None, limit))
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._phase = _IDLE
        self._cancel_deadline()
        super().on_message_complete()
        # uvicorn pauses reading above 64 KiB of unread body and resumes only in receive(), which the
        # application no longer calls once it has the whole body: without this a client's close goes unseen
        if not self.pipeline and self.flow is not None:
            self.flow.resume_reading()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg)

    # --- checks and refusals -------------------------------------------------------------------------

    def _check_head(self) -> Optional[tuple]:
        limits = self.limits
        size = len(self.url)
        codings: List[bytes] = []
        length: Optional[bytes] = None
        for name, value in self.headers:
            size += len(name) + len(value) + 4
            if name == b"transfer-encoding":
                codings.extend(c.strip().lower() for c in value.split(b","))
            elif name == b"content-length":
                length = value
        if size > limits.max_header_size:
            return 431, f"request head exceeds the maximum allowed size of {limits.max_header_size} bytes"
        if codings:
            if length is not None:
                return 400, "a request must not have both Content-Length and Transfer-Encoding"
            if codings.count(b"chunked") != 1 or codings[-1] != b"chunked":
                return 400, "Transfer-Encoding must end with chunked, applied once"
            if len(codings) > 1:
                return 501, f"Transfer-Encoding {codings[0].decode('latin-1')!r} is not supported; only chunked is"
        if length is not None and limits.max_body_size is not None:
            try:
                declared = int(length)
            except ValueError:
                return 400, "invalid Content-Length"
            if declared > limits.max_body_size:
                return 413, body_too_large(declared, limits.max_body_size)
        return None

    def _refuse(self, status: int, message: str, *, linger_s: float = _LINGER_S) -> None:
        """Answer ``status`` (when no response of the application is under way) and close after a linger."""
        self._refused = True
        self._cancel_deadline()
        self._unset_keepalive_if_required()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        cycle = self.cycle if self._has_cycle else None
        if cycle is None or not cycle.response_started:  # else the client has (part of) an answer already
            if status >= 500 or status == 408:
                LOGGER.info("HTTP request refused with %d: %s", status, message)
            transport.write(refusal(status, message))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's receive() sees http.disconnect; its sends are dropped
            cycle.keep_alive = False
            cycle.message_event.set()
        if transport.can_write_eof():
            transport.write_eof()
        if self.flow is not None:
            self.flow.resume_reading()  # drain what the client still sends, so that it reads our answer
        self.loop.call_later(linger_s, transport.close)

    def _arm(self, seconds: float, what: str) -> None:
        self._deadline = self.loop.call_later(seconds, self._expired, what, seconds)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, what: str, seconds: float) -> None:
        self._deadline = None
        if not self._refused:
            self._refuse(408, f"{what} not received within {seconds:g} s")


_JOIN_MAX = 64 * 1024  # bodies up to this size go out in the same write as the head


class _Cycle(RequestResponseCycle):
    """uvicorn's request cycle plus ``respond``: a complete response with a ``Content-Length`` in one write.

    uvicorn's ``send`` writes the head on ``http.response.start`` (checking every header against its
    regular expressions) and the body on ``http.response.body``: two syscalls and two passes through the
    ASGI message checks. The front end's own responses have known-good headers and the whole body at hand.
    """

    async def respond(self, status: int, headers: Sequence[Tuple[bytes, bytes]], body: Sequence[bytes]) -> None:
        """Write status, ``headers`` (without Content-Length, which is added) and ``body`` (chunks) at once."""
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return  # as uvicorn: a response to a client that left is dropped
        if self.response_started:
            raise RuntimeError("respond() after the response was started")
        self.response_started = True
        self.waiting_for_100_continue = False
        length = sum(memoryview(chunk).nbytes for chunk in body)
        parts: List[Any] = [STATUS_LINE[status]]
        for name, value in self.default_headers:
            parts += (name, b": ", value, b"\r\n")
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"content-length: %d\r\n\r\n" % length)
        write = self.transport.write
        if self.scope["method"] == "HEAD":
            write(b"".join(parts))
        elif length <= _JOIN_MAX:
            parts += body
            write(b"".join(parts))
        else:  # a large body: the copy into one buffer would cost more than the syscalls it saves
            write(b"".join(parts))
            for chunk in body:
                write(chunk)
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()


_refusals = [0.0, 0]  # (when last logged, refusals since): a flood of refusals is logged every 10 s at most


def _log_refusal(limit: int) -> None:
    now = time.monotonic()
    _refusals[1] += 1
    if now - _refusals[0] >= 10.0:
        LOGGER.warning("HTTP: %d connection(s) refused at the limit of %d open connections", _refusals[1], limit)
        _refusals[0], _refusals[1] = now, 0


def _parser_text(exc: Exception) -> str:
    if isinstance(exc, httptools.HttpParserCallbackError) and exc.__context__ is not None:
        return "internal error"
    return str(exc) or type(exc).__name__


def bound_protocol(limits: HttpLimits) -> type:
    """A ``HardenedHttpProtocol`` class for one server (uvicorn instantiates the class it is given)."""
    return type("HardenedHttpProtocol", (HardenedHttpProtocol,), {"limits": limits})


__all__ = ["HardenedHttpProtocol", "bound_protocol"]
