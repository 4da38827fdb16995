"""Prometheus metrics front end: ``GET /metrics`` with Triton's metric families, on the serving loop.

Nothing is counted twice: a custom prometheus-client Collector reads the data plane's statistics snapshots
(with each batcher's queue) when scraped. Every ``MetricsFrontend`` has its own ``CollectorRegistry``, so two servers
in one process never share series.

The text is written here rather than by ``prometheus_client.generate_latest``, which renames counter
families to ``<name>_total``; Triton's scrapers and tests match ``nv_inference_count{model="m",version="1"}``
exactly.
"""

from __future__ import annotations

import json
import logging
import math
from operator import attrgetter
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from pytriton_lite.config import DEFAULT_METRICS_PORT
from pytriton_lite.core.api import DataPlane
from pytriton_lite.core.summaries import parse_metrics_config
from pytriton_lite.exceptions import InferenceError
from pytriton_lite.frontends._system_metrics import DEFAULT_METRICS_INTERVAL_MS, SystemMetricsCollector
from pytriton_lite.frontends._uvicorn import EmbeddedServer
from pytriton_lite.protocol.access import METRICS_GROUP, ApiKeys, check_api_key
from pytriton_lite.types import CustomMetricFamily, StatsSnapshot

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


_SUMMARY_HELP = {
    "request": "Summary of inference request duration in microseconds (includes cached requests)",
    "queue": "Summary of inference queuing duration in microseconds (includes cached requests)",
    "compute_input": "Summary of compute input duration in microseconds (does not include cached requests)",
    "compute_infer": "Summary of compute inference duration in microseconds (does not include cached requests)",
    "compute_output": "Summary of compute output duration in microseconds (does not include cached requests)",
}


def _summary_families(models: List[Tuple[StatsSnapshot, Dict[str, str]]]) -> Iterator[Metric]:
    """Triton's nv_inference_*_summary_us (metrics_config summary_latencies=true): quantiles, _count, _sum."""
    families: Dict[str, Metric] = {}
    for stats, labels in models:
        for phase, count, total, quantiles in stats.summaries:
            name = f"nv_inference_{phase}_summary_us"
            family = families.get(name)
            if family is None:
                family = families[name] = Metric(name, _SUMMARY_HELP[phase], "summary")
            for quantile, value in quantiles:
                family.add_sample(name, {**labels, "quantile": floatToGoString(quantile)}, value)
            family.add_sample(name + "_count", labels, count)
            family.add_sample(name + "_sum", labels, total)
    yield from families.values()


class ModelStatsCollector(Collector):
    """Reads the data plane's statistics snapshots at scrape time. Call ``collect`` on the serving loop."""

    def __init__(self, dataplane: DataPlane, counter_latencies: bool = True) -> None:
        self._dataplane = dataplane
        self.counter_latencies = counter_latencies  # metrics_config counter_latencies=false drops *_duration_us

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
            if self.counter_latencies or not spec[0].endswith("_duration_us"):
                yield self._counter_family(spec, models)
        pending = GaugeMetricFamily(
            "nv_inference_pending_request_count",
            "Instantaneous number of pending requests awaiting execution per-model.",
            labels=["model", "version"],
        )
        for stats, labels in models:
            pending.add_metric([labels["model"], labels["version"]], stats.pending)
        yield pending
        loaded = [(stats, labels) for stats, labels in models if stats.load_duration_s]
        if loaded:  # Triton's gauge, set when a version finishes loading (repository models here)
            load = GaugeMetricFamily(
                "nv_model_load_duration_secs", "Model load time in seconds", labels=["model", "version"]
            )
            for stats, labels in loaded:
                load.add_metric([labels["model"], labels["version"]], stats.load_duration_s)
            yield load
        cached = [entry for entry in models if entry[0].response_cache]
        if cached:
            for spec in _CACHE_COUNTERS:
                yield self._counter_family(spec, cached)
        yield from _summary_families(models)
        yield from self._beyond_triton(models)
        custom = getattr(self._dataplane, "custom_metric_families", None)  # test doubles may lack it
        if custom is not None:
            yield from _custom(custom())

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


def _custom(families: Iterable[CustomMetricFamily]) -> Iterator[Metric]:
    """Python models' ``pb_utils.MetricFamily`` families, under their own names (a counter keeps its name)."""
    for family in families:
        metric = Metric(family.name, family.description, family.kind)
        for series in family.metrics:
            labels = dict(series.labels)
            if family.kind != "histogram":
                metric.add_sample(family.name, labels, series.value)
                continue
            for bound, count in series.buckets:
                metric.add_sample(f"{family.name}_bucket", {**labels, "le": _format_value(bound)}, count)
            metric.add_sample(f"{family.name}_bucket", {**labels, "le": "+Inf"}, series.count)
            metric.add_sample(f"{family.name}_count", labels, series.count)
            metric.add_sample(f"{family.name}_sum", labels, series.value)
        yield metric


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

    def __init__(
        self,
        dataplane: DataPlane,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_METRICS_PORT,
        cpu_metrics: bool = True,
        gpu_metrics: bool = True,
        interval_ms: int = DEFAULT_METRICS_INTERVAL_MS,
        counter_latencies: bool = True,
    ) -> None:
        self.dataplane = dataplane
        self.host = host
        self.requested_port = int(port)
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = ModelStatsCollector(dataplane, counter_latencies=counter_latencies)
        self.registry.register(self.collector)
        # Triton's nv_cpu_* and nv_gpu_* families (on by default there too); GPU ones need nvidia-ml-py
        self.system: Optional[SystemMetricsCollector] = None
        if cpu_metrics or gpu_metrics:
            self.system = SystemMetricsCollector(cpu=cpu_metrics, gpu=gpu_metrics, interval_ms=interval_ms)
            self.registry.register(self.system)
        self.api_keys: Optional[ApiKeys] = None  # guards /metrics when its groups name "metrics"
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
        interval = getattr(config, "metrics_interval_ms", None)
        return cls(
            dataplane,
            host=host,
            port=DEFAULT_METRICS_PORT if port is None else port,
            cpu_metrics=getattr(config, "allow_cpu_metrics", None) is not False,
            gpu_metrics=getattr(config, "allow_gpu_metrics", None) is not False,
            interval_ms=DEFAULT_METRICS_INTERVAL_MS if interval is None else interval,
            counter_latencies=parse_metrics_config(getattr(config, "metrics_config", None)).counter_latencies,
        )

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
        elif (refused := self._refusal(scope)) is not None:
            body = json.dumps({"error": str(refused)}).encode()
            await _respond(send, refused.http_status, body, "application/json", refused.headers)
        else:
            # Rendered right here on the loop: the counters are only ever touched on this thread.
            await _respond(send, 200, self.render().encode("utf-8"), CONTENT_TYPE)

    def require_api_keys(self, keys: ApiKeys) -> None:
        """Check ``keys`` on scrapes when they guard the ``metrics`` group (call before ``start``)."""
        self.api_keys = keys

    def _refusal(self, scope: Dict[str, Any]) -> Optional[InferenceError]:
        keys = self.api_keys
        if keys is None or not keys.guards(METRICS_GROUP):
            return None
        try:
            check_api_key(keys, ((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]))
        except InferenceError as exc:
            return exc
        return None

    async def start(self) -> None:
        """Bind (port 0 = ephemeral; a busy port raises OSError) and serve on the running loop."""
        await self._server.start()

    async def stop(self) -> None:
        """Stop listening and close connections (scrapes are short; nothing to drain)."""
        await self._server.stop()
        if self.system is not None:
            self.system.close()


async def _respond(
    send: Any, status: int, body: bytes, content_type: Optional[str], extra: Iterable[Tuple[str, str]] = ()
) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["MetricsFrontend", "ModelStatsCollector", "render", "batch_size_buckets", "DEFAULT_METRICS_PORT"]
