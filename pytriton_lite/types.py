"""Data types shared by the core, the codecs and user callables.

``Request`` is what an infer callable receives (PyTriton's ``pytriton.proxy.types.Request``).
``InferenceRequest``/``InferenceResponse`` are the transport-agnostic messages that the protocol codecs
produce and consume and that ``core.dataplane`` serves.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, ItemsView, Iterator, KeysView, List, Optional, Tuple, Union, ValuesView

import numpy as np

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

ParameterValue = Union[str, int, bool, float]


@dataclass
class Request:
    """One inference request as seen by an infer callable; behaves like ``Dict[str, np.ndarray]``."""

    data: Dict[str, np.ndarray]
    parameters: Optional[Dict[str, ParameterValue]] = None
    span: Optional[Any] = None
    requested_output_names: Optional[List[str]] = None
    # what Triton's python backend exposes of a request (pb_utils.InferenceRequest.request_id() & co.)
    id: str = ""
    correlation_id: Union[int, str] = 0  # the ``sequence_id`` parameter
    flags: int = 0  # TRITONSERVER_REQUEST_FLAG_SEQUENCE_START (1) | _SEQUENCE_END (2)
    timeout_us: int = 0

    def __getitem__(self, input_name: str) -> np.ndarray:
        return self.data[input_name]

    def __setitem__(self, input_name: str, input_data: np.ndarray) -> None:
        self.data[input_name] = input_data

    def __delitem__(self, input_name: str) -> None:
        del self.data[input_name]

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __contains__(self, input_name: object) -> bool:
        return input_name in self.data

    def keys(self) -> KeysView[str]:
        return self.data.keys()

    def values(self) -> ValuesView[np.ndarray]:
        return self.data.values()

    def items(self) -> ItemsView[str, np.ndarray]:
        return self.data.items()

    def get(self, input_name: str, default: Any = None) -> Any:
        return self.data.get(input_name, default)

    @contextlib.contextmanager
    def traced_span(self, span_name: str) -> Iterator[Optional[Any]]:
        """PyTriton's OpenTelemetry hook; without a tracer it is a no-op context."""
        yield self.span


Requests = List[Request]
Response = Dict[str, np.ndarray]
Responses = List[Response]


@dataclass
class InferenceRequest:
    """A decoded v2 inference request, independent of the transport.

    ``inputs`` hold arrays with the batch dim included (as sent). BYTES tensors are ``dtype=object``
    arrays of ``bytes``. ``parameters`` are the custom request parameters merged with forwarded headers.
    ``requested_outputs`` is None when the client asked for all outputs.
    """

    model_name: str
    model_version: str = ""
    inputs: Dict[str, np.ndarray] = field(default_factory=dict)
    parameters: Dict[str, ParameterValue] = field(default_factory=dict)
    requested_outputs: Optional[List[str]] = None
    id: str = ""
    priority: int = 0
    timeout_us: Optional[int] = None
    correlation_id: Union[int, str] = 0  # the ``sequence_id`` parameter (no sequence batcher: carried only)
    flags: int = 0  # sequence_start -> 1, sequence_end -> 2 (Triton's request flags)


@dataclass
class InferenceResponse:
    """The outputs of one request, in declared output order, ready for a codec to encode."""

    model_name: str
    model_version: str
    outputs: Dict[str, np.ndarray]
    id: str = ""
    parameters: Dict[str, ParameterValue] = field(default_factory=dict)
    final: bool = True


__all__ = ["Request", "Requests", "Response", "Responses", "InferenceRequest", "InferenceResponse"]


# --- what the data plane hands to front ends: plain, frozen snapshots ---------------------------------


class ModelState(str, enum.Enum):
    """A model version's state in the registry (Triton's repository-index states)."""

    LOADING = "LOADING"
    READY = "READY"
    UNLOADING = "UNLOADING"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class TensorInfo:
    """A declared input or output: Triton wire datatype (``"FP32"``, ``"BYTES"``) and dims without the batch dim."""

    name: str
    datatype: str
    shape: Tuple[int, ...]
    optional: bool = False
    labels: Tuple[str, ...] = ()  # an output's class labels (classification extension), index = class


@dataclass(frozen=True)
class ModelInfo:
    """One model version as the data plane serves it.

    ``config`` is the served ``inference.ModelConfig`` protobuf (tritonclient's ``model_config_pb2``); it is
    shared by every snapshot of the version and must not be modified.
    """

    name: str
    version: int
    state: ModelState
    reason: str
    decoupled: bool
    max_batch_size: int
    inputs: Tuple[TensorInfo, ...]
    outputs: Tuple[TensorInfo, ...]
    config: ModelConfigProto

    @property
    def version_str(self) -> str:
        return str(self.version)

    @property
    def ready(self) -> bool:
        return self.state is ModelState.READY

    @property
    def response_cache(self) -> bool:
        return bool(self.config.response_cache.enable)


@dataclass(frozen=True)
class DurationStat:
    """A count and the nanoseconds they took in all."""

    count: int = 0
    ns: int = 0


@dataclass(frozen=True)
class BatchStatsSnapshot:
    """Per-batch-size compute durations (one entry per batch size the model ran with)."""

    batch_size: int
    compute_input: DurationStat
    compute_infer: DurationStat
    compute_output: DurationStat


@dataclass(frozen=True)
class StatsSnapshot:
    """Triton's statistics of one model version at one moment, plus the batcher's queue."""

    name: str
    version: int
    max_batch_size: int
    response_cache: bool
    last_inference: int
    inference_count: int
    execution_count: int
    success: DurationStat
    fail: DurationStat
    queue: DurationStat
    compute_input: DurationStat
    compute_infer: DurationStat
    compute_output: DurationStat
    cache_hit: DurationStat
    cache_miss: DurationStat
    batch_stats: Tuple[BatchStatsSnapshot, ...]
    failures: Tuple[Tuple[str, int], ...]  # (reason, count) for REJECTED, CANCELED, BACKEND, OTHER
    pending: int  # requests received and not yet executing (Triton's pending request count)
    queued: int  # requests waiting in the batcher's queue
    batch_size_histogram: Tuple[Tuple[int, int], ...]  # (rows per execution, executions)
    load_duration_s: float = 0.0  # how long its load took (repository models); 0 = not measured
    latency_histogram: Tuple[int, ...] = ()  # successful requests per core.stats.LATENCY_BOUNDS_US bucket, +Inf last
    instance_busy_ns: Tuple[Tuple[int, int], ...] = ()  # (instance index, nanoseconds spent executing)
    # Triton's latency summaries when enabled: (phase, count, sum µs, ((quantile, µs), ...)); core.summaries
    summaries: Tuple[Tuple[str, int, float, Tuple[Tuple[float, float], ...]], ...] = ()

    @property
    def version_str(self) -> str:
        return str(self.version)


@dataclass(frozen=True)
class CustomMetric:
    """One series of a python model's custom metric family (``pb_utils.MetricFamily``): its sorted labels and
    value; a histogram's ``buckets`` are (upper bound, cumulative count), ``count`` its observations and
    ``value`` their sum."""

    labels: Tuple[Tuple[str, str], ...]
    value: float
    buckets: Tuple[Tuple[float, int], ...] = ()
    count: int = 0


@dataclass(frozen=True)
class CustomMetricFamily:
    """A custom metric family as ``/metrics`` exports it; ``kind`` is ``counter``, ``gauge`` or ``histogram``."""

    name: str
    description: str
    kind: str
    metrics: Tuple[CustomMetric, ...]


__all__ += [
    "CustomMetric",
    "CustomMetricFamily",
    "ModelState",
    "TensorInfo",
    "ModelInfo",
    "DurationStat",
    "BatchStatsSnapshot",
    "StatsSnapshot",
]
