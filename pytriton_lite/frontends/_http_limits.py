"""Resource limits of an HTTP connection and the refusals that enforce them (docs/limits.md).

``HttpLimits`` is what ``_http_protocol.HardenedHttpProtocol`` enforces before the application sees a
request: idle, head and body deadlines, a connection cap, head and body sizes, and the body size above which
the codec runs on a worker thread. ``refusal`` renders the complete response the protocol writes itself
(``{"error": ...}`` and ``connection: close``) when it refuses one.
"""

from __future__ import annotations

import http
import json
import os
import ssl
from dataclasses import dataclass
from typing import Any, Dict, Optional

from pytriton_lite.protocol.http_codec import DEFAULT_MAX_INPUT_SIZE  # Triton's --http-max-input-size

DEFAULT_KEEPALIVE_TIMEOUT_S = 75.0  # tritonclient and perf_analyzer keep pooled connections open for long
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 60.0
DEFAULT_MAX_HEADER_SIZE = 64 * 1024
DEFAULT_OFFLOAD_BYTES = 1 << 20
_MAX_CONNECTIONS_CAP = 1000


def default_max_connections() -> int:
    """Half the process's open-file limit, at most 1000: accepting never runs the process out of descriptors
    (gRPC, files and the other front ends need theirs)."""
    try:
        import resource  # POSIX only

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return _MAX_CONNECTIONS_CAP
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return _MAX_CONNECTIONS_CAP
    return max(16, min(_MAX_CONNECTIONS_CAP, soft // 2))


@dataclass(frozen=True)
class HttpLimits:
    """One HTTP server's limits. Times in seconds, sizes in bytes; ``max_body_size`` None = unbounded,
    ``offload_bytes`` 0 = never off the loop."""

    keepalive_timeout_s: float = DEFAULT_KEEPALIVE_TIMEOUT_S
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    max_connections: int = _MAX_CONNECTIONS_CAP
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE
    max_body_size: Optional[int] = DEFAULT_MAX_INPUT_SIZE
    offload_bytes: int = DEFAULT_OFFLOAD_BYTES
    # the server-wide connection cap a refusal names when front-end workers split it (None: max_connections)
    announced_connections: Optional[int] = None

    def __post_init__(self) -> None:
        for name in ("keepalive_timeout_s", "header_timeout_s", "body_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HTTP {name} must be a positive number of seconds, got {getattr(self, name)!r}")
        if self.max_connections < 1 or self.max_header_size < 1024:
            raise ValueError("HTTP max_connections must be >= 1 and max_header_size >= 1024 bytes")
        if self.max_body_size is not None and self.max_body_size < 1:
            raise ValueError(f"HTTP max input size must be positive, got {self.max_body_size}")
        if self.offload_bytes < 0:
            raise ValueError(f"HTTP offload size must be >= 0, got {self.offload_bytes}")

    @classmethod
    def from_triton_config(cls, config: Any, workers: int = 1) -> HttpLimits:
        """The ``http_*`` limit fields of a ``TritonConfig`` (read with getattr; None keeps the default).

        ``workers`` > 1: this is one of that many front-end workers, so a configured connection cap is split
        between them (rounded up); the default cap, from this process's open-file limit, is not."""

        def pick(field: str, default: Any) -> Any:
            value = getattr(config, field, None)
            return default if value is None else value

        max_input = pick("http_max_input_size", DEFAULT_MAX_INPUT_SIZE)
        configured = getattr(config, "http_max_connections", None)
        max_connections = int(configured) if configured is not None else default_max_connections()
        announced = None
        if configured is not None and workers > 1:
            max_connections, announced = -(-int(configured) // workers), int(configured)
        return cls(
            keepalive_timeout_s=float(pick("http_keepalive_timeout_secs", DEFAULT_KEEPALIVE_TIMEOUT_S)),
            header_timeout_s=float(pick("http_header_timeout_secs", DEFAULT_HEADER_TIMEOUT_S)),
            body_timeout_s=float(pick("http_body_timeout_secs", DEFAULT_BODY_TIMEOUT_S)),
            max_connections=max_connections,
            announced_connections=announced,
            max_header_size=int(pick("http_max_header_size", DEFAULT_MAX_HEADER_SIZE)),
            max_body_size=int(max_input) if max_input else None,
            offload_bytes=int(pick("http_offload_bytes", DEFAULT_OFFLOAD_BYTES)),
        )


def tls_options(cert: Any, key: Any, root_cert: Any = None) -> Dict[str, Any]:
    """uvicorn's SSL options for a certificate and key; a root certificate makes client certificates required."""
    if not cert and not key:
        if root_cert:
            raise ValueError("http_ssl_root_cert needs http_ssl_cert and http_ssl_key")
        return {}
    if not cert or not key:
        raise ValueError("HTTPS needs both http_ssl_cert and http_ssl_key")
    for label, path in (("http_ssl_cert", cert), ("http_ssl_key", key), ("http_ssl_root_cert", root_cert)):
        if path and not os.path.isfile(path):
            raise ValueError(f"{label} {str(path)!r} is not a readable file")
    options: Dict[str, Any] = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    if root_cert:
        options["ssl_ca_certs"] = str(root_cert)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def body_too_large(size: Optional[int], limit: int) -> str:
    """The 413 text; ``size`` None while a chunked body is still streaming."""
    what = f"request body of {size} bytes" if size is not None else "chunked request body"
    return (
        f"{what} exceeds the maximum allowed input size of {limit} bytes "
        "(TritonConfig.http_max_input_size, --http-max-input-size)"
    )


def refusal(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response with ``{"error": message}`` that announces ``connection: close``."""
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


__all__ = ["HttpLimits", "body_too_large", "default_max_connections", "refusal", "tls_options"]
