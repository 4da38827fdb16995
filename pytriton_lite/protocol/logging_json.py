"""Codecs of Triton's logging extension: ``/v2/logging`` JSON and the LogSettings RPC.

Pure: a request becomes ``{key: value}`` (JSON types as sent; over gRPC the oneof's value, None when unset);
the core (``core/log_settings.py``) validates and applies it and hands back the settings, encoded here.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

from tritonclient.grpc import service_pb2

from pytriton_lite.protocol.trace_json import parse_json_object


def decode_http(body: bytes) -> Dict[str, Any]:
    """A POST body: ``{"log_info": false, "log_verbose_level": 1, "log_format": "ISO8601", ...}``."""
    return parse_json_object(body, "log settings")


def decode_grpc(request: Any) -> Dict[str, Any]:
    """The changes of a ``LogSettingsRequest`` (an empty one is a GET)."""
    changes: Dict[str, Any] = {}
    for key, setting in request.settings.items():
        choice = setting.WhichOneof("parameter_choice")
        changes[key] = None if choice is None else getattr(setting, choice)
    return changes


def encode_grpc(settings: Mapping[str, Any]) -> Any:
    """A ``LogSettingsResponse``: booleans as ``bool_param``, the verbose level as ``uint32_param``."""
    response = service_pb2.LogSettingsResponse()
    for key, value in settings.items():
        if isinstance(value, bool):
            response.settings[key].bool_param = value
        elif isinstance(value, int):
            response.settings[key].uint32_param = value
        else:
            response.settings[key].string_param = str(value)
    return response


__all__ = ["decode_http", "decode_grpc", "encode_grpc"]
