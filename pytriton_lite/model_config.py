"""Model configuration: the dataclasses of ``pytriton.model_config`` plus dtype helpers.

``Tensor``, ``ModelConfig``, ``DynamicBatcher``, ``QueuePolicy``, ``TimeoutAction`` and ``DeviceKind``
keep PyTriton's names, fields and defaults. ``TritonModelConfig``/``TensorSpec`` are what clients get
back from a server's ``/config`` endpoint. The dtype helpers (``to_triton_dtype``, ``from_triton_dtype``,
``is_bytes_dtype``, ``normalize_dtype``, ``TRITON_DTYPES``) are re-exported from the one dtype table,
``pytriton_lite._dtypes``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Type, Union

import numpy as np

# the dtype helpers live in the bottom-layer table, pytriton_lite._dtypes; re-exported under PyTriton's names
from pytriton_lite._dtypes import TRITON_DTYPES as TRITON_DTYPES
from pytriton_lite._dtypes import from_triton_dtype, is_bytes_dtype, normalize_dtype, to_triton_dtype
from pytriton_lite.exceptions import PyTritonBadParameterError, PyTritonModelConfigError

# --- public dataclasses (PyTriton 0.7) ----------------------------------------------------------------


class DeviceKind(enum.Enum):
    """Device kind of model instances (exported for compatibility; instances are always KIND_CPU)."""

    KIND_AUTO = "KIND_AUTO"
    KIND_CPU = "KIND_CPU"
    KIND_GPU = "KIND_GPU"


class TimeoutAction(enum.Enum):
    """What happens to a queued request whose timeout expires."""

    REJECT = "REJECT"
    DELAY = "DELAY"


@dataclass
class QueuePolicy:
    """Queue policy of the dynamic batcher (per model or per priority level)."""

    timeout_action: TimeoutAction = TimeoutAction.REJECT
    default_timeout_microseconds: int = 0
    allow_timeout_override: bool = False
    max_queue_size: int = 0


@dataclass
class DynamicBatcher:
    """Dynamic batcher settings (Triton's ``dynamic_batching``)."""

    max_queue_delay_microseconds: int = 0
    preferred_batch_size: Optional[list] = None
    preserve_ordering: bool = False
    priority_levels: int = 0
    default_priority_level: int = 0
    default_queue_policy: Optional[QueuePolicy] = None
    priority_queue_policy: Optional[Dict[int, QueuePolicy]] = None


@dataclass
class WarmupInput:
    """One input of a warm-up request: exactly one of zero_data, random_data, input_data_file."""

    dtype: Any
    shape: Sequence[int]
    zero_data: bool = False
    random_data: bool = False
    input_data_file: Optional[str] = None


@dataclass
class ModelWarmup:
    """A warm-up run: ``count`` requests of ``batch_size`` built from ``inputs``."""

    name: str
    batch_size: int
    inputs: Dict[str, WarmupInput]
    count: int


@dataclass
class ModelConfig:
    """Model configuration given to ``Triton.bind``."""

    batching: bool = True
    max_batch_size: int = 4
    batcher: DynamicBatcher = field(default_factory=DynamicBatcher)
    response_cache: bool = False
    decoupled: bool = False
    model_warmup: Optional[List[ModelWarmup]] = None


@dataclass(frozen=True)
class Tensor:
    """Input or output tensor spec. ``shape`` excludes the batch dim when batching; -1 = dynamic."""

    shape: tuple
    dtype: Union[np.dtype, Type[np.dtype], Type[object], str]
    name: Optional[str] = None
    optional: Optional[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    @property
    def triton_dtype(self) -> str:
        return to_triton_dtype(self.dtype)


def validate_model_config(config: ModelConfig) -> None:
    """PyTriton's config checks, raised as ``PyTritonBadParameterError``."""
    if config.batching and config.max_batch_size < 1:
        raise PyTritonBadParameterError("Parameter max_batch_size for model with batching enabled must be >= 1.")
    if not config.batching:
        return
    _validate_batcher(config.batcher, config.max_batch_size)
    for warmup in config.model_warmup or []:
        _validate_warmup(warmup)


def _validate_batcher(batcher: DynamicBatcher, max_batch_size: int) -> None:
    if batcher.max_queue_delay_microseconds < 0:
        raise PyTritonBadParameterError("max_queue_delay_microseconds must be >= 0.")
    if batcher.preferred_batch_size:
        for size in batcher.preferred_batch_size:
            if not 1 <= int(size) <= max_batch_size:
                raise PyTritonBadParameterError(
                    f"Preferred batch size {size} must be between 1 and max_batch_size ({max_batch_size})."
                )
    if batcher.default_priority_level > batcher.priority_levels:
        raise PyTritonBadParameterError(
            "Default priority level cannot be higher than the number of priority levels "
            f"({batcher.default_priority_level} > {batcher.priority_levels})."
        )
    if batcher.priority_queue_policy:
        if not batcher.priority_levels:
            raise PyTritonBadParameterError("Provide the priority_levels if you want to define priority_queue_policy.")
        for level in batcher.priority_queue_policy:
            if level < 0 or level > batcher.priority_levels:
                raise PyTritonBadParameterError(
                    f"Invalid priority level {level}: must be between 0 and {batcher.priority_levels}."
                )


def _validate_warmup(warmup: ModelWarmup) -> None:
    for name, winput in warmup.inputs.items():
        sources = [winput.zero_data, winput.random_data, winput.input_data_file is not None]
        if sum(bool(s) for s in sources) != 1:
            raise PyTritonBadParameterError(
                f"Warm-up input {name!r} must set exactly one of zero_data, random_data, input_data_file."
            )
        if not len(winput.shape):
            raise PyTritonBadParameterError(f"Warm-up input {name!r} must have a non-empty shape.")


# --- what clients read back from a server -------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """A tensor as described by a server's model config (BYTES -> ``np.bytes_``)."""

    name: str
    shape: tuple
    dtype: Any
    optional: Optional[bool] = False


@dataclass
class ResponseCache:
    """Response cache section of a Triton model config."""

    enable: bool = True


@dataclass
class TritonModelConfig:
    """A model's configuration as served by ``GET /v2/models/{m}/config`` (PyTriton's class)."""

    model_name: str
    model_version: int = 1
    max_batch_size: int = 4
    batching: bool = True
    batcher: Optional[DynamicBatcher] = None
    instance_group: Dict[DeviceKind, Optional[int]] = field(default_factory=dict)
    decoupled: bool = False
    backend_parameters: Dict[str, str] = field(default_factory=dict)
    inputs: Optional[List[TensorSpec]] = None
    outputs: Optional[List[TensorSpec]] = None
    response_cache: Optional[ResponseCache] = None
    model_warmup: Optional[List[ModelWarmup]] = None

    @property
    def backend(self) -> str:
        return "python"

    @classmethod
    def from_dict(cls, config: Dict[str, Any], model_version: int = 1) -> TritonModelConfig:
        """Parse Triton's config JSON (numbers or proto-JSON strings for int64 fields)."""
        try:
            max_batch_size = int(config.get("max_batch_size", 0))
            batcher = None
            if "dynamic_batching" in config:
                batcher = _parse_batcher(config["dynamic_batching"])
            instance_group: Dict[DeviceKind, Optional[int]] = {}
            for group in config.get("instance_group", []):
                kind = DeviceKind(group.get("kind", "KIND_GPU"))
                instance_group[kind] = int(group.get("count", 1))
            params = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
            cache = config.get("response_cache")
            return cls(
                model_name=config["name"],
                model_version=model_version,
                max_batch_size=max_batch_size,
                batching=max_batch_size > 0,
                batcher=batcher,
                instance_group=instance_group,
                decoupled=bool((config.get("model_transaction_policy") or {}).get("decoupled", False)),
                backend_parameters=params,
                inputs=[_parse_spec(t) for t in config.get("input", [])],
                outputs=[_parse_spec(t) for t in config.get("output", [])],
                response_cache=ResponseCache(bool(cache.get("enable", False))) if cache else None,
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise PyTritonModelConfigError(f"Cannot parse model config: {exc}") from exc


def _parse_spec(tensor: Dict[str, Any]) -> TensorSpec:
    if "name" not in tensor or "data_type" not in tensor or "dims" not in tensor:
        raise PyTritonModelConfigError(f"Tensor config needs name, data_type and dims: {tensor!r}")
    dtype = from_triton_dtype(tensor["data_type"])
    return TensorSpec(
        name=tensor["name"],
        shape=tuple(int(d) for d in tensor["dims"]),
        dtype=np.bytes_ if dtype == np.dtype(object) else dtype.type,
        optional=bool(tensor.get("optional", False)),
    )


def _parse_policy(policy: Dict[str, Any]) -> QueuePolicy:
    return QueuePolicy(
        timeout_action=TimeoutAction(policy.get("timeout_action", "REJECT")),
        default_timeout_microseconds=int(policy.get("default_timeout_microseconds", 0)),
        allow_timeout_override=bool(policy.get("allow_timeout_override", False)),
        max_queue_size=int(policy.get("max_queue_size", 0)),
    )


def _parse_batcher(section: Dict[str, Any]) -> DynamicBatcher:
    preferred = section.get("preferred_batch_size")
    default_policy = section.get("default_queue_policy")
    priority_policy = section.get("priority_queue_policy")
    return DynamicBatcher(
        max_queue_delay_microseconds=int(section.get("max_queue_delay_microseconds", 0)),
        preferred_batch_size=[int(s) for s in preferred] if preferred else None,
        preserve_ordering=bool(section.get("preserve_ordering", False)),
        priority_levels=int(section.get("priority_levels", 0)),
        default_priority_level=int(section.get("default_priority_level", 0)),
        default_queue_policy=_parse_policy(default_policy) if default_policy else None,
        priority_queue_policy=(
            {int(k): _parse_policy(v) for k, v in priority_policy.items()} if priority_policy else None
        ),
    )


def replace(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` re-exported for convenience."""
    return dataclasses.replace(obj, **changes)


__all__ = [
    "DeviceKind",
    "DynamicBatcher",
    "ModelConfig",
    "ModelWarmup",
    "QueuePolicy",
    "Tensor",
    "TensorSpec",
    "TimeoutAction",
    "TritonModelConfig",
    "ResponseCache",
    "WarmupInput",
    "from_triton_dtype",
    "is_bytes_dtype",
    "normalize_dtype",
    "to_triton_dtype",
    "validate_model_config",
]
