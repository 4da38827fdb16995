"""PyTriton's ``pytriton.model_config.common``: enums and dataclasses shared by the model configs, and warm-up data.

``DeviceKind``, ``TimeoutAction``, ``QueuePolicy``, ``DynamicBatcher``, ``WarmupInput`` and ``ModelWarmup`` keep
PyTriton's names, fields and defaults. ``generate_warmup_data`` / ``generate_warmup_requests`` build the arrays a
``ModelWarmup`` stands for, as PyTriton's helpers of the same names do.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from pytriton_lite._dtypes import is_bytes_dtype
from pytriton_lite.exceptions import PyTritonBadParameterError


class DeviceKind(enum.Enum):
    """Device kind of model instances (exported for compatibility; bound instances are always KIND_CPU)."""

    KIND_AUTO = "KIND_AUTO"
    KIND_CPU = "KIND_CPU"
    KIND_GPU = "KIND_GPU"


class TimeoutAction(enum.Enum):
    """What happens to a queued request whose timeout expires."""

    REJECT = "REJECT"
    DELAY = "DELAY"


@dataclasses.dataclass
class QueuePolicy:
    """Queue policy of the dynamic batcher (per model or per priority level)."""

    timeout_action: TimeoutAction = TimeoutAction.REJECT
    default_timeout_microseconds: int = 0
    allow_timeout_override: bool = False
    max_queue_size: int = 0


@dataclasses.dataclass
class DynamicBatcher:
    """Dynamic batcher settings (Triton's ``dynamic_batching``)."""

    max_queue_delay_microseconds: int = 0
    preferred_batch_size: Optional[list] = None
    preserve_ordering: bool = False
    priority_levels: int = 0
    default_priority_level: int = 0
    default_queue_policy: Optional[QueuePolicy] = None
    priority_queue_policy: Optional[Dict[int, QueuePolicy]] = None


@dataclasses.dataclass
class WarmupInput:
    """One input of a warm-up request: exactly one of zero_data, random_data, input_data_file."""

    dtype: Any
    shape: Sequence[int]
    zero_data: bool = False
    random_data: bool = False
    input_data_file: Optional[str] = None


@dataclasses.dataclass
class ModelWarmup:
    """A warm-up run: ``count`` requests of ``batch_size`` built from ``inputs``."""

    name: str
    batch_size: int
    inputs: Dict[str, WarmupInput]
    count: int


# --- warm-up data ---------------------------------------------------------------------------------------------

_RANDOM_TEXT = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)


def _from_file(warmup_input: WarmupInput, full_shape: tuple) -> np.ndarray:
    """An ``.npy`` file's array, fitted to ``full_shape``: a sample gets the batch axis, a batch is cut or tiled."""
    data = np.load(str(warmup_input.input_data_file), allow_pickle=is_bytes_dtype(warmup_input.dtype))
    sample_shape, batch_size = full_shape[1:], full_shape[0]
    if data.shape == full_shape:
        pass
    elif data.shape == sample_shape:
        data = np.repeat(data[np.newaxis, ...], batch_size, axis=0)
    elif data.ndim == len(full_shape) and data.shape[1:] == sample_shape and data.shape[0] > 0:
        repeats = -(-batch_size // data.shape[0])  # ceil
        data = np.concatenate([data] * repeats)[:batch_size]
    else:
        raise PyTritonBadParameterError(
            f"Warm-up input data file {warmup_input.input_data_file} holds shape {data.shape}; "
            f"expected {full_shape} or {sample_shape}."
        )
    return data.astype(object if is_bytes_dtype(warmup_input.dtype) else warmup_input.dtype)


def _random(dtype: Any, full_shape: tuple, rng: np.random.Generator) -> np.ndarray:
    if is_bytes_dtype(dtype):
        size = int(np.prod(full_shape))
        words = [_RANDOM_TEXT[rng.integers(0, len(_RANDOM_TEXT), rng.integers(8, 33))].tobytes() for _ in range(size)]
        return np.array(words, dtype=object).reshape(full_shape)
    np_dtype = np.dtype(dtype)
    if np_dtype.kind == "b":
        return rng.integers(0, 2, size=full_shape).astype(np_dtype)
    if np_dtype.kind in "iu":
        info = np.iinfo(np_dtype)
        low, high = max(int(info.min), -128), min(int(info.max), 255)
        return rng.integers(low, high, size=full_shape, endpoint=True).astype(np_dtype)
    if np_dtype.kind in "fc":
        return rng.random(size=full_shape).astype(np_dtype)
    return np.zeros(full_shape, dtype=np_dtype)


def generate_warmup_data(warmup_input: WarmupInput, batch_size: int) -> np.ndarray:
    """The array one warm-up input stands for: shape ``(batch_size, *warmup_input.shape)``.

    ``zero_data`` gives zeros (``b""`` for BYTES), ``random_data`` random values (random lowercase words for BYTES),
    ``input_data_file`` the array stored in that ``.npy`` file, given the batch axis or cut/tiled to ``batch_size``.
    No source raises ``PyTritonBadParameterError``.
    """
    full_shape = (int(batch_size), *(int(d) for d in warmup_input.shape))
    if warmup_input.input_data_file:
        return _from_file(warmup_input, full_shape)
    if warmup_input.zero_data:
        if is_bytes_dtype(warmup_input.dtype):
            return np.full(full_shape, b"", dtype=object)
        return np.zeros(full_shape, dtype=warmup_input.dtype)
    if warmup_input.random_data:
        return _random(warmup_input.dtype, full_shape, np.random.default_rng())
    raise PyTritonBadParameterError(
        "One of 'zero_data', 'random_data', or 'input_data_file' must be provided for warmup input."
    )


def generate_warmup_requests(
    model_warmup: Optional[List[ModelWarmup]], input_specs: Optional[List[Any]] = None, outputs_specs: Any = None
) -> List[Dict[str, np.ndarray]]:
    """One ``{input name: array}`` dict per warm-up request (``count`` per ``ModelWarmup``, in order).

    ``input_specs``/``outputs_specs`` are accepted for PyTriton's signature; as there, they are not checked.
    """
    requests: List[Dict[str, np.ndarray]] = []
    for warmup in model_warmup or []:
        for _ in range(int(warmup.count)):
            requests.append(
                {name: generate_warmup_data(winput, warmup.batch_size) for name, winput in warmup.inputs.items()}
            )
    return requests


__all__ = [
    "DeviceKind",
    "DynamicBatcher",
    "ModelWarmup",
    "QueuePolicy",
    "TimeoutAction",
    "WarmupInput",
    "generate_warmup_data",
    "generate_warmup_requests",
]
