"""Codecs of Triton's trace extension: ``/v2[/models/{m}]/trace/setting`` JSON and the TraceSetting RPC.

Pure: settings travel as plain dicts. A request becomes ``{key: value}`` (``None`` = clear that setting;
``trace_level`` a list of strings, the others strings); the core (``core/trace.py``) validates and applies it
and hands back Triton's view (string values, ``trace_level`` a list), which is encoded here.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

from tritonclient.grpc import service_pb2

from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol.http_codec import loads_json


def parse_json_object(body: bytes, what: str) -> Dict[str, Any]:
    """The JSON object of a settings POST (an empty body is ``{}``); 400 for anything else."""
    if not body.strip():
        return {}
    try:
        document = loads_json(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgumentError(f"failed to parse the request JSON buffer for {what}: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidArgumentError(f"failed to parse the request JSON buffer for {what}: expected a JSON object")
    return document


def decode_http(body: bytes) -> Dict[str, Any]:
    """A POST body: ``{"trace_rate": "10", "trace_level": ["TIMESTAMPS"], "trace_count": null, ...}``."""
    return parse_json_object(body, "trace settings")


def decode_grpc(request: Any) -> Tuple[str, Optional[Dict[str, Any]]]:
    """(model name, changes) of a ``TraceSettingRequest``; changes are None when it sets nothing (a GET).

    A setting given with no value clears it; ``trace_level`` keeps its list, the others take their one value.
    """
    if not request.settings:
        return request.model_name, None
    changes: Dict[str, Any] = {}
    for key, setting in request.settings.items():
        values = list(setting.value)
        if not values:
            changes[key] = None
        elif key == "trace_level":
            changes[key] = values
        else:
            changes[key] = values[0] if len(values) == 1 else values
    return request.model_name, changes


def encode_grpc(settings: Mapping[str, Any]) -> Any:
    """A ``TraceSettingResponse`` holding Triton's view of the settings."""
    response = service_pb2.TraceSettingResponse()
    for key, value in settings.items():
        response.settings[key].value.extend(value if isinstance(value, list) else [str(value)])
    return response


__all__ = ["decode_http", "decode_grpc", "encode_grpc", "parse_json_object"]
