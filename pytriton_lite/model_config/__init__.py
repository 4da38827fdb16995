"""Model configuration: PyTriton's ``pytriton.model_config`` package, with its module paths.

- ``model_config.common``: ``DeviceKind``, ``TimeoutAction``, ``QueuePolicy``, ``DynamicBatcher``,
  ``WarmupInput``, ``ModelWarmup``, ``generate_warmup_data``, ``generate_warmup_requests``
- ``model_config.tensor``: ``Tensor``
- ``model_config.model_config``: ``ModelConfig`` (and ``validate_model_config``)
- ``model_config.sequence``: ``SequenceBatcher`` and its parts, Triton's ``sequence_batching`` at ``bind`` (not in
  PyTriton)
- ``model_config.triton_model_config``: ``TritonModelConfig``, ``TensorSpec``, ``ResponseCache`` (what clients get
  back from a server's ``/config`` endpoint)

Every name is also importable from this package itself (the same objects). The dtype helpers
(``to_triton_dtype``, ``from_triton_dtype``, ``is_bytes_dtype``, ``normalize_dtype``, ``TRITON_DTYPES``) are
re-exported from the one dtype table, ``pytriton_lite._dtypes``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pytriton_lite._dtypes import TRITON_DTYPES, from_triton_dtype, is_bytes_dtype, normalize_dtype, to_triton_dtype
from pytriton_lite.model_config.common import (
    DeviceKind,
    DynamicBatcher,
    ModelWarmup,
    QueuePolicy,
    TimeoutAction,
    WarmupInput,
    generate_warmup_data,
    generate_warmup_requests,
)
from pytriton_lite.model_config.model_config import ModelConfig, validate_model_config
from pytriton_lite.model_config.sequence import (
    SequenceBatcher,
    SequenceBatcherControl,
    SequenceBatcherControlInput,
    SequenceBatcherControlKind,
    SequenceBatcherStrategyDirect,
    SequenceBatcherStrategyOldest,
)
from pytriton_lite.model_config.tensor import Tensor
from pytriton_lite.model_config.triton_model_config import ResponseCache, TensorSpec, TritonModelConfig


def replace(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` re-exported for convenience."""
    return dataclasses.replace(obj, **changes)


__all__ = [
    "DeviceKind",
    "DynamicBatcher",
    "ModelConfig",
    "ModelWarmup",
    "QueuePolicy",
    "SequenceBatcher",
    "SequenceBatcherControl",
    "SequenceBatcherControlInput",
    "SequenceBatcherControlKind",
    "SequenceBatcherStrategyDirect",
    "SequenceBatcherStrategyOldest",
    "Tensor",
    "TensorSpec",
    "TimeoutAction",
    "TritonModelConfig",
    "ResponseCache",
    "WarmupInput",
    "TRITON_DTYPES",
    "from_triton_dtype",
    "generate_warmup_data",
    "generate_warmup_requests",
    "is_bytes_dtype",
    "normalize_dtype",
    "replace",
    "to_triton_dtype",
    "validate_model_config",
]
