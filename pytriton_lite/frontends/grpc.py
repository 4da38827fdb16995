"""gRPC front end: Triton's ``inference.GRPCInferenceService`` on grpc.aio, on the serving loop.

The servicer subclasses tritonclient's generated base class; methods the server does not offer keep the
base behaviour or answer UNIMPLEMENTED with a reason. ModelInfer and ModelStreamInfer are registered with
our own (de)serialisers so that tensors travel as views of the wire bytes (see ``protocol.grpc_codec``).

Streams (``_grpc_stream``, a mixin of the servicer): every request on a ModelStreamInfer call runs as its
own task. Responses of decoupled models go out as they are produced; those of ordinary models go out in
request order. Errors become in-stream ``error_message`` responses and the stream stays usable. A
half-close ends the call once every request has finished; a cancelled call cancels the requests, which
closes the models' generators.
Connection limits, message sizes and the deserialisers that turn bad bytes into INVALID_ARGUMENT are
``_grpc_guard``'s.

Every RPC is wrapped where the handler table is built (``_method_handlers``): the wrapper checks the API
key and ``--grpc-restricted-protocol`` header of the RPC's group (``access.GrpcGate``) and maps what the servicer
raises to the call's status: a ``PyTritonError`` -> its ``grpc_code`` and message, ``DecoupledModelError``
-> UNIMPLEMENTED with Triton's ModelInfer wording, anything else -> INTERNAL with the exception text,
logged once. Servicer methods just return or raise.
"""

from __future__ import annotations

import errno
import logging
import pathlib
from typing import (
    Any,
    AsyncGenerator,
    Awaitable,
    Callable,
    Dict,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from pytriton_lite._echo import echo
from pytriton_lite.config import DEFAULT_GRPC_PORT
from pytriton_lite.core.api import DataPlane
from pytriton_lite.exceptions import DecoupledModelError, PyTritonError
from pytriton_lite.frontends._grpc_guard import (
    MAX_MESSAGE_SIZE,
    GrpcLimits,
    Malformed,
    server_credentials,
    server_options,
    tolerant,
)
from pytriton_lite.frontends._grpc_stream import StreamInfer
from pytriton_lite.frontends._grpc_stream import answer_status as _answer
from pytriton_lite.frontends._grpc_stream import describe as _describe
from pytriton_lite.protocol import grpc_codec, logging_json, model_json, stats_json, trace_json
from pytriton_lite.protocol import shm as shm_codec
from pytriton_lite.protocol.access import (
    GRPC_METHOD_GROUPS,
    GRPC_RESTRICTED,
    AccessPolicy,
    ApiKeys,
    GrpcGate,
    Rule,
    compile_forward_pattern,
)
from pytriton_lite.protocol.access import parse_grpc_restricted_protocol as parse_restricted_protocols
from pytriton_lite.protocol.classification import classify_response

LOGGER = logging.getLogger("pytriton_lite.grpc")

SERVICE_NAME = "inference.GRPCInferenceService"
DECOUPLED_ON_MODEL_INFER = "ModelInfer RPC doesn't support models with decoupled transaction policy"

NOT_OFFERED: Dict[str, str] = {}  # RPC -> why it answers UNIMPLEMENTED
_COMPRESSION_LEVELS = {"none": 0, "low": 1, "medium": 2, "high": 3}


def _serialize(message: Any) -> bytes:
    """Response serialiser accepting pre-encoded bytes (the fast paths) or messages."""
    if isinstance(message, bytes):
        return message
    return message.SerializeToString()


class GrpcServicer(StreamInfer, service_pb2_grpc.GRPCInferenceServiceServicer):
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
        self.api_keys: Optional[ApiKeys] = None  # set by GrpcFrontend.require_api_keys before start
        self.max_send_message_size = MAX_MESSAGE_SIZE  # GrpcFrontend sets its limit

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
        metadata = model_json.server_metadata(
            self._dataplane.server_id, model_repository=self._dataplane.model_control_enabled
        )
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
        raw = {
            k: p.bytes_param if p.WhichOneof("parameter_choice") == "bytes_param" else None
            for k, p in parameters.items()
        }
        files = model_json.load_files(request.model_name, raw, base64_text=False)
        config = parameters["config"].string_param if "config" in parameters else ""
        await self._dataplane.load_model(request.model_name, config, files or None)
        return service_pb2.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.repository_name:
            raise _answer("UNIMPLEMENTED", "'repository_name' specification is not supported")
        parameters = request.parameters
        dependents = bool(parameters["unload_dependents"].bool_param) if "unload_dependents" in parameters else False
        await self._dataplane.unload_model(request.model_name, dependents)
        return service_pb2.RepositoryModelUnloadResponse()

    # --- shared memory: system regions in the data plane's registry (core/shm.py); no CUDA IPC ----------

    async def SystemSharedMemoryStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return shm_codec.status_proto(self._dataplane.shared_memory.status(request.name or None))

    async def SystemSharedMemoryRegister(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._dataplane.shared_memory.register(request.name, request.key, request.offset, request.byte_size)
        return service_pb2.SystemSharedMemoryRegisterResponse()

    async def SystemSharedMemoryUnregister(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._dataplane.shared_memory.unregister(request.name or None)
        return service_pb2.SystemSharedMemoryUnregisterResponse()

    async def CudaSharedMemoryStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        cuda = self._dataplane.shared_memory.cuda
        if cuda is not None:  # an unknown name: RegionNotFoundError, NOT_FOUND
            return shm_codec.cuda_status_proto(cuda.status(request.name or None))
        if request.name:
            raise _answer("NOT_FOUND", f"Unable to find cuda shared memory region: '{echo(request.name)}'")
        return service_pb2.CudaSharedMemoryStatusResponse()

    async def CudaSharedMemoryRegister(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        cuda = self._dataplane.shared_memory.cuda
        if cuda is None:
            raise shm_codec.cuda_refused()
        cuda.register(request.name, bytes(request.raw_handle), int(request.device_id), int(request.byte_size))
        return service_pb2.CudaSharedMemoryRegisterResponse()

    async def CudaSharedMemoryUnregister(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        cuda = self._dataplane.shared_memory.cuda
        if cuda is not None:
            cuda.unregister(request.name or None)
        return service_pb2.CudaSharedMemoryUnregisterResponse()

    # --- trace and logging extensions (settings in the core; codecs in protocol/) ----------------------

    async def TraceSetting(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        name, changes = trace_json.decode_grpc(request)
        return trace_json.encode_grpc(self._dataplane.trace_setting(name, changes))

    async def LogSettings(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return logging_json.encode_grpc(self._dataplane.log_settings(logging_json.decode_grpc(request)))

    # --- inference -------------------------------------------------------------------------------------

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        # ``request`` is (message, raw views) from grpc_codec.parse_infer_request, or a plain message.
        message, raw = request if isinstance(request, tuple) else (request, None)
        shm = self._dataplane.shared_memory
        infer_request = grpc_codec.decode_infer_request(message, raw, self._forwarded(context), shm)
        counts = grpc_codec.classification_counts(message)
        response = await self._dataplane.infer(infer_request)  # decoupled: DecoupledModelError, see _unary
        if counts:
            model = self._dataplane.model(response.model_name, response.model_version)
            response = classify_response(response, counts, model)
        in_shm = shm_codec.write_outputs(shm, response, grpc_codec.shm_outputs(message)) if message.outputs else ()
        return self._fits(grpc_codec.serialize_infer_response(response, in_shm=in_shm))


Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Streaming = Callable[[Any, grpc.aio.ServicerContext], AsyncGenerator[Any, None]]


async def _admit(gate: Optional[GrpcGate], context: grpc.aio.ServicerContext) -> None:
    """Abort the call unless its metadata passes the group's API-key and restricted-protocol checks."""
    refused = gate.refusal(context.invocation_metadata() or ()) if gate is not None else None
    if refused is not None:
        code, message, trailing = refused
        await context.abort(getattr(grpc.StatusCode, code), message, trailing)


def _unary(behaviour: Unary, gate: Optional[GrpcGate]) -> Unary:
    """An RPC's handler: the access check, then ``behaviour`` with its failures mapped to the call's status."""

    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if gate is not None:  # no coroutine per RPC when the group has no checks
            await _admit(gate, context)
        if isinstance(request, Malformed):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request.error()))
        try:
            return await behaviour(request, context)
        except grpc.aio.AbortError:
            raise
        except DecoupledModelError:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, DECOUPLED_ON_MODEL_INFER)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            await context.abort(*_describe(exc))

    return handler


def _streaming(behaviour: Streaming, gate: Optional[GrpcGate]) -> Streaming:
    """The streaming RPC's handler: as ``_unary``; errors of single requests travel in-stream (the servicer's)."""

    async def handler(request_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncGenerator[Any, None]:
        await _admit(gate, context)
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
        gate = GrpcGate.of(policy, group, servicer.api_keys)
        if name == "ModelStreamInfer":
            handlers[name] = grpc.stream_stream_rpc_method_handler(
                _streaming(servicer.ModelStreamInfer, gate),
                request_deserializer=tolerant(grpc_codec.parse_infer_request, "inference.ModelInferRequest"),
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
            _unary(behaviour, gate),
            request_deserializer=tolerant(parse, method.input_type.full_name),
            response_serializer=serialize,
        )
    return handlers


class GrpcFrontend:
    """Owns the grpc.aio server; ``start``/``stop`` run on the serving loop."""

    def __init__(
        self,
        dataplane: DataPlane,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_GRPC_PORT,
        header_forward_pattern: Optional[str] = None,
        limits: Optional[GrpcLimits] = None,
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
        self.limits = limits or GrpcLimits()
        self.servicer.max_send_message_size = self.limits.max_send_message_size
        options = server_options(self.limits)  # connections, timeouts, message sizes (_grpc_guard)
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
        self.reuse_port = False  # front-end workers listen on one port together (workers/hub.py reserves it)
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
            limits=GrpcLimits.from_config(config),
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
        return server_credentials(self.server_cert, self.server_key, self.root_cert, self.use_ssl_mutual)

    def require_api_keys(self, keys: ApiKeys) -> None:
        """Check ``keys`` on the RPC groups they guard (call before ``start``)."""
        self.servicer.api_keys = keys

    async def start(self) -> None:
        """Bind and start serving on the running loop; a busy port raises OSError(EADDRINUSE)."""
        # a busy port must fail to bind, not be shared, unless workers share the port their server reserved
        options = [*self.options, ("grpc.so_reuseport", 1 if self.reuse_port else 0)]
        server = grpc.aio.server(options=options)
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
