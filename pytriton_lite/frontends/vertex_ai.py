"""Triton's Vertex AI mode (``TritonConfig(allow_vertex_ai=True)``): a prediction route and a health route on
their own port, in front of the v2 HTTP routes.

Vertex AI runs a custom container with ``AIP_PREDICT_ROUTE``, ``AIP_HEALTH_ROUTE`` and ``AIP_HTTP_PORT`` set;
tritonserver (and so PyTriton) serves:

- ``GET <AIP_HEALTH_ROUTE>``: the server's readiness (as ``GET /v2/health/ready``);
- ``POST <AIP_PREDICT_ROUTE>``: a v2 inference request (JSON, or JSON plus binary tensors when the content type
  is ``application/vnd.vertex-ai-triton.binary+json;json-header-size=<n>``) for the default model, which is
  ``vertex_ai_default_model`` or else the only model served; with an ``X-Vertex-Ai-Triton-Redirect: <path>``
  header the request goes to that v2 route instead (``v2/models/<name>/infer`` for another model, for instance).

The port is ``vertex_ai_port``, else ``AIP_HTTP_PORT``, else 8080. This module rewrites the request and hands it
to the v2 application it is given (it imports no other front end), so answers are the HTTP front end's own.
"""

from __future__ import annotations

import json
import os
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from pytriton_lite._echo import echo
from pytriton_lite.core.api import DataPlane
from pytriton_lite.exceptions import PyTritonValidationError
from pytriton_lite.frontends._uvicorn import EmbeddedServer

ASGIApp = Callable[[Dict[str, Any], Any, Any], Awaitable[None]]

DEFAULT_VERTEX_AI_PORT = 8080
BINARY_MIME = "application/vnd.vertex-ai-triton.binary+json"
REDIRECT_HEADER = b"x-vertex-ai-triton-redirect"
_HEADER_SIZE = "json-header-size="
_INFERENCE_HEADER = b"inference-header-content-length"
NO_DEFAULT_MODEL = "Expect the model repository contains only a single model if default model is not specified"


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def routes_from_env(environ: Optional[Dict[str, str]] = None) -> Tuple[str, str]:
    """(predict route, health route) from ``AIP_PREDICT_ROUTE`` / ``AIP_HEALTH_ROUTE``; tritonserver's start-up
    errors (with its spelling) when one is missing."""
    env = os.environ if environ is None else environ
    predict, health = env.get("AIP_PREDICT_ROUTE"), env.get("AIP_HEALTH_ROUTE")
    if not predict:
        raise PyTritonValidationError(
            "API_PREDICT_ROUTE is not defined for Vertex AI endpoint: allow_vertex_ai needs the AIP_PREDICT_ROUTE "
            "environment variable (the path Vertex AI posts predictions to, e.g. /predict)"
        )
    if not health:
        raise PyTritonValidationError(
            "API_HEALTH_ROUTE is not defined for Vertex AI endpoint: allow_vertex_ai needs the AIP_HEALTH_ROUTE "
            "environment variable (the path Vertex AI checks health on, e.g. /health)"
        )
    return predict, health


def vertex_ai_port(config: Any, environ: Optional[Dict[str, str]] = None) -> int:
    """``vertex_ai_port``, else ``AIP_HTTP_PORT``, else 8080 (tritonserver's order)."""
    port = getattr(config, "vertex_ai_port", None)
    if port is not None:
        return int(port)
    env = os.environ if environ is None else environ
    value = env.get("AIP_HTTP_PORT")
    if value:
        try:
            return int(value)
        except ValueError:
            raise PyTritonValidationError(f"AIP_HTTP_PORT must be a port number, got {value!r}") from None
    return DEFAULT_VERTEX_AI_PORT


def binary_header_length(content_type: str) -> Optional[str]:
    """The JSON header's length from a Vertex AI binary content type; None for a plain JSON body."""
    lowered = content_type.strip().lower()
    if BINARY_MIME not in lowered:
        return None
    mime, _, params = lowered.partition(";")
    if mime.strip() != BINARY_MIME:
        raise _Refusal(400, f"Unexpected content type for Vertex AI binary data: '{echo(content_type)}'")
    for param in params.split(";"):
        param = param.strip()
        if param.startswith(_HEADER_SIZE):
            size = param[len(_HEADER_SIZE) :]
            if not size.isdigit():
                raise _Refusal(400, f"Unable to parse json-header-size '{echo(size)}': expected a non-negative integer")
            return size
    raise _Refusal(400, f"{BINARY_MIME} needs a json-header-size parameter")


class VertexAiApp:
    """ASGI: the health and prediction routes, rewritten onto ``v2_app``; everything else is 404."""

    def __init__(
        self,
        dataplane: DataPlane,
        v2_app: ASGIApp,
        *,
        predict_route: str,
        health_route: str,
        default_model: Optional[str] = None,
    ) -> None:
        self.dataplane = dataplane
        self.v2_app = v2_app
        self.predict_route = predict_route
        self.health_route = health_route
        self.default_model = default_model or None

    def _default_model(self) -> str:
        # Resolved per request: models may be bound after the server starts (tritonserver decides at start).
        if self.default_model is not None:
            return self.default_model
        names = sorted({model.name for model in self.dataplane.models()})
        if len(names) == 1:
            return names[0]
        served = ", ".join(repr(n) for n in names) if names else "none"
        raise _Refusal(400, f"{NO_DEFAULT_MODEL} (models served: {served}; set vertex_ai_default_model)")

    def _rewrite(self, scope: Dict[str, Any]) -> Dict[str, Any]:
        path = scope["path"]
        headers: List[Tuple[bytes, bytes]] = list(scope["headers"])
        if path == self.health_route:
            target = "/v2/health/ready"
        elif path == self.predict_route:
            redirect = next((v for k, v in headers if k == REDIRECT_HEADER), None)
            if redirect is not None:
                target = "/" + redirect.decode("latin-1").strip().lstrip("/")
            else:
                target = f"/v2/models/{self._default_model()}/infer"
            content_type = next((v for k, v in headers if k == b"content-type"), b"").decode("latin-1")
            size = binary_header_length(content_type)
            if size is not None:
                headers = [(k, v) for k, v in headers if k != _INFERENCE_HEADER]
                headers.append((_INFERENCE_HEADER, size.encode()))
        else:
            raise _Refusal(404, "Not Found")
        return {**scope, "path": target, "raw_path": target.encode("latin-1"), "headers": headers}

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            rewritten = self._rewrite(scope)
        except _Refusal as refusal:
            body = json.dumps({"error": str(refusal)}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.v2_app(rewritten, receive, send)


class VertexAiFrontend:
    """The Vertex AI port: an embedded uvicorn server running a ``VertexAiApp``."""

    def __init__(self, app: VertexAiApp, *, host: str = "0.0.0.0", port: int = DEFAULT_VERTEX_AI_PORT) -> None:
        self.app = app
        self.host = host
        self.requested_port = int(port)
        self._server = EmbeddedServer(app, label="Vertex AI", host=host, port=self.requested_port, backlog=512)

    @property
    def port(self) -> Optional[int]:
        return self._server.port

    @classmethod
    def from_triton_config(cls, dataplane: DataPlane, config: Any, v2_app: ASGIApp) -> VertexAiFrontend:
        """Routes from the ``AIP_*`` environment (checked now, at start, as tritonserver does)."""
        predict, health = routes_from_env()
        app = VertexAiApp(
            dataplane,
            v2_app,
            predict_route=predict,
            health_route=health,
            default_model=getattr(config, "vertex_ai_default_model", None),
        )
        host = getattr(config, "http_address", None) or "0.0.0.0"
        return cls(app, host=host, port=vertex_ai_port(config))

    def require_api_keys(self, keys: Any) -> None:
        """Check ``keys`` as the v2 application does on the routes requests are rewritten to."""
        if hasattr(self.app.v2_app, "api_keys"):
            self.app.v2_app.api_keys = keys

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()


__all__ = ["VertexAiApp", "VertexAiFrontend", "routes_from_env", "vertex_ai_port", "BINARY_MIME"]
