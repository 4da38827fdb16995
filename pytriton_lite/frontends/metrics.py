"""Prometheus metrics front end: ``GET /metrics`` with Triton's metric families, on the serving loop.

Nothing is counted twice: a custom prometheus-client Collector reads the core's ``ModelStats`` (and each
batcher's queue) when scraped. Every ``MetricsFrontend`` has its own ``CollectorRegistry``, so two servers
in one process never share series.

The text is written here rather than by ``prometheus_client.generate_latest``, which renames counter
families to ``<name>_total``; Triton's scrapers and tests match ``nv_inference_count{model="m",version="1"}``
exactly.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import uvicorn
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from pytriton_lite.core.api import DataPlane
from pytriton_lite.types import StatsSnapshot

LOGGER = logging.getLogger("pytriton_lite.metrics")

DEFAULT_METRICS_PORT = 8002
CONTENT_TYPE = "text/plain; charset=utf-8"  # what Triton sends
METRICS_PATHS = ("/metrics", "/metrics/")

# (family, help, value of ModelStats) for Triton's per-model counters, in Triton's order.
_COUNTERS: Tuple[Tuple[str, str, Callable[[Any], float]], ...] = (
    (
        "nv_inference_request_success",
        "Number of successful inference requests, all batch sizes",
        lambda s: s.success.count,
    ),
    (
        "nv_inference_count",
        "Number of inferences performed (does not include cached requests)",
        lambda s: s.inference_count,
    ),
    (
        "nv_inference_exec_count",
        "Number of model executions performed (does not include cached requests)",
        lambda s: s.execution_count,
    ),
    (
        "nv_inference_request_duration_us",
        "Cumulative inference request duration in microseconds (includes cached requests)",
        lambda s: s.success.ns // 1000,
    ),
    (
        "nv_inference_queue_duration_us",
        "Cumulative inference queuing duration in microseconds (includes cached requests)",
        lambda s: s.queue.ns // 1000,
    ),
    (
        "nv_inference_compute_input_duration_us",
        "Cumulative compute input duration in microseconds (does not include cached requests)",
        lambda s: s.compute_input.ns // 1000,
    ),
    (
        "nv_inference_compute_infer_duration_us",
        "Cumulative compute inference duration in microseconds (does not include cached requests)",
        lambda s: s.compute_infer.ns // 1000,
    ),
    (
        "nv_inference_compute_output_duration_us",
        "Cumulative inference compute output duration in microseconds (does not include cached requests)",
        lambda s: s.compute_output.ns // 1000,
    ),
)
# Triton adds these only for models with the response cache enabled.
_CACHE_COUNTERS: Tuple[Tuple[str, str, Callable[[Any], float]], ...] = (
    ("nv_cache_num_hits_per_model", "Number of cache hits per model", lambda s: s.cache_hit.count),
    ("nv_cache_num_misses_per_model", "Number of cache misses per model", lambda s: s.cache_miss.count),
    (
        "nv_cache_hit_duration_per_model",
        "Total cache hit duration per model, in microseconds",
        lambda s: s.cache_hit.ns // 1000,
    ),
    (
        "nv_cache_miss_duration_per_model",
        "Total cache miss duration per model, in microseconds",
        lambda s: s.cache_miss.ns // 1000,
    ),
)
BATCH_SIZE_FAMILY = "pytriton_lite_batch_size"
QUEUE_SIZE_FAMILY = "pytriton_lite_queue_size"


def _counter(name: str, documentation: str) -> Metric:
    # A bare Metric keeps the family name as given (CounterMetricFamily would name its samples *_total).
    return Metric(name, documentation, "counter")


def batch_size_buckets(max_batch_size: int) -> List[int]:
    """Upper bounds for the batch-size histogram: powers of two up to ``max_batch_size``, and it."""
    top = max(1, int(max_batch_size))
    bounds, bound = [], 1
    while bound < top:
        bounds.append(bound)
        bound *= 2
    bounds.append(top)
    return bounds


class ModelStatsCollector(Collector):
    """Reads the data plane's statistics snapshots at scrape time. Call ``collect`` on the serving loop."""

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane

    def _models(self) -> List[Tuple[StatsSnapshot, Dict[str, str]]]:
        return [(s, {"model": s.name, "version": s.version_str}) for s in self._dataplane.all_statistics()]

    def collect(self) -> Iterator[Metric]:
        models = self._models()
        first, *rest = _COUNTERS
        yield self._counter_family(first, models)
        failure = _counter("nv_inference_request_failure", "Number of failed inference requests, all batch sizes")
        for stats, labels in models:
            for reason, count in stats.failures:  # all four reasons exist from the start, as in Triton
                failure.add_sample(failure.name, {**labels, "reason": reason}, count)
        yield failure
        for spec in rest:
            yield self._counter_family(spec, models)
        pending = GaugeMetricFamily(
            "nv_inference_pending_request_count",
            "Instantaneous number of pending requests awaiting execution per-model.",
            labels=["model", "version"],
        )
        for stats, labels in models:
            pending.add_metric([labels["model"], labels["version"]], stats.pending)
        yield pending
        cached = [entry for entry in models if entry[0].response_cache]
        if cached:
            for spec in _CACHE_COUNTERS:
                yield self._counter_family(spec, cached)
        yield from self._beyond_triton(models)

    @staticmethod
    def _counter_family(spec: Tuple[str, str, Callable[[Any], float]], models: Iterable[Any]) -> Metric:
        name, documentation, value = spec
        family = _counter(name, documentation)
        for stats, labels in models:
            family.add_sample(name, labels, value(stats))
        return family

    def _beyond_triton(self, models: List[Tuple[StatsSnapshot, Dict[str, str]]]) -> Iterator[Metric]:
        histogram = HistogramMetricFamily(
            BATCH_SIZE_FAMILY,
            "Batch sizes the model was executed with (rows per execution)",
            labels=["model", "version"],
        )
        queue = GaugeMetricFamily(
            QUEUE_SIZE_FAMILY,
            "Requests waiting in the model's dynamic batcher queue",
            labels=["model", "version"],
        )
        for stats, labels in models:
            label_values = [labels["model"], labels["version"]]
            counts = dict(stats.batch_size_histogram)
            buckets, cumulative = [], 0
            for bound in batch_size_buckets(stats.max_batch_size):
                cumulative = sum(n for size, n in counts.items() if size <= bound)
                buckets.append((floatToGoString(bound), cumulative))
            total = sum(counts.values())
            buckets.append(("+Inf", total))
            histogram.add_metric(label_values, buckets, sum(size * n for size, n in counts.items()))
            queue.add_metric(label_values, stats.queued)
        yield histogram
        yield queue


# --- text exposition ---------------------------------------------------------------------------------


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _format_value(value: float) -> str:
    # Triton (prometheus-cpp) writes whole numbers without a fraction: `... 8`, not `... 8.0`.
    if isinstance(value, int) or (math.isfinite(value) and float(value).is_integer() and abs(value) < 2**53):
        return str(int(value))
    return floatToGoString(value)


_TYPE_NAMES = {"unknown": "untyped", "info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram"}


def render(registry: CollectorRegistry) -> str:
    """Prometheus text format (0.0.4) with family and sample names exactly as collected, labels sorted."""
    lines: List[str] = []
    for family in registry.collect():
        documentation = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        lines.append(f"# HELP {family.name} {documentation}")
        lines.append(f"# TYPE {family.name} {_TYPE_NAMES.get(family.type, family.type)}")
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = ",".join(f'{key}="{_escape_label(str(val))}"' for key, val in sorted(sample.labels.items()))
            series = f"{sample.name}{{{labels}}}" if labels else sample.name
            lines.append(f"{series} {_format_value(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""


# --- the server --------------------------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket; raises OSError (EADDRINUSE) when the port is taken."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # allows TIME_WAIT, never a live listener
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class MetricsFrontend:
    """``GET /metrics`` (and ``/metrics/``) for one data plane; other methods 405, other paths 400 (Triton)."""

    def __init__(self, dataplane: DataPlane, *, host: str = "0.0.0.0", port: int = DEFAULT_METRICS_PORT) -> None:
        self.dataplane = dataplane
        self.host = host
        self.requested_port = int(port)
        self.port: Optional[int] = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = ModelStatsCollector(dataplane)
        self.registry.register(self.collector)
        self._server: Optional[uvicorn.Server] = None
        self._socket: Optional[socket.socket] = None
        self._main: Optional[asyncio.Task] = None

    @classmethod
    def from_triton_config(cls, dataplane: DataPlane, config: Any) -> MetricsFrontend:
        """Build from a ``TritonConfig``: ``metrics_address`` (default: ``http_address``) and ``metrics_port``."""
        host = getattr(config, "metrics_address", None) or getattr(config, "http_address", None) or "0.0.0.0"
        port = getattr(config, "metrics_port", None)
        return cls(dataplane, host=host, port=DEFAULT_METRICS_PORT if port is None else port)

    def render(self) -> str:
        """The current exposition text (call on the serving loop, where the statistics are updated)."""
        return render(self.registry)

    async def _app(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "GET":
            await _respond(send, 405, b'{"error":"Method Not Allowed"}', "application/json")
        elif scope["path"] not in METRICS_PATHS:
            await _respond(send, 400, b"", None)  # Triton's metrics server: empty 400 for any other path
        else:
            # Rendered right here on the loop: the counters are only ever touched on this thread.
            await _respond(send, 200, self.render().encode("utf-8"), CONTENT_TYPE)

    async def start(self) -> None:
        """Bind (port 0 = ephemeral; a busy port raises OSError) and serve on the running loop."""
        sock = _bind(self.host, self.requested_port)
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            lifespan="off",
            log_config=None,  # leave the application's logging alone
            log_level=None,  # nor uvicorn's logger levels (the HTTP front end shares them)
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,  # a scrape in progress gets this long on stop
        )
        server = uvicorn.Server(config)
        config.load()
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        self._socket, self._server = sock, server
        self.port = int(sock.getsockname()[1])
        self._main = asyncio.get_running_loop().create_task(server.main_loop())
        LOGGER.debug("Metrics front end listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and close connections (scrapes are short; nothing to drain)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.should_exit = True
        if self._main is not None:
            await asyncio.gather(self._main, return_exceptions=True)
            self._main = None
        await server.shutdown(sockets=[self._socket] if self._socket is not None else None)
        if self._socket is not None:
            self._socket.close()
            self._socket = None


async def _respond(send: Any, status: int, body: bytes, content_type: Optional[str]) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["MetricsFrontend", "ModelStatsCollector", "render", "batch_size_buckets", "DEFAULT_METRICS_PORT"]
