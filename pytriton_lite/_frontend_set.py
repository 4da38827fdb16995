"""The front ends of one ``Triton``: which to build from its ``TritonConfig``, and starting them all or none.

Every front end is built before any starts, so a configuration error leaves no port open; a busy port stops the
ones already started and names every port that was busy.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine, List, Optional, Tuple

from pytriton_lite.config import DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, DEFAULT_METRICS_PORT, TritonConfig
from pytriton_lite.core.dataplane import InProcessDataPlane
from pytriton_lite.exceptions import PyTritonError
from pytriton_lite.frontends.grpc import GrpcFrontend
from pytriton_lite.frontends.http import HttpApp, HttpFrontend
from pytriton_lite.frontends.metrics import MetricsFrontend
from pytriton_lite.frontends.vertex_ai import VertexAiFrontend, vertex_ai_port

LOGGER = logging.getLogger("pytriton_lite.triton")

HUNG_EXIT_S = 1.0  # what each closing step gets once exit_timeout_secs passed with requests still running


class _VertexAi:
    """Builds the Vertex AI front end over a v2 application of its own (tritonserver's Vertex AI server is an
    HTTP server too, whatever ``allow_http`` says)."""

    @staticmethod
    def from_triton_config(dataplane: InProcessDataPlane, config: TritonConfig) -> VertexAiFrontend:
        v2_app = HttpApp(dataplane, restricted_api=config.http_restricted_api)
        return VertexAiFrontend.from_triton_config(dataplane, config, v2_app)


def frontend_specs(cfg: TritonConfig, in_workers: bool = False) -> List[Tuple[str, Any, int]]:
    """(kind, builder, requested port) of every front end the config asks for in this process (``in_workers``:
    HTTP and gRPC are served by front-end worker processes instead)."""
    specs: List[Tuple[str, Any, int]] = []
    if cfg.allow_http is not False and not in_workers:
        specs.append(("http", HttpFrontend, cfg.http_port if cfg.http_port is not None else DEFAULT_HTTP_PORT))
    if cfg.allow_grpc is not False and not in_workers:
        specs.append(("grpc", GrpcFrontend, cfg.grpc_port if cfg.grpc_port is not None else DEFAULT_GRPC_PORT))
    if cfg.allow_metrics is not False:
        port = cfg.metrics_port if cfg.metrics_port is not None else DEFAULT_METRICS_PORT
        specs.append(("metrics", MetricsFrontend, port))
    if cfg.allow_vertex_ai:
        specs.append(("vertex_ai", _VertexAi, vertex_ai_port(cfg)))
    return specs


async def start_frontends(
    dataplane: InProcessDataPlane,
    config: TritonConfig,
    api_keys: Any,
    status_page: Optional[Callable[[], Any]],
    in_workers: bool = False,
) -> List[Tuple[str, Any]]:
    """Build every front end, then start them; (kind, front end) of each, or PyTritonError naming busy ports."""
    started: List[Tuple[str, Any]] = []
    busy: List[str] = []
    # all built before any starts: a configuration error then leaves no port open
    specs = frontend_specs(config, in_workers)
    built = [(kind, port, cls.from_triton_config(dataplane, config)) for kind, cls, port in specs]
    for kind, port, frontend in built:
        if api_keys is not None:
            frontend.require_api_keys(api_keys)
        if kind == "http" and status_page is not None:
            frontend.app.enable_status_page(status_page)
        try:
            await frontend.start()
        except OSError as exc:
            busy.append(f"{kind} port {port} ({exc.strerror or exc})")
            continue
        started.append((kind, frontend))
    if busy:
        for _, frontend in started:
            await frontend.stop()
        raise PyTritonError("Cannot start the server: " + "; ".join(busy))
    return started


async def bounded(steps: List[Coroutine[Any, Any, Any]], timeout: Optional[float], what: str) -> None:
    """Run ``steps`` together; after ``timeout`` s (None: no bound) cancel what is left, logging it."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            LOGGER.error("Error while %s", what, exc_info=task.exception())
    if pending:
        LOGGER.warning("Still %s after %.1f s; cancelled", what, timeout)
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=HUNG_EXIT_S)


__all__ = ["HUNG_EXIT_S", "bounded", "frontend_specs", "start_frontends"]
