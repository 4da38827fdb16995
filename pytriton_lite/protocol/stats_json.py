"""Model statistics in Triton's shapes: the statistics extension's JSON and gRPC ModelStatisticsResponse.

Pure: takes the data plane's frozen ``StatsSnapshot`` objects (the data plane selects them, with Triton's
statistics-extension errors) and builds the wire objects.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

from pytriton_lite.types import DurationStat, StatsSnapshot

# InferStatistics members in Triton's order; perf_analyzer reads every one of them without checking.
INFER_STAT_FIELDS = (
    "success",
    "fail",
    "queue",
    "compute_input",
    "compute_infer",
    "compute_output",
    "cache_hit",
    "cache_miss",
)
BATCH_STAT_FIELDS = ("compute_input", "compute_infer", "compute_output")


def _duration(value: DurationStat) -> Dict[str, int]:
    return {"count": int(value.count), "ns": int(value.ns)}


def model_statistics_json(stats: StatsSnapshot) -> Dict[str, Any]:
    """One ``model_stats`` entry, members in Triton's order."""
    return {
        "name": stats.name,
        "version": stats.version_str,
        "last_inference": int(stats.last_inference),
        "inference_count": int(stats.inference_count),
        "execution_count": int(stats.execution_count),
        "inference_stats": {field: _duration(getattr(stats, field)) for field in INFER_STAT_FIELDS},
        # Per-response statistics of decoupled models are not tracked; Triton sends {} when it has none.
        "response_stats": {},
        "batch_stats": [
            {
                "batch_size": int(per.batch_size),
                **{field: _duration(getattr(per, field)) for field in BATCH_STAT_FIELDS},
            }
            for per in stats.batch_stats
        ],
        "memory_usage": [],
    }


def statistics_json(snapshots: Sequence[StatsSnapshot]) -> Dict[str, Any]:
    """The body of ``GET /v2/models[/{m}[/versions/{v}]]/stats``: ``{"model_stats": [...]}``."""
    return {"model_stats": [model_statistics_json(stats) for stats in snapshots]}


def _set_duration(target: Any, value: DurationStat) -> None:
    target.count = int(value.count)
    target.ns = int(value.ns)


def statistics_proto(snapshots: Sequence[StatsSnapshot]) -> Any:
    """The gRPC ``ModelStatisticsResponse`` carrying the same numbers as ``statistics_json``."""
    from tritonclient.grpc import service_pb2

    response = service_pb2.ModelStatisticsResponse()
    for stats in snapshots:
        entry = response.model_stats.add()
        entry.name = stats.name
        entry.version = stats.version_str
        entry.last_inference = int(stats.last_inference)
        entry.inference_count = int(stats.inference_count)
        entry.execution_count = int(stats.execution_count)
        for field in INFER_STAT_FIELDS:
            _set_duration(getattr(entry.inference_stats, field), getattr(stats, field))
        for per in stats.batch_stats:
            batch = entry.batch_stats.add()
            batch.batch_size = int(per.batch_size)
            for field in BATCH_STAT_FIELDS:
                _set_duration(getattr(batch, field), getattr(per, field))
    return response


__all__ = [
    "model_statistics_json",
    "statistics_json",
    "statistics_proto",
    "INFER_STAT_FIELDS",
    "BATCH_STAT_FIELDS",
]
