"""Prometheus metrics front end: ``GET /metrics`` with Triton's metric families, on the serving loop.

Nothing is counted twice: a custom prometheus-client Collector reads the data plane's statistics snapshots
(with each batcher's queue) when scraped. Every ``MetricsFrontend`` has its own ``CollectorRegistry``, so two servers
in one process never share series.

The text is written here rather than by ``prometheus_client.generate_latest``, which renames counter
families to ``<name>_total``; Triton's scrapers and tests match ``nv_inference_count{model="m",version="1"}``
exactly.
"""

from __future__ import annotations

import logging
import math
from operator import attrgetter
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from pytriton_lite.config import DEFAULT_METRICS_PORT
from pytriton_lite.core.api import DataPlane
from pytriton_lite.frontends._uvicorn import EmbeddedServer
from pytriton_lite.types import StatsSnapshot

LOGGER = logging.getLogger("pytriton_lite.metrics")

CONTENT_TYPE = "text/plain; charset=utf-8"  # what Triton sends
METRICS_PATHS = ("/metrics", "/metrics/")

_Spec = Tuple[str, str, Callable[[StatsSnapshot], int]]  # (family, help, its value in a snapshot)
_NOT_CACHED = " (does not include cached requests)"


def _count(field: str) -> Callable[[StatsSnapshot], int]:
    return lambda stats: getattr(stats, field).count


def _us(field: str) -> Callable[[StatsSnapshot], int]:
    return lambda stats: getattr(stats, field).ns // 1000


def _duration(family: str, words: str, field: str, cached: bool) -> _Spec:
    note = " (includes cached requests)" if cached else _NOT_CACHED
    return f"nv_inference_{family}_duration_us", f"Cumulative {words} duration in microseconds{note}", _us(field)


# Triton's per-model counters, in Triton's order: the first, nv_inference_request_failure, then the rest.
_SUCCESS: _Spec = (
    "nv_inference_request_success",
    "Number of successful inference requests, all batch sizes",
    _count("success"),
)
_COUNTERS: Tuple[_Spec, ...] = (
    ("nv_inference_count", "Number of inferences performed" + _NOT_CACHED, attrgetter("inference_count")),
    ("nv_inference_exec_count", "Number of model executions performed" + _NOT_CACHED, attrgetter("execution_count")),
    _duration("request", "inference request", "success", cached=True),
    _duration("queue", "inference queuing", "queue", cached=True),
    _duration("compute_input", "compute input", "compute_input", cached=False),
    _duration("compute_infer", "compute inference", "compute_infer", cached=False),
    _duration("compute_output", "inference compute output", "compute_output", cached=False),
)
# Triton adds these only for models with the response cache enabled.
_CACHE_COUNTERS: Tuple[_Spec, ...] = (
    ("nv_cache_num_hits_per_model", "Number of cache hits per model", _count("cache_hit")),
    ("nv_cache_num_misses_per_model", "Number of cache misses per model", _count("cache_miss")),
    ("nv_cache_hit_duration_per_model", "Total cache hit duration per model, in microseconds", _us("cache_hit")),
    ("nv_cache_miss_duration_per_model", "Total cache miss duration per model, in microseconds", _us("cache_miss")),
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
        yield self._counter_family(_SUCCESS, models)
        failure = _counter("nv_inference_request_failure", "Number of failed inference requests, all batch sizes")
        for stats, labels in models:
            for reason, count in stats.failures:  # all four reasons exist from the start, as in Triton
                failure.add_sample(failure.name, {**labels, "reason": reason}, count)
        yield failure
        for spec in _COUNTERS:
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
    def _counter_family(spec: _Spec, models: Iterable[Tuple[StatsSnapshot, Dict[str, str]]]) -> Metric:
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


class MetricsFrontend:
    """``GET /metrics`` (and ``/metrics/``) for one data plane; other methods 405, other paths 400 (Triton)."""

    def __init__(self, dataplane: DataPlane, *, host: str = "0.0.0.0", port: int = DEFAULT_METRICS_PORT) -> None:
        self.dataplane = dataplane
        self.host = host
        self.requested_port = int(port)
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = ModelStatsCollector(dataplane)
        self.registry.register(self.collector)
        # a scrape in progress gets graceful_shutdown_s on stop
        self._server = EmbeddedServer(self._app, label="Metrics", host=host, port=self.requested_port, backlog=128)

    @property
    def port(self) -> Optional[int]:
        """The bound port once started (the requested one, or the free one port 0 picked)."""
        return self._server.port

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
        await self._server.start()

    async def stop(self) -> None:
        """Stop listening and close connections (scrapes are short; nothing to drain)."""
        await self._server.stop()


async def _respond(send: Any, status: int, body: bytes, content_type: Optional[str]) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["MetricsFrontend", "ModelStatsCollector", "render", "batch_size_buckets", "DEFAULT_METRICS_PORT"]
