"""Model warm-up (PyTriton 0.6 semantics): call each instance with generated requests before it is ready."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List, Sequence

import numpy as np

from pytriton_lite.core import callables
from pytriton_lite.core.instances import Instance
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


def run_warmup(model: Model, instances: Sequence[Instance], timeout: float = 600.0) -> int:
    """Run every warm-up request through every instance, on that instance's own thread (a thread-affine model
    warms up where it will serve). Failures are logged, not raised (PyTriton). Returns the calls made."""
    calls = 0
    for warmup in model.config.model_warmup or []:
        for instance in instances:
            for request in warmup_requests(model, warmup):
                future = instance.execute(_call(instance.func, request))
                try:
                    future.result(timeout)
                except Exception:
                    LOGGER.warning("Warm-up %r of model '%s' failed", warmup.name, model.name, exc_info=True)
                calls += 1
    return calls


def _call(func: Callable[..., Any], request: Request) -> Callable[[], Awaitable[None]]:
    return lambda: _consume(func([request]))


async def _consume(result: Any) -> None:
    """Run lazy callables (coroutines, generators, async generators) to the end."""
    await callables.for_each(result, _keep_going)


async def _keep_going(_: Any) -> bool:
    return True
