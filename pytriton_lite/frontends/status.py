"""A live status page on the HTTP port: ``GET /status`` (HTML) and ``GET /status/data`` (its JSON).

Off the hot path: a small starlette app that the HTTP front end hands ``/status`` paths to, answered from the data
plane's snapshots (no counter of its own). The page is one self-contained HTML document (inline CSS and script, no
CDN: it works on an air-gapped machine); its script polls ``/status/data`` and turns the deltas of the cumulative
counters into rates, p50/p99 latency (from the fixed latency buckets of ``core.stats``) and per-instance busy time.

``/status/data`` is behind the access policy as the ``statistics`` group (the HTTP front end checks it); the HTML
shell carries no data and is open. With a restricted ``statistics`` group, open ``/status?token=TOKEN`` (or
``?api_key=KEY``): the script sends it as the ``triton-access-token`` (or ``Authorization: Bearer``) header.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any, Callable, Dict, List

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pytriton_lite.core.api import DataPlane
from pytriton_lite.core.stats import LATENCY_BOUNDS_US
from pytriton_lite.types import ModelInfo, StatsSnapshot

STATUS_PATHS = ("/status", "/status/")
DATA_PATH = "/status/data"
_PAGE = pathlib.Path(__file__).with_name("status_page.html")


def _batcher(info: ModelInfo) -> Dict[str, Any]:
    config = info.config
    if info.max_batch_size <= 0:
        return {"kind": "none"}
    if not config.HasField("dynamic_batching"):
        return {"kind": "default (one request per execution)"}
    dynamic = config.dynamic_batching
    out: Dict[str, Any] = {
        "kind": "dynamic",
        "max_queue_delay_us": int(dynamic.max_queue_delay_microseconds),
        "preferred_batch_size": [int(s) for s in dynamic.preferred_batch_size],
        "preserve_ordering": bool(dynamic.preserve_ordering),
        "priority_levels": int(dynamic.priority_levels),
    }
    if dynamic.HasField("default_queue_policy"):
        policy = dynamic.default_queue_policy
        out["max_queue_size"] = int(policy.max_queue_size)
        out["default_timeout_us"] = int(policy.default_timeout_microseconds)
    return out


def _instances(info: ModelInfo) -> List[Dict[str, Any]]:
    groups = []
    for group in info.config.instance_group:
        kind = group.Kind.Name(group.kind).replace("KIND_", "")
        groups.append({"count": int(group.count or 1), "kind": kind, "gpus": [int(g) for g in group.gpus]})
    return groups


def _tensors(tensors: Any) -> List[Dict[str, Any]]:
    return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in tensors]


def _stats(snapshot: StatsSnapshot) -> Dict[str, Any]:
    return {
        "success": snapshot.success.count,
        "success_us": snapshot.success.ns // 1000,
        "failures": dict(snapshot.failures),
        "inference_count": snapshot.inference_count,
        "execution_count": snapshot.execution_count,
        "pending": snapshot.pending,
        "queued": snapshot.queued,
        "queue_us": snapshot.queue.ns // 1000,
        "compute_infer_us": snapshot.compute_infer.ns // 1000,
        "batch_sizes": [[size, count] for size, count in snapshot.batch_size_histogram],
        "latency_buckets": list(snapshot.latency_histogram),
        "instance_busy_us": [[index, ns // 1000] for index, ns in snapshot.instance_busy_ns],
    }


def status_data(dataplane: DataPlane, server: Dict[str, Any], now: float) -> Dict[str, Any]:
    """Everything the page shows, as plain JSON: the server, and every model version with its live counters."""
    stats = {(s.name, s.version): s for s in dataplane.all_statistics()}
    models = []
    for info in dataplane.models():
        config = info.config
        snapshot = stats.get((info.name, info.version))
        models.append(
            {
                "name": info.name,
                "version": info.version_str,
                "state": info.state.value,
                "reason": info.reason,
                "backend": config.backend or config.platform,
                "max_batch_size": info.max_batch_size,
                "decoupled": info.decoupled,
                "inputs": _tensors(info.inputs),
                "outputs": _tensors(info.outputs),
                "batcher": _batcher(info),
                "instances": _instances(info),
                "stats": None if snapshot is None else _stats(snapshot),
            }
        )
    return {
        "time": now,
        "server": {**server, "id": dataplane.server_id},
        "latency_bounds_us": list(LATENCY_BOUNDS_US),
        "models": models,
    }


class StatusPage:
    """The ASGI app for ``/status`` and ``/status/data``; ``server_info`` gives version, ports, auth, start time."""

    def __init__(self, dataplane: DataPlane, server_info: Callable[[], Dict[str, Any]]) -> None:
        self.dataplane = dataplane
        self.server_info = server_info
        self.started = time.time()
        self._html = _PAGE.read_bytes()
        self.app = Starlette(
            routes=[
                Route("/status", self._page, methods=["GET"]),
                Route("/status/", self._page, methods=["GET"]),
                Route(DATA_PATH, self._data, methods=["GET"]),
            ]
        )

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    async def _page(self, request: Request) -> Response:
        # no-store: a cached shell could outlive a server upgrade; the data is polled anyway
        return HTMLResponse(self._html, headers={"Cache-Control": "no-store"})

    async def _data(self, request: Request) -> Response:
        now = time.time()
        info = self.server_info()
        server = {**info, "uptime_s": round(now - float(info.get("started_at", self.started)), 3)}
        return JSONResponse(status_data(self.dataplane, server, now), headers={"Cache-Control": "no-store"})


__all__ = ["DATA_PATH", "STATUS_PATHS", "StatusPage", "status_data"]
