"""gRPC front end: Triton's ``inference.GRPCInferenceService`` on grpc.aio, on the serving loop.

The servicer subclasses tritonclient's generated base class; methods the server does not offer keep the
base behaviour or answer UNIMPLEMENTED with a reason. ModelInfer and ModelStreamInfer are registered with
our own (de)serialisers so that tensors travel as views of the wire bytes (see ``protocol.grpc_codec``).

Streams: every request on a ModelStreamInfer call runs as its own task. Responses of decoupled models go
out as they are produced; those of ordinary models go out in request order. Errors become in-stream
``error_message`` responses and the stream stays usable. A half-close ends the call once every request
has finished; a cancelled call cancels the requests, which closes the models' generators.

Every RPC is wrapped where the handler table is built (``_method_handlers``): the wrapper checks the
``--grpc-restricted-protocol`` header of the RPC's group (``protocol.access``) and maps what the servicer
raises to the call's status: a ``PyTritonError`` -> its ``grpc_code`` and message, ``DecoupledModelError``
-> UNIMPLEMENTED with Triton's ModelInfer wording, anything else -> INTERNAL with the exception text,
logged once. Servicer methods just return or raise.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import pathlib
from typing import (
    Any,
    AsyncGenerator,
    Awaitable,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from pytriton_lite.config import DEFAULT_GRPC_PORT
from pytriton_lite.core.api import DataPlane
from pytriton_lite.exceptions import DecoupledModelError, PyTritonError
from pytriton_lite.protocol import grpc_codec, model_json, stats_json
from pytriton_lite.protocol.access import (
    GRPC_METHOD_GROUPS,
    GRPC_RESTRICTED,
    AccessPolicy,
    Rule,
    compile_forward_pattern,
)
from pytriton_lite.protocol.access import parse_grpc_restricted_protocol as parse_restricted_protocols
from pytriton_lite.types import InferenceRequest

LOGGER = logging.getLogger("pytriton_lite.grpc")

SERVICE_NAME = "inference.GRPCInferenceService"
MAX_MESSAGE_SIZE = 2**31 - 1
DECOUPLED_ON_MODEL_INFER = "ModelInfer RPC doesn't support models with decoupled transaction policy"
SHM_DISABLED = "Client shared memory is disabled. Start the server with '--allow-client-shm=true' to enable."

NOT_OFFERED = {  # RPC -> why it answers UNIMPLEMENTED
    "SystemSharedMemoryRegister": SHM_DISABLED,
    "SystemSharedMemoryUnregister": SHM_DISABLED,
    "CudaSharedMemoryRegister": SHM_DISABLED,
    "CudaSharedMemoryUnregister": SHM_DISABLED,
    "TraceSetting": "trace settings are not supported by pytriton_lite",
    "LogSettings": "log settings are not supported by pytriton_lite",
}
_COMPRESSION_LEVELS = {"none": 0, "low": 1, "medium": 2, "high": 3}
_STREAM_QUEUE_SIZE = 256  # responses buffered per stream before producers wait for the client
_STREAM_CLOSE_TIMEOUT_S = 5.0
_END = object()


def _status(exc: BaseException) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, getattr(exc, "grpc_code", "INTERNAL"), grpc.StatusCode.INTERNAL)


def _version_str(model: Any) -> str:
    return getattr(model, "version_str", None) or str(model.version)


def _serialize(message: Any) -> bytes:
    """Response serialiser accepting pre-encoded bytes (the fast paths) or messages."""
    if isinstance(message, bytes):
        return message
    return message.SerializeToString()


def _answer(code: str, message: str) -> PyTritonError:
    """A status the servicer answers on its own (UNIMPLEMENTED, NOT_FOUND): raised, mapped by the wrapper."""
    error = PyTritonError(message)
    error.grpc_code = code
    return error


def _describe(exc: BaseException) -> Tuple[grpc.StatusCode, str]:
    """(status, details) for a failure; an unexpected one (not a ``PyTritonError``) is logged here, once."""
    if isinstance(exc, PyTritonError):
        return _status(exc), str(exc)
    LOGGER.error("Unexpected error in the gRPC front end", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"


class _StreamError:
    """An in-stream error response plus the status it would have as a call error."""

    __slots__ = ("message", "code", "details")

    def __init__(self, message: Any, code: grpc.StatusCode, details: str) -> None:
        self.message = message
        self.code = code
        self.details = details


class GrpcServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The v2 gRPC service over a ``core.api.DataPlane``; access checks and error mapping are the wrapper's."""

    def __init__(
        self,
        dataplane: DataPlane,
        header_forward_pattern: Optional[str] = None,
        restricted_protocols: Optional[Mapping[str, Rule]] = None,
    ) -> None:
        self._dataplane = dataplane
        self._forward = compile_forward_pattern(header_forward_pattern)
        if not isinstance(restricted_protocols, AccessPolicy):
            restricted_protocols = AccessPolicy(restricted_protocols, GRPC_RESTRICTED)
        self.policy = restricted_protocols

    def _forwarded(self, context: grpc.aio.ServicerContext) -> Optional[Dict[str, str]]:
        if self._forward is None:
            return None
        return grpc_codec.forwarded_parameters(context.invocation_metadata() or (), self._forward)

    # --- health and metadata ---------------------------------------------------------------------------

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return service_pb2.ServerLiveResponse(live=self._dataplane.live())

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return service_pb2.ServerReadyResponse(ready=self._dataplane.ready())

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return service_pb2.ModelReadyResponse(ready=self._dataplane.model_ready(request.name, request.version))

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        metadata = model_json.server_metadata(self._dataplane.server_id)
        return grpc_codec.server_metadata_response(metadata["name"], metadata["version"], metadata["extensions"])

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        model = self._dataplane.model(request.name, request.version)
        # no version: every served version, as Triton lists them
        versions = [model.version] if request.version else list(self._dataplane.served_versions(model.name))
        return grpc_codec.model_metadata_response(model_json.model_metadata(model, versions or [model.version]))

    async def ModelConfig(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        model = self._dataplane.model(request.name, request.version)
        return service_pb2.ModelConfigResponse(config=model.config)

    async def ModelStatistics(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        # Triton's selection and INVALID_ARG errors, shared with the HTTP stats route
        snapshots = self._dataplane.statistics(request.name or None, request.version)
        return stats_json.statistics_proto(snapshots)

    async def RepositoryIndex(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.repository_name:
            raise _answer("UNIMPLEMENTED", "'repository_name' specification is not supported")
        rows = [row.as_dict() for row in self._dataplane.repository_index(bool(request.ready))]
        return grpc_codec.repository_index_response(rows)

    async def RepositoryModelLoad(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """Load; ``parameters["config"].string_param`` is a JSON ModelConfig overriding config.pbtxt."""
        if request.repository_name:
            raise _answer("UNIMPLEMENTED", "'repository_name' specification is not supported")
        parameters = request.parameters
        files = [key for key in parameters if key.startswith("file:")]
        if files:
            raise _answer("UNIMPLEMENTED", f"load with model files in the request ({files[0]!r}) is not supported")
        config = parameters["config"].string_param if "config" in parameters else ""
        await self._dataplane.load_model(request.model_name, config)
        return service_pb2.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.repository_name:
            raise _answer("UNIMPLEMENTED", "'repository_name' specification is not supported")
        parameters = request.parameters
        dependents = bool(parameters["unload_dependents"].bool_param) if "unload_dependents" in parameters else False
        await self._dataplane.unload_model(request.model_name, dependents)
        return service_pb2.RepositoryModelUnloadResponse()

    # --- shared memory: no region is ever registered (the other RPCs are NOT_OFFERED) -------------------

    @staticmethod
    def _no_region(kind: str, request: Any, response: Any) -> Any:
        if request.name:
            raise _answer("NOT_FOUND", f"Unable to find {kind} shared memory region: '{request.name}'")
        return response()

    async def SystemSharedMemoryStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self._no_region("system", request, service_pb2.SystemSharedMemoryStatusResponse)

    async def CudaSharedMemoryStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self._no_region("cuda", request, service_pb2.CudaSharedMemoryStatusResponse)

    # --- inference -------------------------------------------------------------------------------------

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        # ``request`` is (message, raw views) from grpc_codec.parse_infer_request, or a plain message.
        message, raw = request if isinstance(request, tuple) else (request, None)
        infer_request = grpc_codec.decode_infer_request(message, raw, self._forwarded(context))
        response = await self._dataplane.infer(infer_request)  # decoupled: DecoupledModelError, see _unary
        return grpc_codec.serialize_infer_response(response)

    async def ModelStreamInfer(
        self, request_iterator: Any, context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[Any, None]:
        metadata = context.invocation_metadata() or ()
        # Triton's optional mode: the first error ends the call with its real status.
        error_ends_stream = any(k == "triton_grpc_error" and v == "true" for k, v in metadata)
        forwarded = grpc_codec.forwarded_parameters(metadata, self._forward) if self._forward else None
        out: asyncio.Queue = asyncio.Queue(_STREAM_QUEUE_SIZE)
        failure: List[BaseException] = []
        reader = asyncio.ensure_future(self._read_stream(request_iterator, forwarded, out, failure))
        try:
            while True:
                item = await out.get()
                if item is _END:
                    break
                if isinstance(item, _StreamError):
                    if error_ends_stream:
                        await context.abort(item.code, item.details)
                    item = item.message
                yield item
            if failure:
                raise failure[0]  # the call's status, from the wrapper
        finally:
            if not reader.done():
                reader.cancel()
                await asyncio.wait({reader}, timeout=_STREAM_CLOSE_TIMEOUT_S)

    async def _read_stream(
        self, request_iterator: Any, forwarded: Optional[Dict[str, str]], out: asyncio.Queue, failure: list
    ) -> None:
        """Start a task per incoming request; after the half-close, wait for them and end the stream."""
        tasks: Set[asyncio.Future] = set()
        previous: Optional[asyncio.Future] = None  # emission gate of the last in-order (coupled) request
        try:
            async for request in request_iterator:
                message, raw = request if isinstance(request, tuple) else (request, None)
                gate: asyncio.Future = asyncio.get_running_loop().create_future()
                task = asyncio.ensure_future(self._stream_one(message, raw, forwarded, out, previous, gate))
                previous = gate  # decoupled requests open their gate at once, so only coupled ones hold it
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:  # half-closed: nothing is added any more
                await asyncio.wait(set(tasks))
        except asyncio.CancelledError:
            for pending in tasks:
                pending.cancel()
            if tasks:
                await asyncio.wait(set(tasks), timeout=_STREAM_CLOSE_TIMEOUT_S)
            raise
        except Exception as exc:  # noqa: BLE001 - reported once the queued responses are out
            failure.append(exc)
            for pending in tasks:
                pending.cancel()
        await out.put(_END)

    async def _stream_one(
        self,
        message: Any,
        raw: grpc_codec.RawBuffers,
        forwarded: Optional[Dict[str, str]],
        out: asyncio.Queue,
        previous: Optional[asyncio.Future],
        gate: asyncio.Future,
    ) -> None:
        """Serve one stream request. Decoupled: resolve ``gate`` at once, stream as produced. Otherwise
        wait for ``previous`` (the earlier in-order request) before queueing, then resolve ``gate``."""
        model_name, model_version, request_id = message.model_name, message.model_version, message.id
        try:
            try:
                request = grpc_codec.decode_infer_request(message, raw, forwarded)
                model = self._dataplane.model(request.model_name, request.model_version)
            except Exception as exc:  # noqa: BLE001
                await self._emit_in_order(previous, out, self._stream_error(exc, model_name, model_version, request_id))
                return
            if model.decoupled:
                gate.set_result(None)
                await self._stream_decoupled(request, model, message, out)
                return
            try:
                response = await self._dataplane.infer(request)
                item: Any = grpc_codec.serialize_stream_response(response, final=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                item = self._stream_error(exc, model_name, _version_str(model), request_id)
            await self._emit_in_order(previous, out, item)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not hang the stream
            LOGGER.exception("Unexpected error serving a gRPC stream request")
        finally:
            if not gate.done():
                gate.set_result(None)

    @staticmethod
    async def _emit_in_order(previous: Optional[asyncio.Future], out: asyncio.Queue, item: Any) -> None:
        if previous is not None and not previous.done():
            await asyncio.shield(previous)
        await out.put(item)

    async def _stream_decoupled(self, request: InferenceRequest, model: Any, message: Any, out: asyncio.Queue) -> None:
        model_version = _version_str(model)
        responses = self._dataplane.infer_stream(request)
        try:
            async for response in responses:
                if response.final and not response.outputs:
                    continue  # a flags-only end marker; the empty final below stands for it
                await out.put(grpc_codec.serialize_stream_response(response, final=False))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - in-stream error; the stream carries on
            await out.put(self._stream_error(exc, request.model_name, model_version, request.id))
            return
        finally:
            await responses.aclose()
        if grpc_codec.wants_empty_final_response(message):
            await out.put(grpc_codec.stream_empty_final_response(request.model_name, model_version, request.id))

    @staticmethod
    def _stream_error(exc: BaseException, model_name: str, model_version: str, request_id: str) -> _StreamError:
        code, details = _describe(exc)
        message = grpc_codec.stream_error_response(details, model_name, model_version, request_id)
        return _StreamError(message, code, details)


Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Streaming = Callable[[Any, grpc.aio.ServicerContext], AsyncGenerator[Any, None]]


def _permits(rule: Rule, context: grpc.aio.ServicerContext) -> bool:
    header, value = rule
    return any(key == header and got == value for key, got in context.invocation_metadata() or ())


def _unary(behaviour: Unary, rule: Optional[Rule], refusal: str) -> Unary:
    """An RPC's handler: the access check, then ``behaviour`` with its failures mapped to the call's status."""

    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if rule is not None and not _permits(rule, context):
            await context.abort(grpc.StatusCode.UNAVAILABLE, refusal)
        try:
            return await behaviour(request, context)
        except grpc.aio.AbortError:
            raise
        except DecoupledModelError:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, DECOUPLED_ON_MODEL_INFER)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            await context.abort(*_describe(exc))

    return handler


def _streaming(behaviour: Streaming, rule: Optional[Rule], refusal: str) -> Streaming:
    """The streaming RPC's handler: as ``_unary``; errors of single requests travel in-stream (the servicer's)."""

    async def handler(request_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncGenerator[Any, None]:
        if rule is not None and not _permits(rule, context):
            await context.abort(grpc.StatusCode.UNAVAILABLE, refusal)
        responses = behaviour(request_iterator, context)
        try:
            async for response in responses:
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failure of the call itself becomes its status
            await context.abort(*_describe(exc))
        finally:
            await responses.aclose()  # a closed call closes the servicer's generator at once

    return handler


def _not_offered(details: str) -> Unary:
    async def rpc(request: Any, context: grpc.aio.ServicerContext) -> Any:
        raise _answer("UNIMPLEMENTED", details)

    return rpc


def _method_handlers(servicer: GrpcServicer) -> Dict[str, grpc.RpcMethodHandler]:
    """The service's handlers, each wrapped (``_unary``/``_streaming``) with the access rule of its group.

    The infer RPCs use the zero-copy codec instead of the generated one.
    """
    handlers: Dict[str, grpc.RpcMethodHandler] = {}
    service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    policy = servicer.policy
    for method in service.methods:
        name = method.name
        group = GRPC_METHOD_GROUPS.get(name, "")
        rule = policy.get(group)
        refusal = policy.refusal(group) if rule is not None else ""
        if name == "ModelStreamInfer":
            handlers[name] = grpc.stream_stream_rpc_method_handler(
                _streaming(servicer.ModelStreamInfer, rule, refusal),
                request_deserializer=grpc_codec.parse_infer_request,
                response_serializer=_serialize,
            )
            continue
        details = NOT_OFFERED.get(name)
        behaviour = getattr(servicer, name) if details is None else _not_offered(details)
        if name == "ModelInfer":
            parse, serialize = grpc_codec.parse_infer_request, _serialize
        else:
            parse = getattr(service_pb2, method.input_type.name).FromString
            serialize = getattr(service_pb2, method.output_type.name).SerializeToString
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            _unary(behaviour, rule, refusal), request_deserializer=parse, response_serializer=serialize
        )
    return handlers


def _read_file(path: Union[None, str, pathlib.Path], what: str) -> Optional[bytes]:
    if path is None:
        return None
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise PyTritonError(f"Cannot read gRPC {what} {str(path)!r}: {exc}") from exc


class GrpcFrontend:
    """Owns the grpc.aio server; ``start``/``stop`` run on the serving loop."""

    def __init__(
        self,
        dataplane: DataPlane,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_GRPC_PORT,
        header_forward_pattern: Optional[str] = None,
        max_send_message_length: int = MAX_MESSAGE_SIZE,
        max_receive_message_length: int = MAX_MESSAGE_SIZE,
        keepalive_time_ms: Optional[int] = None,
        keepalive_timeout_ms: Optional[int] = None,
        keepalive_permit_without_calls: Optional[bool] = None,
        http2_max_pings_without_data: Optional[int] = None,
        http2_min_recv_ping_interval_without_data_ms: Optional[int] = None,
        http2_max_ping_strikes: Optional[int] = None,
        compression_level: Optional[str] = None,
        use_ssl: bool = False,
        use_ssl_mutual: bool = False,
        server_cert: Union[None, str, pathlib.Path] = None,
        server_key: Union[None, str, pathlib.Path] = None,
        root_cert: Union[None, str, pathlib.Path] = None,
        restricted_protocol: Union[None, str, Sequence[str]] = None,
        extra_options: Sequence[Tuple[str, Any]] = (),
    ) -> None:
        self.dataplane = dataplane
        self.host = host or "0.0.0.0"
        self.requested_port = int(port)
        self.port: Optional[int] = None
        self.servicer = GrpcServicer(dataplane, header_forward_pattern, parse_restricted_protocols(restricted_protocol))
        self.use_ssl = bool(use_ssl)
        self.use_ssl_mutual = bool(use_ssl_mutual)
        self.server_cert, self.server_key, self.root_cert = server_cert, server_key, root_cert
        options: List[Tuple[str, Any]] = [
            ("grpc.max_send_message_length", int(max_send_message_length)),
            ("grpc.max_receive_message_length", int(max_receive_message_length)),
            ("grpc.so_reuseport", 0),  # a busy port must fail to bind, not be shared
        ]
        for key, value in (
            ("grpc.keepalive_time_ms", keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", keepalive_permit_without_calls),
            ("grpc.http2.max_pings_without_data", http2_max_pings_without_data),
            ("grpc.http2.min_ping_interval_without_data_ms", http2_min_recv_ping_interval_without_data_ms),
            ("grpc.http2.max_ping_strikes", http2_max_ping_strikes),
        ):
            if value is not None:
                options.append((key, int(value)))
        if compression_level is not None:
            level = _COMPRESSION_LEVELS.get(str(compression_level).lower())
            if level is None:
                raise PyTritonError(
                    f"Invalid grpc_infer_response_compression_level {compression_level!r}: "
                    "expected none, low, medium or high"
                )
            options.append(("grpc.default_compression_level", level))
        options.extend(extra_options)
        self.options = options
        self._server: Optional[grpc.aio.Server] = None

    @classmethod
    def from_triton_config(cls, dataplane: DataPlane, config: Any) -> GrpcFrontend:
        """Build from a ``TritonConfig`` (read with getattr; unset fields keep Triton's defaults)."""

        def get(name: str, default: Any = None) -> Any:
            value = getattr(config, name, None)
            return default if value is None else value

        return cls(
            dataplane,
            host=get("grpc_address", "0.0.0.0"),
            port=get("grpc_port", DEFAULT_GRPC_PORT),
            header_forward_pattern=get("grpc_header_forward_pattern"),
            keepalive_time_ms=get("grpc_keepalive_time"),
            keepalive_timeout_ms=get("grpc_keepalive_timeout"),
            keepalive_permit_without_calls=get("grpc_keepalive_permit_without_calls"),
            http2_max_pings_without_data=get("grpc_http2_max_pings_without_data"),
            http2_min_recv_ping_interval_without_data_ms=get("grpc_http2_min_recv_ping_interval_without_data"),
            http2_max_ping_strikes=get("grpc_http2_max_ping_strikes"),
            compression_level=get("grpc_infer_response_compression_level"),
            use_ssl=bool(get("grpc_use_ssl", False)),
            use_ssl_mutual=bool(get("grpc_use_ssl_mutual", False)),
            server_cert=get("grpc_server_cert"),
            server_key=get("grpc_server_key"),
            root_cert=get("grpc_root_cert"),
            restricted_protocol=get("grpc_restricted_protocol"),
        )

    @property
    def address(self) -> str:
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.requested_port}"

    def _credentials(self) -> Optional[grpc.ServerCredentials]:
        if not self.use_ssl:
            return None
        cert = _read_file(self.server_cert, "server certificate")
        key = _read_file(self.server_key, "server key")
        if cert is None or key is None:
            raise PyTritonError("grpc_use_ssl needs grpc_server_cert and grpc_server_key")
        root = _read_file(self.root_cert, "root certificate")
        if self.use_ssl_mutual and root is None:
            raise PyTritonError("grpc_use_ssl_mutual needs grpc_root_cert")
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=root, require_client_auth=self.use_ssl_mutual
        )

    async def start(self) -> None:
        """Bind and start serving on the running loop; a busy port raises OSError(EADDRINUSE)."""
        server = grpc.aio.server(options=self.options)
        handlers = _method_handlers(self.servicer)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
        if hasattr(server, "add_registered_method_handlers"):
            server.add_registered_method_handlers(SERVICE_NAME, handlers)
        credentials = self._credentials()
        try:
            if credentials is None:
                port = server.add_insecure_port(self.address)
            else:
                port = server.add_secure_port(self.address, credentials)
        except RuntimeError:
            port = 0
        if not port:
            await server.stop(None)
            raise OSError(errno.EADDRINUSE, f"gRPC address {self.address} is in use or cannot be bound")
        await server.start()
        self._server = server
        self.port = port
        LOGGER.debug("gRPC front end listening on %s:%s", self.host, port)

    async def stop(self, grace: Optional[float] = None) -> None:
        """Stop accepting calls; running calls get ``grace`` seconds (None = cancel them now)."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)


__all__ = ["GrpcFrontend", "GrpcServicer", "parse_restricted_protocols", "MAX_MESSAGE_SIZE", "NOT_OFFERED"]
