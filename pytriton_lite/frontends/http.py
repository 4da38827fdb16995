"""HTTP front end: Triton's v2 REST protocol as an ASGI app served by uvicorn on the serving loop.

Routing follows Triton's dispatch order (docs/protocol.md) with one precompiled regex for the model
routes. It is a plain ASGI callable rather than a starlette app: starlette's router and middleware cost
about 20 us per request (26 us vs 7 us measured in-process), and the regex mirrors Triton exactly
(``/v2/models/stats`` before the model regex, numeric versions only). Requests are read once; responses
are sent as raw ASGI messages with precomputed headers. Wire formats live in ``protocol.http_codec`` and
``protocol.generate_codec``.

Errors are raised, never answered where they happen, and mapped at one boundary (``HttpApp._fail``):
an ``InferenceError`` -> its ``http_status``, ``{"error": msg}`` and its extra headers (``_Answer``: the
front end's own 404/405/403 and ``Accept-Encoding`` on an unsupported compression); ``DecoupledModelError``
-> 501 with Triton's /infer wording; anything else -> 500 with the exception text, logged once. Once
``http.response.start`` is out an error cannot become a status: it is logged and the connection closed.
A client that disconnects mid-request cancels the data plane call (a queued request is dropped; a stream's
model generator is closed).
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any, Awaitable, Callable, Dict, Optional

from pytriton_lite.config import DEFAULT_HTTP_PORT, TRITON_API_GROUPS
from pytriton_lite.core.api import DataPlane
from pytriton_lite.exceptions import (
    DecoupledModelError,
    InvalidArgumentError,
    PyTritonError,
    UnsupportedError,
)
from pytriton_lite.frontends import _http_settings, _http_stream
from pytriton_lite.frontends._http_limits import DEFAULT_OFFLOAD_BYTES, HttpLimits, default_max_connections, tls_options
from pytriton_lite.frontends._http_offload import Offloader, outputs_size
from pytriton_lite.frontends._http_request import (
    _INFERENCE_HEADER,
    _JSON,
    Headers,
    _Answer,
    _ClientGone,
    _Request,
    _respond,
    _respond_empty,
    _respond_json,
    _unless_client_leaves,
)
from pytriton_lite.frontends._uvicorn import DEFAULT_GRACEFUL_SHUTDOWN_S, EmbeddedServer
from pytriton_lite.protocol import generate_codec, http_codec, model_json, stats_json
from pytriton_lite.protocol import shm as shm_codec
from pytriton_lite.protocol.access import (
    ApiKeys,
    check_api_key,
    compile_forward_pattern,
    parse_http_restricted_api,
    same_secret,
)
from pytriton_lite.protocol.classification import classify_response
from pytriton_lite.protocol.reserved import is_reserved, reserved_header_error

LOGGER = logging.getLogger("pytriton_lite.http")

DECOUPLED_ON_INFER = "HTTP end point doesn't support models with decoupled transaction policy"
GENERATE_ONE_RESPONSE = _http_stream.GENERATE_ONE_RESPONSE
DEFAULT_KEEP_ALIVE_S = 75  # tritonclient and perf_analyzer keep pooled connections open for long
API_GROUPS = TRITON_API_GROUPS  # the groups of --http-restricted-api (defined once, in config)

_MODEL_ROUTE = re.compile(
    r"/v2/models/([^/]+)(?:/versions/([0-9]+))?(?:/(infer|generate|generate_stream|ready|config|stats|trace/setting))?"
)
_REPOSITORY_ROUTE = re.compile(r"/v2/repository(?:/([^/]+))?/(?:index|models/([^/]+)/(load|unload))")
_SHM_ROUTE = re.compile(r"/v2/(systemsharedmemory|cudasharedmemory)(?:/region/([^/]+))?/(status|register|unregister)")


def _parameters(body: bytes, model: str, action: str) -> Dict[str, Any]:
    """The ``parameters`` object of a load/unload body (an empty body has none)."""
    if not body.strip():
        return {}
    try:
        document = http_codec.loads_json(body)
    except (ValueError, RecursionError):
        document = None
    parameters = document.get("parameters", {}) if isinstance(document, dict) else None
    if not isinstance(parameters, dict):
        raise InvalidArgumentError(f"failed to parse the request JSON buffer for model '{model}' {action}")
    return parameters


class HttpApp:
    """The ASGI application: v2 routes over a ``core.api.DataPlane``."""

    def __init__(
        self,
        dataplane: DataPlane,
        *,
        header_forward_pattern: Optional[str] = None,
        restricted_api: Any = None,
        max_input_size: Optional[int] = http_codec.DEFAULT_MAX_INPUT_SIZE,
        offload_bytes: int = DEFAULT_OFFLOAD_BYTES,
    ) -> None:
        self.dataplane = dataplane
        self.max_input_size = max_input_size
        self.offload = Offloader(offload_bytes)  # large decodes/encodes off the serving loop
        self._forward = compile_forward_pattern(header_forward_pattern)
        self._forward_cache: Dict[bytes, Optional[str]] = {}
        self.policy = parse_http_restricted_api(restricted_api)
        self.api_keys: Optional[ApiKeys] = None  # set by HttpFrontend.require_api_keys before start
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
        self._status_app: Optional[Callable[[], Any]] = None
        _http_settings.add_routes(dataplane, self._exact, self._model_actions)  # trace and logging extensions

    def enable_status_page(self, app: Callable[[], Any]) -> None:
        """Serve ``/status`` (the HTML shell, as open as ``health``) and ``/status/data`` (``statistics``);
        ``app()`` returns the page's ASGI app, built on first use so that starlette is imported only then."""
        self._status_app = app
        self._exact["/status"] = ("GET", "health", self._status)
        self._exact["/status/data"] = ("GET", "statistics", self._status)

    async def _status(self, request: _Request) -> None:
        assert self._status_app is not None
        await self._status_app()(request.scope, request.receive, request.send)

    # --- dispatch and the error boundary -------------------------------------------------------------

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
        except Exception as exc:  # noqa: BLE001 - one bad request must not take the server down
            await self._fail(request, path, exc)

    async def _fail(self, request: _Request, path: str, exc: Exception) -> None:
        """The one place an error becomes an answer (or, once the response started, a closed connection)."""
        if request.started:
            # Returning with the body unfinished makes uvicorn close the connection: the client sees a
            # truncated response, never a complete-looking one.
            LOGGER.error("%s %s failed after its response started", request.method, path, exc_info=exc)
            return
        headers: Headers = (_JSON,)
        if isinstance(exc, DecoupledModelError):
            status, message = exc.http_status, DECOUPLED_ON_INFER
        elif isinstance(exc, PyTritonError):  # InferenceError and kin: each knows its status (and headers)
            status, message = int(exc.http_status), str(exc)
            extra = getattr(exc, "headers", ())
            if extra:
                headers = (_JSON, *((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra))
        else:
            LOGGER.error("Unexpected error while serving %s %s", request.method, path, exc_info=exc)
            status, message = 500, f"{type(exc).__name__}: {exc}"
        await _respond(request, status, http_codec.encode_error(message), headers)

    async def _dispatch(self, path: str, request: _Request) -> None:
        route = self._exact.get(path)
        if route is not None:
            method, group, handler = route
            self._check(request, method, group)
            await handler(request)
            return
        match = _MODEL_ROUTE.fullmatch(path)
        if match is not None:
            name, version, action = match.groups()
            model_route = self._model_actions.get(action)
            if model_route is None:  # an action the regex knows but no table serves
                raise _Answer("Not Found", 404)
            method, group, model_handler = model_route
            self._check(request, method, group)
            await model_handler(request, name, version or "")
            return
        match = _REPOSITORY_ROUTE.fullmatch(path)
        if match is not None:
            self._check(request, "POST", "model-repository")
            await self._repository(request, *match.groups())
            return
        match = _SHM_ROUTE.fullmatch(path)
        if match is not None:
            kind, region, action = match.groups()
            self._check(request, "GET" if action == "status" else "POST", "shared-memory")
            await self._shared_memory(request, kind, region, action)
            return
        raise _Answer("Not Found", 404)

    def _check(self, request: _Request, method: str, group: str) -> None:
        """405 for another method, 401/403 without a valid API key where keys guard the group, 403 without the
        header ``--http-restricted-api`` asks for the group (secrets compared in constant time)."""
        if request.method != method and not (method == _http_settings.EITHER and request.method in ("GET", "POST")):
            raise _Answer("Method Not Allowed", 405)
        keys = self.api_keys
        if keys is not None and keys.guards(group):
            check_api_key(keys, ((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]))
        if self.policy:
            rule = self.policy.get(group)
            if rule is not None and not same_secret(request.header(rule[0].encode("latin-1")), rule[1]):
                raise _Answer(self.policy.refusal(group), 403)

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
                if is_reserved(name):
                    raise reserved_header_error(name)  # 400, as Triton: never handed to the model
                parameters[name] = raw_value.decode("latin-1")

    # --- health and metadata -------------------------------------------------------------------------

    async def _live(self, request: _Request) -> None:
        await _respond_empty(request, 200 if self.dataplane.live() else 400)

    async def _ready(self, request: _Request) -> None:
        await _respond_empty(request, 200 if self.dataplane.ready() else 400)

    async def _server_metadata(self, request: _Request) -> None:
        metadata = model_json.server_metadata(
            self.dataplane.server_id, model_repository=self.dataplane.model_control_enabled
        )
        await _respond_json(request, metadata)

    async def _model_ready(self, request: _Request, name: str, version: str) -> None:
        if not self.dataplane.model_ready(name, version):
            raise _Answer("Model version not ready", 400)
        await _respond_empty(request)

    async def _model_metadata(self, request: _Request, name: str, version: str) -> None:
        model = self.dataplane.model(name, version)
        versions = [model.version] if version else list(self.dataplane.served_versions(name)) or [model.version]
        await _respond_json(request, model_json.model_metadata(model, versions))

    async def _model_config(self, request: _Request, name: str, version: str) -> None:
        model = self.dataplane.model(name, version)
        await _respond_json(request, model_json.model_config_dict(model))

    async def _all_stats(self, request: _Request) -> None:
        await self._stats(request, None, "")

    async def _model_stats(self, request: _Request, name: str, version: str) -> None:
        await self._stats(request, name, version)

    async def _stats(self, request: _Request, name: Optional[str], version: str) -> None:
        snapshots = self.dataplane.statistics(name, version)
        await _respond_json(request, stats_json.statistics_json(snapshots))

    async def _repository(
        self, request: _Request, repository: Optional[str], model: Optional[str], action: Optional[str]
    ) -> None:
        if repository is not None:
            raise UnsupportedError("'repository_name' specification is not supported")
        body = await request.body()
        if action is not None and model is not None:
            await self._model_control(model, action, _parameters(body, model, action))
            await _respond_empty(request)
            return
        ready_only: Any = False
        if body.strip():
            try:
                document = http_codec.loads_json(body)
            except (ValueError, RecursionError):
                document = None
            ready_only = document.get("ready", False) if isinstance(document, dict) else None
            if not isinstance(ready_only, bool):
                raise InvalidArgumentError("Invalid value for 'ready': expected a boolean")
        await _respond_json(request, [row.as_dict() for row in self.dataplane.repository_index(ready_only)])

    async def _model_control(self, model: str, action: str, parameters: Dict[str, Any]) -> None:
        """Load (``parameters.config``: a JSON ModelConfig overriding config.pbtxt) or unload
        (``parameters.unload_dependents``); 503 UNAVAILABLE unless the server runs in explicit mode."""
        if action == "unload":
            dependents = parameters.get("unload_dependents", False)
            if not isinstance(dependents, bool):
                raise InvalidArgumentError("'unload_dependents' parameter must be a boolean")
            await self.dataplane.unload_model(model, dependents)
            return
        files = model_json.load_files(model, parameters, base64_text=True)  # file:<path> -> its bytes
        config = parameters.get("config", "")
        if not isinstance(config, str):
            raise InvalidArgumentError(f"failed to load '{model}', failed to poll from model repository")
        await self.dataplane.load_model(model, config, files or None)

    async def _shared_memory(self, request: _Request, kind: str, region: Optional[str], action: str) -> None:
        """Triton's system and CUDA shared-memory extensions over the server's registries (``core/shm.py``,
        ``core/cuda_shm.py``); where CUDA regions are not served (front-end workers) there are none: status is
        empty, unregister a no-op, register refused."""
        registry = self.dataplane.shared_memory
        if kind == "cudasharedmemory" and registry.cuda is not None:
            await self._regions(request, registry.cuda, region, action, shm_codec.cuda_register_args_json, list)
            return
        if kind == "cudasharedmemory":
            if action == "register":
                raise shm_codec.cuda_refused()
            if action == "status" and region is not None:
                raise _Answer(f"Unable to find cuda shared memory region: '{region}'", 404)
            if action == "status":
                await _respond_json(request, [])
            else:
                await _respond_empty(request)
            return
        await self._regions(request, registry, region, action, shm_codec.register_args_json, shm_codec.status_json)

    async def _regions(
        self,
        request: _Request,
        registry: Any,
        region: Optional[str],
        action: str,
        register_args: Callable[[Any, str], Dict[str, Any]],
        status_rows: Callable[[Any], Any],
    ) -> None:
        """status / register / unregister on one registry (system or CUDA); its codec reads the register body."""
        if action == "status":
            await _respond_json(request, status_rows(registry.status(region)))
            return
        if action == "register":
            if region is None:
                raise _Answer("Not Found", 404)
            body = await request.body()
            try:
                document = http_codec.loads_json(body) if body.strip() else None
            except (ValueError, RecursionError):
                document = None
            registry.register(region, **register_args(document, region))
        else:
            registry.unregister(region)
        await _respond_empty(request)

    # --- inference -----------------------------------------------------------------------------------

    async def _infer(self, request: _Request, name: str, version: str) -> None:
        model = self.dataplane.model(name, version)  # 404 before the body is read, as Triton
        if model.decoupled:
            raise DecoupledModelError(name)  # before the body is read; the data plane refuses it too
        encoding = request.header(b"content-encoding")
        if encoding is not None and encoding.strip().lower() not in http_codec.SUPPORTED_REQUEST_ENCODINGS:
            raise http_codec.unsupported_compression()
        body = await request.body(self.max_input_size)
        decode = functools.partial(
            http_codec.decode_infer_request,
            body,
            model_name=name,
            model_version=version,
            header_length=request.header(_INFERENCE_HEADER),
            content_encoding=encoding,
            model=model,
            max_input_size=self.max_input_size,
            shm=self.dataplane.shared_memory,
        )
        infer_request, options = await self.offload.run(len(body), decode)
        del body, decode  # a request dropped below releases its body with it
        if request.gone:
            return  # the client left while its body was read or decoded: never run it
        if self._forward is not None:
            self._forwarded(request, infer_request.parameters)
        # uvicorn's request cycle flags a lost connection: polling that flag when the batcher dispatches drops
        # requests of departed clients without a watcher task per request (~5 % of the loop's time at c=32)
        cycle = getattr(request.receive, "__self__", None)
        if cycle is not None and isinstance(getattr(cycle, "disconnected", None), bool):
            response = await self.dataplane.infer(infer_request, is_gone=lambda: cycle.disconnected)
        else:
            label = f"infer request for model '{name}'"
            watched = await _unless_client_leaves(request.receive, label, self.dataplane.infer(infer_request))
            if watched is None:
                return
            response = watched
        if options.classification:
            response = classify_response(response, options.classification, model)
        encode = functools.partial(
            http_codec.encode_infer_response, response, options, accept_encoding=request.header(b"accept-encoding")
        )
        encoded = await self.offload.run(outputs_size(response.outputs), encode)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in encoded.headers.items()]
        await request.respond(200, headers, encoded.chunks)  # one write: head and body together

    async def _generate_request(self, request: _Request, name: str, version: str) -> Any:
        model = self.dataplane.model(name, version)
        body = await request.body(self.max_input_size)
        decode = functools.partial(
            generate_codec.decode_generate_request,
            body,
            model=model,
            model_name=name,
            model_version=version,
            content_encoding=request.header(b"content-encoding"),
            max_input_size=self.max_input_size,
        )
        generate_request = await self.offload.run(len(body), decode)
        if request.gone:
            raise _ClientGone()
        if self._forward is not None:
            self._forwarded(request, generate_request.parameters)
        return generate_request

    async def _generate(self, request: _Request, name: str, version: str) -> None:
        generate_request = await self._generate_request(request, name, version)
        await self._watched(request, f"generate request for model '{name}'", generate_request, _http_stream.send_one)

    async def _generate_stream(self, request: _Request, name: str, version: str) -> None:
        generate_request = await self._generate_request(request, name, version)
        label = f"generate_stream request for model '{name}'"
        await self._watched(request, label, generate_request, _http_stream.send_events)

    async def _watched(
        self, request: _Request, label: str, generate_request: Any, consume: Callable[..., Awaitable[None]]
    ) -> None:
        """Run ``consume(request, stream, label)`` over the model's responses; a client that leaves ends it."""
        stream = self.dataplane.infer_stream(generate_request)
        try:
            await _unless_client_leaves(request.receive, label, consume(request, stream, label))
        finally:
            await stream.aclose()


class HttpFrontend:
    """Owns the embedded uvicorn server (``_uvicorn.EmbeddedServer``); ``start``/``stop`` run on the serving loop.

    ``keep_alive_s`` keeps idle connections open (tritonclient pools them), ``graceful_shutdown_s`` is what
    running requests get on ``stop``, ``max_input_size`` bounds a request body (on the wire and decompressed).
    ``limits`` (``_http_limits.HttpLimits``, docs/limits.md) replaces those two and adds the connection cap,
    head/body deadlines and the head size; ``ssl_cert``/``ssl_key`` serve HTTPS, and ``ssl_root_cert`` then
    requires client certificates signed by it (mutual TLS).
    """

    def __init__(
        self,
        dataplane: DataPlane,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_HTTP_PORT,
        header_forward_pattern: Optional[str] = None,
        restricted_api: Any = None,
        max_input_size: Optional[int] = http_codec.DEFAULT_MAX_INPUT_SIZE,
        keep_alive_s: int = DEFAULT_KEEP_ALIVE_S,
        graceful_shutdown_s: int = DEFAULT_GRACEFUL_SHUTDOWN_S,
        backlog: int = 2048,
        limits: Optional[HttpLimits] = None,
        ssl_cert: Optional[str] = None,
        ssl_key: Optional[str] = None,
        ssl_root_cert: Optional[str] = None,
    ) -> None:
        if limits is None:
            limits = HttpLimits(
                keepalive_timeout_s=float(keep_alive_s),
                max_connections=default_max_connections(),
                max_body_size=max_input_size,
            )
        max_input_size = limits.max_body_size
        self.limits = limits
        self.dataplane = dataplane
        self.host = host or "0.0.0.0"
        self.requested_port = int(port)
        self.app = HttpApp(
            dataplane,
            header_forward_pattern=header_forward_pattern,
            restricted_api=restricted_api,
            max_input_size=max_input_size,
            offload_bytes=limits.offload_bytes,
        )
        self.keep_alive_s = limits.keepalive_timeout_s
        self.graceful_shutdown_s = int(graceful_shutdown_s)
        self.backlog = int(backlog)
        self._server = EmbeddedServer(
            self.app,
            label="HTTP",
            host=self.host,
            port=self.requested_port,
            backlog=self.backlog,
            graceful_shutdown_s=self.graceful_shutdown_s,
            ws="none",
            proxy_headers=False,
            date_header=False,
            limits=limits,
            **tls_options(ssl_cert, ssl_key, ssl_root_cert),
        )
        self.scheme = "https" if ssl_cert else "http"

    @property
    def reuse_port(self) -> bool:
        """Listen with SO_REUSEPORT (front-end workers share the port their serving process reserved)."""
        return self._server.reuse_port

    @reuse_port.setter
    def reuse_port(self, value: bool) -> None:
        self._server.reuse_port = bool(value)

    @property
    def port(self) -> Optional[int]:
        """The bound port once started (the requested one, or the free one port 0 picked)."""
        return self._server.port

    @classmethod
    def from_triton_config(cls, dataplane: DataPlane, config: Any, workers: int = 1) -> HttpFrontend:
        """Build from a ``TritonConfig`` (read with getattr; unset fields keep Triton's defaults); ``workers``:
        this front end is one of that many front-end workers (``HttpLimits.from_triton_config``)."""
        host = getattr(config, "http_address", None) or "0.0.0.0"
        port = getattr(config, "http_port", None)
        return cls(
            dataplane,
            host=host,
            port=DEFAULT_HTTP_PORT if port is None else port,
            header_forward_pattern=getattr(config, "http_header_forward_pattern", None),
            restricted_api=getattr(config, "http_restricted_api", None),
            limits=HttpLimits.from_triton_config(config, workers),
            ssl_cert=getattr(config, "http_ssl_cert", None),
            ssl_key=getattr(config, "http_ssl_key", None),
            ssl_root_cert=getattr(config, "http_ssl_root_cert", None),
        )

    def require_api_keys(self, keys: ApiKeys) -> None:
        """Check ``keys`` on the groups they guard (call before ``start``)."""
        self.app.api_keys = keys

    async def start(self) -> None:
        """Bind, then serve on the running loop; a busy port raises OSError before anything runs."""
        await self._server.start()

    async def stop(self) -> None:
        """Stop accepting; let running requests finish (up to ``graceful_shutdown_s``), then close."""
        await self._server.stop()
        self.app.offload.close()


__all__ = ["HttpApp", "HttpFrontend", "API_GROUPS", "DECOUPLED_ON_INFER"]
