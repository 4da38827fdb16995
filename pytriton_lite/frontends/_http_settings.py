"""HTTP routes of Triton's trace and logging extensions: GET shows, POST updates and shows the settings.

``GET|POST /v2/trace/setting``, ``/v2/models/{m}/trace/setting`` (a version in the path is 404, as Triton)
and ``/v2/logging``. The codecs are ``protocol/trace_json.py`` / ``logging_json.py``; the settings live in the
core (``DataPlane.trace_setting`` / ``log_settings``).
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Optional

from pytriton_lite.core.api import DataPlane
from pytriton_lite.frontends._http_request import _Answer, _Request, _respond_json
from pytriton_lite.protocol import logging_json, trace_json

EITHER = "GET|POST"  # the methods of these routes (HttpApp._check)
MAX_SETTINGS_BODY = 64 * 1024  # a settings document is a few hundred bytes


async def trace_setting(dataplane: DataPlane, request: _Request, name: str = "", version: str = "") -> None:
    if version:
        raise _Answer("Not Found", 404)
    changes = trace_json.decode_http(await request.body(MAX_SETTINGS_BODY)) if request.method == "POST" else None
    await _respond_json(request, dataplane.trace_setting(name, changes))


async def log_settings(dataplane: DataPlane, request: _Request) -> None:
    changes = logging_json.decode_http(await request.body(MAX_SETTINGS_BODY)) if request.method == "POST" else None
    await _respond_json(request, dataplane.log_settings(changes))


def add_routes(dataplane: DataPlane, exact: Dict[str, Any], model_actions: Dict[Optional[str], Any]) -> None:
    """Add the extensions' routes to ``HttpApp``'s tables: (method, access group, handler)."""
    exact["/v2/trace/setting"] = (EITHER, "trace", functools.partial(trace_setting, dataplane))
    exact["/v2/logging"] = (EITHER, "logging", functools.partial(log_settings, dataplane))
    model_actions["trace/setting"] = (EITHER, "trace", functools.partial(trace_setting, dataplane))


__all__ = ["EITHER", "add_routes", "trace_setting", "log_settings"]
