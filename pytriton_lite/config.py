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
import typing
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from pytriton_lite.exceptions import PyTritonValidationError

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
    """Access-token settings of PyTriton 0.7 (accepted and validated; see docs/protocol.md)."""

    access_token: Optional[str] = None
    restricted_endpoints: Optional[List[str]] = None

    def __post_init__(self) -> None:
        if self.restricted_endpoints is not None:
            invalid = sorted(set(self.restricted_endpoints) - VALID_TRITON_ENDPOINTS)
            if invalid:
                raise PyTritonValidationError(f"Invalid endpoint names: {', '.join(invalid)}")


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

    model_repository: Optional[pathlib.Path] = None
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
    allow_metrics: Optional[bool] = None
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
    if tp is pathlib.Path:
        return pathlib.Path(value)
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
