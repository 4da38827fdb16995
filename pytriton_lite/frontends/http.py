"""HTTP front end: Triton's v2 REST protocol as an ASGI app served by uvicorn on the serving loop.

Routing follows Triton's dispatch order (protocol.md section 0.2) with one precompiled regex for the model
routes. It is a plain ASGI callable rather than a starlette app: starlette's router and middleware cost
about 20 us per request (26 us vs 7 us measured in-process), and the regex mirrors Triton exactly
(``/v2/models/stats`` before the model regex, numeric versions only). Requests are read once; responses
are sent as raw ASGI messages with precomputed headers. Wire formats live in ``protocol.http_codec`` and
``protocol.generate_codec``.

Errors: ``InferenceError`` -> its ``http_status`` and ``{"error": msg}``; anything else -> 500 with the
exception text, logged once. A client that disconnects mid-request cancels the data plane call (a queued
request is dropped; a stream's model generator is closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import socket
import sys
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import uvicorn

from pytriton_lite.core.api import DataPlane
from pytriton_lite.exceptions import (
    InvalidArgumentError,
    PyTritonError,
    UnavailableError,
    UnsupportedError,
)
from pytriton_lite.protocol import generate_codec, http_codec, model_json, stats_json

LOGGER = logging.getLogger("pytriton_lite.http")

DECOUPLED_ON_INFER = "HTTP end point doesn't support models with decoupled transaction policy"
GENERATE_ONE_RESPONSE = (
    "generate expects model to produce exactly 1 response, use generate stream for model that generates "
    "various number of responses"
)
SHM_DISABLED = "Client shared memory is disabled. Start the server with '--allow-client-shm=true' to enable."
MODEL_CONTROL_DISABLED = "explicit model load / unload is not allowed if polling is enabled"
RESTRICTED_HEADER_HINT = "This API is restricted, expecting header '{}'"
DEFAULT_KEEP_ALIVE_S = 75  # tritonclient and perf_analyzer keep pooled connections open for long
DEFAULT_GRACEFUL_SHUTDOWN_S = 5

# Triton's API groups (--http-restricted-api) and the routes in each.
API_GROUPS = (
    "health",
    "metadata",
    "inference",
    "shared-memory",
    "model-config",
    "model-repository",
    "statistics",
    "trace",
    "logging",
)

_MODEL_ROUTE = re.compile(
    r"/v2/models/([^/]+)(?:/versions/([0-9]+))?(?:/(infer|generate|generate_stream|ready|config|stats|trace/setting))?"
)
_REPOSITORY_ROUTE = re.compile(r"/v2/repository(?:/([^/]+))?/(?:index|models/([^/]+)/(load|unload))")
_SHM_ROUTE = re.compile(r"/v2/(systemsharedmemory|cudasharedmemory)(?:/region/([^/]+))?/(status|register|unregister)")

_JSON = (b"content-type", b"application/json")
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")
_EMPTY_LENGTH = (b"content-length", b"0")
_ACCEPT_ENCODING = (b"accept-encoding", b"gzip, deflate")
_INFERENCE_HEADER = http_codec.INFERENCE_HEADER.encode()
_NOT_FOUND = http_codec.encode_error("Not Found")
_METHOD_NOT_ALLOWED = http_codec.encode_error("Method Not Allowed")


class _ClientGone(Exception):
    """The client closed the connection; nothing can be answered."""


def _parse_restricted_api(spec: Any) -> Dict[str, Tuple[bytes, bytes]]:
    """Triton's ``--http-restricted-api``: ``"<api>[,<api>...]:<header>=<value>"`` -> {api: (header, value)}."""
    if not spec:
        return {}
    items = [spec] if isinstance(spec, str) else list(spec)
    restricted: Dict[str, Tuple[bytes, bytes]] = {}
    for item in items:
        for part in str(item).split(";"):
            if not part.strip():
                continue
            apis, sep, pair = part.rpartition(":")
            key, eq, value = pair.partition("=")
            if not sep or not eq or not key.strip():
                raise PyTritonError(f"Invalid http restricted api specification: {part!r}")
            for api in apis.split(","):
                api = api.strip()
                if api not in API_GROUPS:
                    raise PyTritonError(f"Unknown API group {api!r} in http restricted api {part!r}")
                restricted[api] = (key.strip().lower().encode("latin-1"), value.strip().encode("latin-1"))
    return restricted


class _Request:
    """What a handler needs from the ASGI scope; headers are scanned once, lazily."""

    __slots__ = ("scope", "receive", "send", "method", "_headers")

    def __init__(self, scope: Dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self._headers: Optional[Dict[bytes, bytes]] = None

    def header(self, name: bytes) -> Optional[str]:
        if self._headers is None:
            self._headers = dict(self.scope["headers"])
        value = self._headers.get(name)
        return None if value is None else value.decode("latin-1")

    async def body(self) -> bytes:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone()
        body = message.get("body", b"")
        if not message.get("more_body", False):
            return body
        chunks = [body]
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _respond(
    send: Any, status: int, body: bytes = b"", headers: Sequence[Tuple[bytes, bytes]] = (_JSON,)
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _respond_json(send: Any, data: Any, status: int = 200) -> None:
    await _respond(send, status, http_codec.dumps_json(data))


async def _respond_empty(send: Any, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [_EMPTY_LENGTH]})
    await send({"type": "http.response.body", "body": b""})


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


class HttpApp:
    """The ASGI application: v2 routes over a ``core.dataplane.DataPlane``."""

    def __init__(
        self,
        dataplane: DataPlane,
        *,
        header_forward_pattern: Optional[str] = None,
        restricted_api: Any = None,
        max_input_size: Optional[int] = http_codec.DEFAULT_MAX_INPUT_SIZE,
    ) -> None:
        self.dataplane = dataplane
        self.max_input_size = max_input_size
        self._forward = re.compile(header_forward_pattern, re.IGNORECASE) if header_forward_pattern else None
        self._forward_cache: Dict[bytes, Optional[str]] = {}
        self._restricted = _parse_restricted_api(restricted_api)
        self._model_actions = {
            None: ("GET", "metadata", self._model_metadata),
            "ready": ("GET", "health", self._model_ready),
            "config": ("GET", "model-config", self._model_config),
            "stats": ("GET", "statistics", self._model_stats),
            "infer": ("POST", "inference", self._infer),
            "generate": ("POST", "inference", self._generate),
            "generate_stream": ("POST", "inference", self._generate_stream),
        }
        self._exact = {
            "/v2/models/stats": ("GET", "statistics", self._all_stats),
            "/v2": ("GET", "metadata", self._server_metadata),
            "/v2/health/live": ("GET", "health", self._live),
            "/v2/health/ready": ("GET", "health", self._ready),
        }

    # --- dispatch ------------------------------------------------------------------------------------

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]  # PyTriton prints its routes with a trailing slash
        request = _Request(scope, receive, send)
        try:
            await self._dispatch(path, request)
        except _ClientGone:
            return
        except PyTritonError as exc:  # InferenceError and kin: each knows its status
            await self._error(request, exc)
        except Exception as exc:  # noqa: BLE001 - one bad request must not take the server down
            LOGGER.exception("Unexpected error while serving %s %s", request.method, path)
            await _respond(send, 500, http_codec.encode_error(f"{type(exc).__name__}: {exc}"))

    async def _error(self, request: _Request, exc: PyTritonError) -> None:
        status = int(getattr(exc, "http_status", 500))
        headers: Tuple[Tuple[bytes, bytes], ...] = (_JSON,)
        if isinstance(exc, UnsupportedError) and str(exc) == http_codec.UNSUPPORTED_COMPRESSION:
            headers = (_JSON, _ACCEPT_ENCODING)
        await _respond(request.send, status, http_codec.encode_error(str(exc)), headers)

    async def _dispatch(self, path: str, request: _Request) -> None:
        route = self._exact.get(path)
        if route is not None:
            method, group, handler = route
            if await self._allowed(request, method, group):
                await handler(request)
            return
        match = _MODEL_ROUTE.fullmatch(path)
        if match is not None:
            name, version, action = match.groups()
            route = self._model_actions.get(action)
            if route is None:  # trace/setting: the trace extension is not offered
                await _respond(request.send, 404, _NOT_FOUND)
                return
            method, group, handler = route
            if await self._allowed(request, method, group):
                await handler(request, name, version or "")
            return
        match = _REPOSITORY_ROUTE.fullmatch(path)
        if match is not None:
            if await self._allowed(request, "POST", "model-repository"):
                await self._repository(request, *match.groups())
            return
        match = _SHM_ROUTE.fullmatch(path)
        if match is not None:
            kind, region, action = match.groups()
            if await self._allowed(request, "GET" if action == "status" else "POST", "shared-memory"):
                await self._shared_memory(request, kind, region, action)
            return
        await _respond(request.send, 404, _NOT_FOUND)

    async def _allowed(self, request: _Request, method: str, group: str) -> bool:
        if request.method != method:
            await _respond(request.send, 405, _METHOD_NOT_ALLOWED)
            return False
        if self._restricted:
            rule = self._restricted.get(group)
            if rule is not None and request.header(rule[0]) != rule[1].decode("latin-1"):
                message = RESTRICTED_HEADER_HINT.format(rule[0].decode("latin-1"))
                await _respond(request.send, 403, http_codec.encode_error(message))
                return False
        return True

    def _forwarded(self, request: _Request, parameters: Dict[str, Any]) -> None:
        """Copy headers whose name matches the forward pattern (searched, like Triton) into parameters."""
        cache = self._forward_cache
        for raw_name, raw_value in request.scope["headers"]:
            name = cache.get(raw_name, "")
            if name == "":
                text = raw_name.decode("latin-1")
                name = text if self._forward.search(text) else None  # type: ignore[union-attr]
                if len(cache) < 1024:  # header names are few; bound it against header-name spraying
                    cache[raw_name] = name
            if name is not None and name not in parameters:
                parameters[name] = raw_value.decode("latin-1")

    # --- health and metadata -------------------------------------------------------------------------

    async def _live(self, request: _Request) -> None:
        await _respond_empty(request.send, 200 if self.dataplane.live() else 400)

    async def _ready(self, request: _Request) -> None:
        await _respond_empty(request.send, 200 if self.dataplane.ready() else 400)

    async def _server_metadata(self, request: _Request) -> None:
        await _respond_json(request.send, model_json.server_metadata(self.dataplane.server_id))

    async def _model_ready(self, request: _Request, name: str, version: str) -> None:
        if self.dataplane.model_ready(name, version):
            await _respond_empty(request.send)
        else:
            await _respond(request.send, 400, http_codec.encode_error("Model version not ready"))

    async def _model_metadata(self, request: _Request, name: str, version: str) -> None:
        model = self.dataplane.model(name, version)
        versions = [model.version] if version else list(self.dataplane.served_versions(name)) or [model.version]
        await _respond_json(request.send, model_json.model_metadata(model, versions))

    async def _model_config(self, request: _Request, name: str, version: str) -> None:
        model = self.dataplane.model(name, version)
        await _respond_json(request.send, model_json.model_config_dict(model))

    async def _all_stats(self, request: _Request) -> None:
        await self._stats(request, None, "")

    async def _model_stats(self, request: _Request, name: str, version: str) -> None:
        await self._stats(request, name, version)

    async def _stats(self, request: _Request, name: Optional[str], version: str) -> None:
        snapshots = self.dataplane.statistics(name, version)
        await _respond_json(request.send, stats_json.statistics_json(snapshots))

    async def _repository(
        self, request: _Request, repository: Optional[str], model: Optional[str], action: Optional[str]
    ) -> None:
        if repository is not None:
            raise UnsupportedError("'repository_name' specification is not supported")
        if action is not None:  # load / unload: models are bound in code, never loaded from a repository
            raise UnavailableError(MODEL_CONTROL_DISABLED)
        body = await request.body()
        ready_only = False
        if body.strip():
            try:
                document = http_codec.loads_json(body)
            except (ValueError, RecursionError):
                raise InvalidArgumentError("Invalid value for 'ready': expected a boolean") from None
            if not isinstance(document, dict):
                raise InvalidArgumentError("Invalid value for 'ready': expected a boolean")
            ready = document.get("ready", False)
            if not isinstance(ready, bool):
                raise InvalidArgumentError("Invalid value for 'ready': expected a boolean")
            ready_only = ready
        models = [m for m in self.dataplane.models() if m.ready or not ready_only]
        await _respond_json(request.send, model_json.repository_index(models))

    async def _shared_memory(self, request: _Request, kind: str, region: Optional[str], action: str) -> None:
        if action != "status":
            raise UnsupportedError(SHM_DISABLED)
        if region is None:
            await _respond_json(request.send, [])
            return
        label = "system" if kind == "systemsharedmemory" else "cuda"
        await _respond(
            request.send, 404, http_codec.encode_error(f"Unable to find {label} shared memory region: '{region}'")
        )

    # --- inference -----------------------------------------------------------------------------------

    async def _infer(self, request: _Request, name: str, version: str) -> None:
        model = self.dataplane.model(name, version)  # 404 before the body is read, as Triton
        if model.decoupled:
            raise UnsupportedError(DECOUPLED_ON_INFER)
        encoding = request.header(b"content-encoding")
        if encoding is not None and encoding.strip().lower() not in http_codec.SUPPORTED_REQUEST_ENCODINGS:
            raise UnsupportedError(http_codec.UNSUPPORTED_COMPRESSION)
        body = await request.body()
        infer_request, options = http_codec.decode_infer_request(
            body,
            model_name=name,
            model_version=version,
            header_length=request.header(_INFERENCE_HEADER),
            content_encoding=encoding,
            model=model,
            max_input_size=self.max_input_size,
        )
        if self._forward is not None:
            self._forwarded(request, infer_request.parameters)
        # uvicorn's request cycle flags a lost connection: polling that flag when the batcher dispatches drops
        # requests of departed clients without a watcher task per request (~5 % of the loop's time at c=32)
        cycle = getattr(request.receive, "__self__", None)
        if cycle is not None and isinstance(getattr(cycle, "disconnected", None), bool):
            response = await self.dataplane.infer(infer_request, is_gone=lambda: cycle.disconnected)
        else:
            watch = _DisconnectWatch(request.receive, f"infer request for model '{name}'")
            try:
                response = await self.dataplane.infer(infer_request)
            except asyncio.CancelledError:
                if watch.absorb():
                    return
                raise
            finally:
                watch.stop()
        encoded = http_codec.encode_infer_response(
            response, options, accept_encoding=request.header(b"accept-encoding")
        )
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in encoded.headers.items()]
        headers.append((b"content-length", str(encoded.content_length).encode()))
        send = request.send
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        chunks = encoded.chunks
        for chunk in chunks[:-1]:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": chunks[-1] if chunks else b""})

    async def _generate_request(self, request: _Request, name: str, version: str) -> Any:
        model = self.dataplane.model(name, version)
        body = await request.body()
        generate_request = generate_codec.decode_generate_request(
            body,
            model=model,
            model_name=name,
            model_version=version,
            content_encoding=request.header(b"content-encoding"),
            max_input_size=self.max_input_size,
        )
        if self._forward is not None:
            self._forwarded(request, generate_request.parameters)
        return generate_request

    async def _generate(self, request: _Request, name: str, version: str) -> None:
        generate_request = await self._generate_request(request, name, version)
        watch = _DisconnectWatch(request.receive, f"generate request for model '{name}'")
        responses: List[Any] = []
        stream = self.dataplane.infer_stream(generate_request)
        try:
            async for response in stream:
                responses.append(response)
                if len(responses) > 1:
                    break
        except asyncio.CancelledError:
            if watch.absorb():
                return
            raise
        finally:
            watch.stop()
            await stream.aclose()
        if len(responses) != 1:
            raise InvalidArgumentError(GENERATE_ONE_RESPONSE)
        await _respond(request.send, 200, generate_codec.encode_generate_response(responses[0]))

    async def _generate_stream(self, request: _Request, name: str, version: str) -> None:
        generate_request = await self._generate_request(request, name, version)
        send = request.send
        watch = _DisconnectWatch(request.receive, f"generate_stream request for model '{name}'")
        stream = self.dataplane.infer_stream(generate_request).__aiter__()
        started = False
        try:
            try:
                first = await stream.__anext__()
            except StopAsyncIteration:
                first = None
            # The first response decides the status; later errors travel in-stream under the 200.
            payload = generate_codec.encode_generate_response(first) if first is not None else b""
            await send({"type": "http.response.start", "status": 200, "headers": [_SSE]})
            started = True
            if first is not None:
                await send({"type": "http.response.body", "body": generate_codec.sse_event(payload), "more_body": True})
                try:
                    async for response in stream:
                        event = generate_codec.sse_event(generate_codec.encode_generate_response(response))
                        await send({"type": "http.response.body", "body": event, "more_body": True})
                except PyTritonError as exc:
                    event = generate_codec.sse_error_event(str(exc))
                    await send({"type": "http.response.body", "body": event, "more_body": True})
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - reported in-stream; the server keeps serving
                    LOGGER.exception("Unexpected error in generate_stream of model '%s'", name)
                    event = generate_codec.sse_error_event(f"{type(exc).__name__}: {exc}")
                    await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except asyncio.CancelledError:
            if watch.absorb():
                return
            raise
        except Exception:
            if started:  # headers are out: the error cannot become a status any more
                LOGGER.exception("generate_stream of model '%s' failed after the response started", name)
                return
            raise
        finally:
            watch.stop()
            await stream.aclose()  # type: ignore[attr-defined]


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket; port 0 picks a free one; a busy port raises OSError(EADDRINUSE)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform != "win32":
            # lets a restarted server reuse a port in TIME_WAIT; never lets two listeners share it on POSIX
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class HttpFrontend:
    """Owns the uvicorn server; ``start``/``stop`` run on the serving loop."""

    def __init__(
        self,
        dataplane: DataPlane,
        *,
        host: str = "0.0.0.0",
        port: int = 8000,
        header_forward_pattern: Optional[str] = None,
        restricted_api: Any = None,
        max_input_size: Optional[int] = http_codec.DEFAULT_MAX_INPUT_SIZE,
        keep_alive_s: int = DEFAULT_KEEP_ALIVE_S,
        graceful_shutdown_s: int = DEFAULT_GRACEFUL_SHUTDOWN_S,
        backlog: int = 2048,
    ) -> None:
        self.dataplane = dataplane
        self.host = host or "0.0.0.0"
        self.requested_port = int(port)
        self.port: Optional[int] = None
        self.app = HttpApp(
            dataplane,
            header_forward_pattern=header_forward_pattern,
            restricted_api=restricted_api,
            max_input_size=max_input_size,
        )
        self.keep_alive_s = int(keep_alive_s)
        self.graceful_shutdown_s = int(graceful_shutdown_s)
        self.backlog = int(backlog)
        self._server: Any = None
        self._task: Optional[asyncio.Task] = None

    @classmethod
    def from_triton_config(cls, dataplane: DataPlane, config: Any) -> HttpFrontend:
        """Build from a ``TritonConfig`` (read with getattr; unset fields keep Triton's defaults)."""

        def get(name: str, default: Any = None) -> Any:
            value = getattr(config, name, None)
            return default if value is None else value

        return cls(
            dataplane,
            host=get("http_address", "0.0.0.0"),
            port=get("http_port", 8000),
            header_forward_pattern=get("http_header_forward_pattern"),
            restricted_api=get("http_restricted_api"),
        )

    async def start(self) -> None:
        """Bind, then serve on the running loop; a busy port raises OSError before anything runs."""
        try:
            sock = _bind(self.host, self.requested_port, self.backlog)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(errno.EADDRINUSE, f"HTTP address {self.host}:{self.requested_port} is in use") from exc
            raise
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            lifespan="off",
            access_log=False,
            log_config=None,
            ws="none",
            interface="asgi3",
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=self.keep_alive_s,
            timeout_graceful_shutdown=self.graceful_shutdown_s,
            backlog=self.backlog,
        )
        server = _QuietServer(config)
        self._server = server
        self._task = asyncio.ensure_future(server.serve(sockets=[sock]))
        deadline = asyncio.get_running_loop().time() + 30.0
        while not server.started:  # startup only wires the already-bound socket: a few loop turns
            if self._task.done():
                sock.close()
                self._task.result()
                raise RuntimeError("uvicorn stopped during start-up")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("uvicorn did not start within 30 s")
            await asyncio.sleep(0.001)
        LOGGER.debug("HTTP front end listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop accepting; let running requests finish (up to ``graceful_shutdown_s``), then close."""
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.request_exit()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.graceful_shutdown_s + 5)
        except asyncio.TimeoutError:
            server.force_exit = True
            task.cancel()
        except Exception:  # noqa: BLE001 - stopping must not raise
            LOGGER.exception("HTTP front end stopped with an error")


class _QuietServer(uvicorn.Server):
    """uvicorn.Server run by its owner: no signal handling, and a prompt exit.

    uvicorn polls ``should_exit`` every 0.1 s and sleeps another 0.1 s while shutting down; a test suite that
    starts and stops a server per test pays that every time. Here ``request_exit`` wakes the main loop at
    once and shutdown polls the open connections every few milliseconds instead.
    """

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # the spelling of uvicorn < 0.29
        return None

    async def main_loop(self) -> None:
        await self.on_tick(0)  # uvicorn's per-second bookkeeping (default headers) once; nothing here ticks
        await self._exit.wait()

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
            await asyncio.sleep(0.005)
        for task in list(state.tasks):
            task.cancel()
        for connection in list(state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
        if not self.force_exit:
            await self.lifespan.shutdown()


__all__ = ["HttpApp", "HttpFrontend", "API_GROUPS", "DECOUPLED_ON_INFER"]
