"""Model statistics in Triton's shapes: the statistics extension's JSON and gRPC ModelStatisticsResponse.

Pure: takes ``(model, stats)`` pairs (duck-typed ``core.model.Model`` / ``core.stats.ModelStats``) and builds
the wire objects. ``collect`` picks the pairs for a request and turns lookup failures into the statistics
extension's own errors (INVALID_ARG / 400, not the 404 the other model endpoints use).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from pytriton_lite.exceptions import InvalidArgumentError, ModelNotFoundError

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

Pair = Tuple[Any, Any]


def model_not_available(name: str) -> InvalidArgumentError:
    """Triton's error for a statistics request naming an unknown (or not ready) model."""
    return InvalidArgumentError(f"requested model '{name}' is not available")


def version_not_available(name: str) -> InvalidArgumentError:
    """Triton's error for a statistics request naming a version the model does not have ready."""
    return InvalidArgumentError(f"requested model version is not available for model '{name}'")


def collect(dataplane: Any, name: Optional[str] = None, version: str = "") -> List[Pair]:
    """The ``(model, stats)`` pairs a statistics request asks for, with Triton's selection and errors.

    No name: every ready version of every model (``version`` is ignored, as in Triton). A name without a
    version: every ready version of that model. Unknown or not-ready models and versions raise
    InvalidArgumentError ("requested model 'x' is not available" / "requested model version is not
    available for model 'x'"); an unparsable version keeps the data plane's INVALID_ARG message.
    """
    if not name:
        return [(m, dataplane.stats_for(m)) for m in dataplane.models() if m.ready]
    models = [m for m in dataplane.models() if m.name == name and m.ready]
    if not models:
        raise model_not_available(name)
    if version:
        try:
            model = dataplane.get_model(name, version)  # parses the version with the data plane's wording
        except ModelNotFoundError:
            raise version_not_available(name) from None
        if not model.ready:
            raise version_not_available(name)
        models = [model]
    return [(m, dataplane.stats_for(m)) for m in models]


def _duration(value: Any) -> Dict[str, int]:
    return {"count": int(value.count), "ns": int(value.ns)}


def _version(model: Any) -> str:
    return getattr(model, "version_str", None) or str(model.version)


def model_statistics_json(model: Any, stats: Any) -> Dict[str, Any]:
    """One ``model_stats`` entry, members in Triton's order."""
    return {
        "name": model.name,
        "version": _version(model),
        "last_inference": int(stats.last_inference),
        "inference_count": int(stats.inference_count),
        "execution_count": int(stats.execution_count),
        "inference_stats": {field: _duration(getattr(stats, field)) for field in INFER_STAT_FIELDS},
        # Per-response statistics of decoupled models are not tracked; Triton sends {} when it has none.
        "response_stats": {},
        "batch_stats": [
            {"batch_size": int(size), **{field: _duration(getattr(per, field)) for field in BATCH_STAT_FIELDS}}
            for size, per in sorted(stats.batch_stats.items())
        ],
        "memory_usage": [],
    }


def statistics_json(pairs: Sequence[Pair]) -> Dict[str, Any]:
    """The body of ``GET /v2/models[/{m}[/versions/{v}]]/stats``: ``{"model_stats": [...]}``."""
    return {"model_stats": [model_statistics_json(model, stats) for model, stats in pairs]}


def _set_duration(target: Any, value: Any) -> None:
    target.count = int(value.count)
    target.ns = int(value.ns)


def statistics_proto(pairs: Sequence[Pair]) -> Any:
    """The gRPC ``ModelStatisticsResponse`` carrying the same numbers as ``statistics_json``."""
    from tritonclient.grpc import service_pb2  # noqa: PLC0415 - only the gRPC path pays for grpc's import

    response = service_pb2.ModelStatisticsResponse()
    for model, stats in pairs:
        entry = response.model_stats.add()
        entry.name = model.name
        entry.version = _version(model)
        entry.last_inference = int(stats.last_inference)
        entry.inference_count = int(stats.inference_count)
        entry.execution_count = int(stats.execution_count)
        for field in INFER_STAT_FIELDS:
            _set_duration(getattr(entry.inference_stats, field), getattr(stats, field))
        for size, per in sorted(stats.batch_stats.items()):
            batch = entry.batch_stats.add()
            batch.batch_size = int(size)
            for field in BATCH_STAT_FIELDS:
                _set_duration(getattr(batch, field), getattr(per, field))
    return response


__all__ = [
    "collect",
    "model_not_available",
    "model_statistics_json",
    "statistics_json",
    "statistics_proto",
    "version_not_available",
    "INFER_STAT_FIELDS",
    "BATCH_STAT_FIELDS",
]
