"""What keeps one gRPC client from hurting the others: the server's resource options and tolerant parsing
(and the server's TLS credentials, read from their files).

``server_options`` turns ``GrpcLimits`` (read from ``TritonConfig``) into grpc core channel arguments:
a cap on open connections (grpc closes the ones over it at once), a deadline for a new connection's
handshake (a socket that never speaks HTTP/2 is closed), an idle timeout (a connection with no call for
that long gets a GOAWAY, which a client answers by reconnecting on its next call), an optional maximum
age, a cap on concurrent streams per connection, and the message size limits both ways.

``tolerant`` wraps a request deserialiser so that bytes which are not the expected protobuf become a
``Malformed`` marker instead of an exception: grpc would answer an exception with UNKNOWN and the
exception's class name, and end a whole ModelStreamInfer call; the handlers answer the marker with
INVALID_ARGUMENT (unary) or an in-stream error for that one message (streams).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Callable, List, Optional, Tuple, Union

import grpc

from pytriton_lite.exceptions import InvalidArgumentError, PyTritonError

__all__ = [
    "MAX_MESSAGE_SIZE",
    "GrpcLimits",
    "Malformed",
    "default_max_connections",
    "server_credentials",
    "server_options",
    "tolerant",
]

MAX_MESSAGE_SIZE = 2**31 - 1  # Triton's (and tritonclient's) gRPC message limit both ways
DEFAULT_MAX_CONNECTION_IDLE_MS = 30_000
DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000  # grpc's own is 120 s; a silent socket holds a connection slot this long
DEFAULT_MAX_CONCURRENT_STREAMS = 1024  # per connection; a client over it waits for a free stream
_MAX_CONNECTIONS_CAP = 1000


def default_max_connections() -> int:
    """1,000 open gRPC connections, or a quarter of the process's file limit when that is lower
    (the HTTP front end, the models and the logs need descriptors too)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return _MAX_CONNECTIONS_CAP
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return _MAX_CONNECTIONS_CAP
    return max(16, min(_MAX_CONNECTIONS_CAP, soft // 4))


@dataclasses.dataclass(frozen=True)
class GrpcLimits:
    """Resource limits of the gRPC server; None leaves grpc's own behaviour (0 for a timeout: none)."""

    max_connections: Optional[int] = None  # None: ``default_max_connections()``; 0: no limit
    max_connection_idle_ms: Optional[int] = DEFAULT_MAX_CONNECTION_IDLE_MS
    max_connection_age_ms: Optional[int] = None
    max_connection_age_grace_ms: Optional[int] = None
    handshake_timeout_ms: Optional[int] = DEFAULT_HANDSHAKE_TIMEOUT_MS
    max_concurrent_streams: Optional[int] = DEFAULT_MAX_CONCURRENT_STREAMS
    max_receive_message_size: int = MAX_MESSAGE_SIZE
    max_send_message_size: int = MAX_MESSAGE_SIZE

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise PyTritonError(f"Invalid gRPC limit {field.name}={value!r}: expected a non-negative integer")
        for name in ("max_receive_message_size", "max_send_message_size"):
            if not 0 < getattr(self, name) <= MAX_MESSAGE_SIZE:
                raise PyTritonError(f"Invalid gRPC limit {name}: expected 1 to {MAX_MESSAGE_SIZE} bytes")

    @classmethod
    def from_config(cls, config: Any) -> GrpcLimits:
        """The ``grpc_*`` limit fields of a ``TritonConfig`` (read with getattr; unset ones keep the defaults)."""
        values = {}
        for field, name in (
            ("max_connections", "grpc_max_connections"),
            ("max_connection_idle_ms", "grpc_max_connection_idle"),
            ("max_connection_age_ms", "grpc_max_connection_age"),
            ("max_connection_age_grace_ms", "grpc_max_connection_age_grace"),
            ("handshake_timeout_ms", "grpc_handshake_timeout"),
            ("max_concurrent_streams", "grpc_max_concurrent_streams"),
            ("max_receive_message_size", "grpc_max_receive_message_size"),
            ("max_send_message_size", "grpc_max_send_message_size"),
        ):
            value = getattr(config, name, None)
            if value is not None:
                values[field] = int(value)
        return cls(**values)


def server_options(limits: GrpcLimits) -> List[Tuple[str, Any]]:
    """grpc core channel arguments for ``limits``."""
    options: List[Tuple[str, Any]] = [
        ("grpc.max_send_message_length", limits.max_send_message_size),
        ("grpc.max_receive_message_length", limits.max_receive_message_size),
    ]
    connections = default_max_connections() if limits.max_connections is None else limits.max_connections
    if connections:
        options.append(("grpc.max_allowed_incoming_connections", connections))
    for key, value in (
        ("grpc.max_connection_idle_ms", limits.max_connection_idle_ms),
        ("grpc.max_connection_age_ms", limits.max_connection_age_ms),
        ("grpc.max_connection_age_grace_ms", limits.max_connection_age_grace_ms),
        ("grpc.server_handshake_timeout_ms", limits.handshake_timeout_ms),
        ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
    ):
        if value:  # 0 or None: grpc's default (no idle/age limit, 120 s handshake, unlimited streams)
            options.append((key, value))
    return options


class Malformed:
    """A request whose bytes did not parse; it quacks like an empty ModelInferRequest for the stream's
    bookkeeping (model name, version, id) and ``error()`` is what the client is told."""

    __slots__ = ("type_name",)
    model_name = ""
    model_version = ""
    id = ""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def error(self) -> InvalidArgumentError:
        return InvalidArgumentError(f"malformed request: the message is not a valid {self.type_name} protobuf message")


def tolerant(parse: Callable[[bytes], Any], type_name: str) -> Callable[[bytes], Any]:
    """``parse``, returning ``Malformed(type_name)`` for bytes it cannot parse instead of raising."""

    def parse_or_mark(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception:  # noqa: BLE001 - DecodeError and anything else: the bytes are the client's fault
            return Malformed(type_name)

    return parse_or_mark


def _read_file(path: Union[None, str, pathlib.Path], what: str) -> Optional[bytes]:
    if path is None:
        return None
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise PyTritonError(f"Cannot read gRPC {what} {str(path)!r}: {exc}") from exc


def server_credentials(
    server_cert: Union[None, str, pathlib.Path],
    server_key: Union[None, str, pathlib.Path],
    root_cert: Union[None, str, pathlib.Path],
    mutual: bool,
) -> grpc.ServerCredentials:
    """TLS credentials from PEM files (``mutual``: clients must present a certificate signed by ``root_cert``)."""
    cert = _read_file(server_cert, "server certificate")
    key = _read_file(server_key, "server key")
    if cert is None or key is None:
        raise PyTritonError("grpc_use_ssl needs grpc_server_cert and grpc_server_key")
    root = _read_file(root_cert, "root certificate")
    if mutual and root is None:
        raise PyTritonError("grpc_use_ssl_mutual needs grpc_root_cert")
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=root, require_client_auth=mutual)
