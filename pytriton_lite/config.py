"""``TritonConfig``, ``TritonLifecyclePolicy`` and ``TritonSecurityConfig`` (PyTriton 0.7 fields).

All ``TritonConfig`` fields default to None ("Triton's default"). ``from_env`` reads
``PYTRITON_TRITON_CONFIG_<FIELD>`` (lists as ``<FIELD>_<i>``) and, unlike PyTriton, parses booleans
properly: "false", "0", "no" and "off" are False.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import secrets
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from pytriton_lite.exceptions import PyTritonValidationError

if TYPE_CHECKING:
    from pytriton_lite.protocol.access import ApiKeys

LOGGER = logging.getLogger("pytriton_lite.triton")

ENV_PREFIX = "PYTRITON_TRITON_CONFIG_"
# Triton's default ports; the front ends and ``Triton`` read them from here.
DEFAULT_HTTP_PORT = 8000
DEFAULT_GRPC_PORT = 8001
DEFAULT_METRICS_PORT = 8002
DEFAULT_EXIT_TIMEOUT_S = 30

# Triton's API groups, in Triton's order: the names ``--http-restricted-api``, ``--grpc-restricted-protocol``
# and ``TritonSecurityConfig.restricted_endpoints`` accept (``protocol.access`` maps routes and RPCs to them).
TRITON_API_GROUPS = (
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
VALID_TRITON_ENDPOINTS = frozenset(TRITON_API_GROUPS)
DEFAULT_PROTECTED_ENDPOINTS = ["shared-memory", "model-repository", "statistics", "trace", "logging"]
TRITON_ACCESS_HEADER = "triton-access-token"


@dataclass
class TritonLifecyclePolicy:
    """When the server starts listening (``__enter__`` or ``run``/``serve``)."""

    launch_triton_on_startup: bool = True
    local_model_store: bool = False


DefaultTritonLifecyclePolicy = TritonLifecyclePolicy()
VertextAILifecyclePolicy = TritonLifecyclePolicy(launch_triton_on_startup=False, local_model_store=True)


@dataclass
class TritonSecurityConfig:
    """Who may call what (docs/security.md): PyTriton 0.7's access token, plus API keys.

    ``access_token`` guards ``restricted_endpoints`` (Triton's API groups) through the ``triton-access-token``
    header, as PyTriton does: ``None`` groups are the five default ones, ``[]`` restricts nothing, and a token is
    generated when something is restricted and none is given. Both are filled in here, at construction.

    API keys are checked besides (and independently of) the token, on ``api_key_groups`` (default: every group
    but health; add ``"health"`` or ``"metrics"`` to guard those too). They come from ``api_keys``, the
    environment variable named by ``api_keys_env`` (comma/space separated) and/or the file ``api_keys_file``
    (one per line, ``#`` comments), and travel as ``Authorization: Bearer <key>`` or ``<api_key_header>: <key>``.
    Secrets are left out of ``repr``.
    """

    access_token: Optional[str] = dataclasses.field(default=None, repr=False)
    restricted_endpoints: Optional[List[str]] = None
    api_keys: Optional[List[str]] = dataclasses.field(default=None, repr=False)
    api_keys_env: Optional[str] = None
    api_keys_file: Optional[pathlib.Path] = None
    api_key_header: str = "X-API-Key"
    api_key_groups: Optional[List[str]] = None

    def __post_init__(self) -> None:
        endpoints = DEFAULT_PROTECTED_ENDPOINTS if self.restricted_endpoints is None else self.restricted_endpoints
        self.restricted_endpoints = list(endpoints)
        invalid = sorted(set(self.restricted_endpoints) - VALID_TRITON_ENDPOINTS)
        if invalid:
            valid = ", ".join(sorted(VALID_TRITON_ENDPOINTS))
            raise PyTritonValidationError(f"Invalid endpoint names: {', '.join(invalid)}. Valid endpoints are: {valid}")
        token = self.access_token
        if token is not None and (
            not isinstance(token, str) or not token or not all("!" <= ch <= "~" and ch != ";" for ch in token)
        ):
            raise PyTritonValidationError(
                "access_token must be a non-empty string of printable ASCII without spaces or ';'"
            )
        if token is None and self.restricted_endpoints:
            self.access_token = secrets.token_urlsafe(32)
        self.read_api_keys()  # a bad key source fails here, not when the server starts

    def read_api_keys(self) -> Optional[ApiKeys]:
        """The API keys from every source, read now; None when no source is set (no key is required)."""
        from pytriton_lite.protocol.access import ApiKeys, check_api_key_groups, check_api_key_header, read_api_keys

        check_api_key_header(self.api_key_header)
        check_api_key_groups(self.api_key_groups)
        if self.api_keys is None and self.api_keys_env is None and self.api_keys_file is None:
            return None
        keys = read_api_keys(self.api_keys, self.api_keys_env, self.api_keys_file)
        if not keys:
            raise PyTritonValidationError("api_keys is empty: give at least one key, or leave it None")
        return ApiKeys(keys, self.api_key_header, self.api_key_groups)


def _kw_only_init(cls: Any) -> Any:
    """Make a dataclass keyword-only on Python 3.9 too (``dataclass(kw_only=True)`` is 3.10+)."""
    original = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:
            raise TypeError(f"{cls.__name__}() takes keyword arguments only")
        original(self, **kwargs)

    __init__.__doc__ = original.__doc__
    cls.__init__ = __init__
    return cls


@_kw_only_init
@dataclass
class TritonConfig:
    """Server configuration; every field is optional and keyword-only."""

    # one repository, or a list of them (tritonserver's repeatable --model-repository; names must be unique)
    model_repository: Optional[typing.Union[pathlib.Path, List[pathlib.Path]]] = None
    # model control of the repository (tritonserver's flags): "none" | "explicit" | "poll"; with
    # model_repository set and no mode, Triton() runs "explicit" with load_model=["*"] (as PyTriton does)
    model_control_mode: Optional[str] = None
    load_model: Optional[List[str]] = None
    repository_poll_secs: Optional[int] = None
    model_load_thread_count: Optional[int] = None
    id: Optional[str] = None
    log_verbose: Optional[int] = None
    log_file: Optional[pathlib.Path] = None
    exit_timeout_secs: Optional[int] = None
    exit_on_error: Optional[bool] = None
    strict_readiness: Optional[bool] = None
    allow_http: Optional[bool] = None
    http_address: Optional[str] = None
    http_port: Optional[int] = None
    http_header_forward_pattern: Optional[str] = None
    http_thread_count: Optional[int] = None
    http_restricted_api: Optional[str] = None
    # HTTP resource limits (docs/limits.md); None = the default in brackets
    http_max_input_size: Optional[int] = None  # request body bytes, on the wire and decompressed [64 MiB]
    http_max_header_size: Optional[int] = None  # request line + headers bytes [64 KiB] -> 431
    http_max_connections: Optional[int] = None  # open connections [half the open-file limit, <= 1000] -> 503
    http_keepalive_timeout_secs: Optional[float] = None  # idle connection, from accept or last response [75]
    http_header_timeout_secs: Optional[float] = None  # request head, from its first byte [10] -> 408
    http_body_timeout_secs: Optional[float] = None  # request body, from the end of its head [60] -> 408
    http_offload_bytes: Optional[int] = None  # bodies/responses this large are coded off the loop [1 MiB; 0 = never]
    # HTTPS (docs/limits.md): certificate and key in PEM; a root certificate requires client certificates
    http_ssl_cert: Optional[pathlib.Path] = None
    http_ssl_key: Optional[pathlib.Path] = None
    http_ssl_root_cert: Optional[pathlib.Path] = None
    allow_grpc: Optional[bool] = None
    grpc_address: Optional[str] = None
    grpc_port: Optional[int] = None
    grpc_header_forward_pattern: Optional[str] = None
    grpc_infer_allocation_pool_size: Optional[int] = None
    grpc_use_ssl: Optional[bool] = None
    grpc_use_ssl_mutual: Optional[bool] = None
    grpc_server_cert: Optional[pathlib.Path] = None
    grpc_server_key: Optional[pathlib.Path] = None
    grpc_root_cert: Optional[pathlib.Path] = None
    grpc_infer_response_compression_level: Optional[str] = None
    grpc_keepalive_time: Optional[int] = None
    grpc_keepalive_timeout: Optional[int] = None
    grpc_keepalive_permit_without_calls: Optional[bool] = None
    grpc_http2_max_pings_without_data: Optional[int] = None
    grpc_http2_min_recv_ping_interval_without_data: Optional[int] = None
    grpc_http2_max_ping_strikes: Optional[int] = None
    grpc_restricted_protocol: Optional[str] = None
    # gRPC resource limits (frontends/_grpc_guard.py, docs/limits.md); times in ms like grpc_keepalive_time
    grpc_max_connections: Optional[int] = None  # open connections; default 1000 or a quarter of the fd limit
    grpc_max_connection_idle: Optional[int] = None  # GOAWAY after this long without a call; default 30000
    grpc_max_connection_age: Optional[int] = None  # default: no maximum age
    grpc_max_connection_age_grace: Optional[int] = None
    grpc_handshake_timeout: Optional[int] = None  # a new connection's handshake deadline; default 10000
    grpc_max_concurrent_streams: Optional[int] = None  # per connection; default 1024
    grpc_max_receive_message_size: Optional[int] = None  # bytes; default 2**31-1, as Triton
    grpc_max_send_message_size: Optional[int] = None  # bytes; default 2**31-1, as Triton
    allow_metrics: Optional[bool] = None
    # pytriton_lite's live status page on the HTTP port (/status, /status/data); docs/operations.md
    allow_status_page: Optional[bool] = None
    allow_gpu_metrics: Optional[bool] = None
    allow_cpu_metrics: Optional[bool] = None
    metrics_interval_ms: Optional[int] = None
    metrics_port: Optional[int] = None
    metrics_address: Optional[str] = None
    allow_sagemaker: Optional[bool] = None
    sagemaker_port: Optional[int] = None
    sagemaker_safe_port_range: Optional[str] = None
    sagemaker_thread_count: Optional[int] = None
    allow_vertex_ai: Optional[bool] = None
    vertex_ai_port: Optional[int] = None
    vertex_ai_thread_count: Optional[int] = None
    vertex_ai_default_model: Optional[str] = None
    metrics_config: Optional[List[str]] = None
    trace_config: Optional[List[str]] = None
    cache_config: Optional[List[str]] = None
    cache_directory: Optional[str] = None
    buffer_manager_thread_count: Optional[int] = None
    # pytriton_lite: HTTP and gRPC parsed, checked and encoded in this many worker processes (docs/scaling.md);
    # 0 or None = in the serving process, as before
    frontend_workers: Optional[int] = None

    def __post_init__(self) -> None:
        if self.allow_http not in (True, None) and self.allow_grpc not in (True, None):
            raise PyTritonValidationError("The `http` or `grpc` endpoint has to be allowed.")

    def to_dict(self) -> Dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, config: Dict[str, Any]) -> TritonConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: Dict[str, Any] = {}
        for key, value in config.items():
            if key not in known:
                LOGGER.warning("Ignoring unknown TritonConfig field %r", key)
                continue
            values[key] = _cast(_field_type(key), value, key)
        return cls(**values)

    @classmethod
    def from_env(cls) -> TritonConfig:
        raw: Dict[str, Any] = {}
        lists: Dict[str, Dict[int, str]] = {}
        list_fields = {name for name in _field_names() if _is_list(_field_type(name))}
        for env_key, value in os.environ.items():
            if not env_key.startswith(ENV_PREFIX):
                continue
            key = env_key[len(ENV_PREFIX) :].lower()
            base, _, index = key.rpartition("_")
            if base in list_fields and index.isdigit():
                lists.setdefault(base, {})[int(index)] = value
            else:
                raw[key] = value
        for key, items in lists.items():
            raw[key] = [items[i] for i in sorted(items)]
        return cls.from_dict(raw)

    def merged_over(self, base: TritonConfig) -> TritonConfig:
        """``base`` with every non-None field of ``self`` on top (explicit config wins over env)."""
        values = base.to_dict()
        values.update(self.to_dict())
        return TritonConfig(**values)


def frontend_worker_count(config: TritonConfig) -> int:
    """``config.frontend_workers`` checked: a whole number >= 0 (None = 0)."""
    value = config.frontend_workers
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PyTritonValidationError(f"frontend_workers must be a whole number >= 0, got {value!r}")
    return value


def _field_names() -> List[str]:
    return [f.name for f in dataclasses.fields(TritonConfig)]


_HINTS: Dict[str, Any] = {}


def _field_type(name: str) -> Any:
    if not _HINTS:
        _HINTS.update(typing.get_type_hints(TritonConfig))
    hint = _HINTS[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _is_list(tp: Any) -> bool:
    return typing.get_origin(tp) in (list, List)


def parse_bool(value: Any, key: str = "value") -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "y", "t"):
        return True
    if text in ("0", "false", "no", "off", "n", "f", ""):
        return False
    raise PyTritonValidationError(f"Cannot parse {key}={value!r} as a boolean")


def _cast(tp: Any, value: Any, key: str) -> Any:
    if value is None:
        return None
    if tp is bool:
        return parse_bool(value, key)
    if tp is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise PyTritonValidationError(f"Cannot parse {key}={value!r} as an integer") from None
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise PyTritonValidationError(f"Cannot parse {key}={value!r} as a number") from None
    if tp is pathlib.Path:  # model_repository may name several folders
        return [pathlib.Path(v) for v in value] if isinstance(value, (list, tuple)) else pathlib.Path(value)
    if _is_list(tp):
        return list(value) if isinstance(value, (list, tuple)) else [str(value)]
    return str(value)


__all__ = [
    "TritonConfig",
    "TritonLifecyclePolicy",
    "DefaultTritonLifecyclePolicy",
    "VertextAILifecyclePolicy",
    "TritonSecurityConfig",
    "TRITON_ACCESS_HEADER",
    "VALID_TRITON_ENDPOINTS",
    "DEFAULT_PROTECTED_ENDPOINTS",
    "parse_bool",
]
