"""PyTriton's ``pytriton.model_config.triton_model_config``: a model's config as a server serves it.

``TritonModelConfig``, ``TensorSpec`` and ``ResponseCache`` are what clients get back from
``GET /v2/models/{m}/config`` (or gRPC ``ModelConfig``). ``TritonModelConfig.from_dict`` reads Triton's config JSON
(numbers, or proto-JSON strings for int64 fields) into PyTriton's fields, ``model_warmup`` included, and keeps the
whole config as served in ``served_config`` for everything PyTriton has no field for (``version_policy``,
``platform``, ``sequence_batching``, per-tensor ``format``...).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from pytriton_lite._dtypes import from_triton_dtype
from pytriton_lite.exceptions import PyTritonModelConfigError
from pytriton_lite.model_config.common import (
    DeviceKind,
    DynamicBatcher,
    ModelWarmup,
    QueuePolicy,
    TimeoutAction,
    WarmupInput,
)


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
    """A model's configuration as served by ``GET /v2/models/{m}/config`` (PyTriton's class).

    ``served_config`` (not compared, not in ``repr``) is the config dict ``from_dict`` was given, unchanged.
    """

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
    served_config: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def backend(self) -> str:
        """The served ``backend`` (``"python"`` for bound models and when the config does not say)."""
        return str(self.served_config.get("backend") or "python")

    @property
    def platform(self) -> str:
        """The served ``platform`` (``""`` when the config does not say)."""
        return str(self.served_config.get("platform") or "")

    @classmethod
    def from_dict(cls, config: Dict[str, Any], model_version: int = 1) -> TritonModelConfig:
        """Parse Triton's config JSON; ``PyTritonModelConfigError`` when it is not a model config."""
        try:
            max_batch_size = int(config.get("max_batch_size", 0))
            section = config.get("dynamic_batching")
            warmup = config.get("model_warmup")
            cache = config.get("response_cache")
            return cls(
                model_name=config["name"],
                model_version=model_version,
                max_batch_size=max_batch_size,
                batching=max_batch_size > 0,
                batcher=_parse_batcher(section) if section is not None else None,
                instance_group=_parse_instance_groups(config.get("instance_group") or []),
                decoupled=bool((config.get("model_transaction_policy") or {}).get("decoupled", False)),
                backend_parameters=_parse_parameters(config.get("parameters")),
                inputs=[_parse_spec(t) for t in config.get("input", [])],
                outputs=[_parse_spec(t) for t in config.get("output", [])],
                response_cache=ResponseCache(bool(cache.get("enable", False))) if cache else None,
                model_warmup=[_parse_warmup(w) for w in warmup] if warmup else None,
                served_config=copy.deepcopy(dict(config)),
            )
        except PyTritonModelConfigError:
            raise
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise PyTritonModelConfigError(f"Cannot parse model config: {type(exc).__name__}: {exc}") from exc


def _spec_dtype(data_type: str) -> Any:
    """Config ``data_type`` -> PyTriton's spec dtype: a numpy scalar type, ``np.bytes_`` for TYPE_STRING."""
    dtype = from_triton_dtype(data_type)
    return np.bytes_ if dtype == np.dtype(object) else dtype.type


def _parse_spec(tensor: Dict[str, Any]) -> TensorSpec:
    if "name" not in tensor or "data_type" not in tensor or "dims" not in tensor:
        raise PyTritonModelConfigError(f"Tensor config needs name, data_type and dims: {tensor!r}")
    return TensorSpec(
        name=tensor["name"],
        shape=tuple(int(d) for d in tensor["dims"]),
        dtype=_spec_dtype(tensor["data_type"]),
        optional=bool(tensor.get("optional", False)),
    )


def _parse_instance_groups(groups: List[Dict[str, Any]]) -> Dict[DeviceKind, Optional[int]]:
    """kind -> instance count; several groups of one kind add up (an omitted kind is KIND_AUTO, proto's default)."""
    counts: Dict[DeviceKind, Optional[int]] = {}
    for group in groups:
        kind = DeviceKind(group.get("kind", DeviceKind.KIND_AUTO.value))
        count = group.get("count")
        if kind in counts and counts[kind] is not None and count is not None:
            counts[kind] = int(counts[kind] or 0) + int(count)
        else:
            counts[kind] = int(count) if count is not None else None
    return counts


def _parse_parameters(parameters: Any) -> Dict[str, str]:
    """``{"key": {"string_value": "v"}}`` (Triton) or a list of keys (PyTriton accepts both)."""
    if not parameters:
        return {}
    if isinstance(parameters, list):
        return dict.fromkeys((str(key) for key in parameters), "")
    return {str(key): str((value or {}).get("string_value", "")) for key, value in parameters.items()}


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


def _parse_warmup(entry: Dict[str, Any]) -> ModelWarmup:
    inputs = {}
    for name, winput in (entry.get("inputs") or {}).items():
        if "data_type" not in winput or not winput.get("dims"):
            raise PyTritonModelConfigError(f"Warm-up input {name!r} needs data_type and dims: {winput!r}")
        inputs[name] = WarmupInput(
            dtype=_spec_dtype(winput["data_type"]),
            shape=tuple(int(d) for d in winput["dims"]),
            zero_data=bool(winput.get("zero_data", False)),
            random_data=bool(winput.get("random_data", False)),
            input_data_file=winput.get("input_data_file") or None,
        )
    return ModelWarmup(
        name=str(entry.get("name", "")),
        batch_size=int(entry.get("batch_size", 0)),
        inputs=inputs,
        count=int(entry.get("count", 0)),
    )


__all__ = ["ResponseCache", "TensorSpec", "TritonModelConfig"]
