"""Model warm-up (PyTriton 0.6 semantics): call each instance with generated requests before it is ready."""

from __future__ import annotations

import inspect
import logging
from typing import Any, Dict, List

import numpy as np

from pytriton_lite.core.model import Model
from pytriton_lite.model_config import ModelWarmup, WarmupInput, is_bytes_dtype
from pytriton_lite.types import Request

LOGGER = logging.getLogger("pytriton_lite.core")


def _data(winput: WarmupInput, shape: List[int]) -> np.ndarray:
    if is_bytes_dtype(winput.dtype):
        size = int(np.prod(shape)) if shape else 1
        if winput.input_data_file:
            with open(winput.input_data_file, "rb") as handle:
                blob = handle.read()
            return np.array([blob] * size, dtype=object).reshape(shape)
        fill = b"\x00" if winput.zero_data else b"warmup"
        return np.array([fill] * size, dtype=object).reshape(shape)
    dtype = np.dtype(winput.dtype)
    if winput.zero_data:
        return np.zeros(shape, dtype=dtype)
    if winput.random_data:
        rng = np.random.default_rng(0)
        if dtype.kind == "b":
            return rng.integers(0, 2, size=shape).astype(dtype)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            return rng.integers(max(info.min, -100), min(info.max, 100), size=shape, endpoint=True).astype(dtype)
        return rng.random(size=shape).astype(dtype)
    return np.fromfile(str(winput.input_data_file), dtype=dtype).reshape(shape)


def warmup_requests(model: Model, warmup: ModelWarmup) -> List[Request]:
    """The requests one ``ModelWarmup`` entry stands for (``count`` of them, each of ``batch_size`` rows)."""
    data: Dict[str, np.ndarray] = {}
    for name, winput in warmup.inputs.items():
        shape = list(winput.shape)
        if model.max_batch_size > 0:
            shape = [int(warmup.batch_size)] + shape
        data[name] = _data(winput, shape)
    return [
        Request(data=dict(data), parameters={}, requested_output_names=list(model.output_names))
        for _ in range(max(1, int(warmup.count)))
    ]


def run_warmup(model: Model) -> int:
    """Run every warm-up request through every instance; failures are logged, not raised. Returns calls made."""
    calls = 0
    for warmup in model.config.model_warmup or []:
        for func in model.infer_funcs:
            for request in warmup_requests(model, warmup):
                try:
                    _drain(func([request]))
                except Exception:  # noqa: BLE001 - PyTriton logs and ignores warm-up failures
                    LOGGER.warning("Warm-up %r of model '%s' failed", warmup.name, model.name, exc_info=True)
                calls += 1
    return calls


def _drain(result: Any) -> None:
    """Consume generators/coroutines so that lazy callables really run during warm-up."""
    import asyncio  # noqa: PLC0415 - only for async callables

    if inspect.isawaitable(result):
        asyncio.run(_await(result))
    elif inspect.isasyncgen(result):
        asyncio.run(_consume(result))
    elif inspect.isgenerator(result):
        for _ in result:
            pass


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _consume(agen: Any) -> None:
    async for _ in agen:
        pass
