"""The data plane: the one API both front ends call (MLServer's pattern).

Every method runs on the serving loop. Transports decode their wire format into ``InferenceRequest``,
call ``infer``/``infer_stream`` and encode the ``InferenceResponse`` they get back.
"""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Callable, Dict, List, Optional, Tuple

from pytriton_lite.core.batcher import _END, Batcher, Pending
from pytriton_lite.core.cache import ResponseCache, request_key
from pytriton_lite.core.model import Model
from pytriton_lite.core.registry import Registry
from pytriton_lite.core.stats import ModelStats
from pytriton_lite.exceptions import InferenceError, UnavailableError, UnsupportedError
from pytriton_lite.types import InferenceRequest, InferenceResponse

DECOUPLED_ON_INFER = "HTTP end point doesn't support models with decoupled transaction policy"


class DataPlane:
    """Models, their batchers and statistics, behind transport-agnostic calls."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, server_id: str = "triton", cache_bytes: Optional[int] = None
    ) -> None:
        self.loop = loop
        self.server_id = server_id
        self.cache: Optional[ResponseCache] = ResponseCache(cache_bytes) if cache_bytes else None
        self.registry = Registry()
        self.batchers: Dict[Tuple[str, int], Batcher] = {}
        self.stats: Dict[Tuple[str, int], ModelStats] = {}
        self.accepting = True
        self.alive = True
        self.on_unrecoverable: Callable[[BaseException], None] = lambda exc: None

    # --- model lifecycle (called on the loop by Triton) ------------------------------------------------

    def add_model(self, model: Model) -> None:
        self.registry.add(model)
        key = (model.name, model.version)
        stats = self.stats[key] = ModelStats()
        batcher = Batcher(model, self.loop, stats, self._unrecoverable)
        self.batchers[key] = batcher
        batcher.start()
        model.ready = True

    def _unrecoverable(self, exc: BaseException) -> None:
        self.on_unrecoverable(exc)

    def batcher_for(self, model: Model) -> Batcher:
        return self.batchers[(model.name, model.version)]

    def stats_for(self, model: Model) -> ModelStats:
        return self.stats[(model.name, model.version)]

    async def drain(self, timeout: float) -> bool:
        """Refuse new requests, then wait (up to ``timeout`` s) until queued and running ones finish."""
        self.accepting = False
        waits = [b.wait_idle() for b in self.batchers.values()]
        if not waits:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def stop_models(self) -> None:
        for model in self.registry.models():
            model.ready = False
        for batcher in self.batchers.values():
            batcher.stop()

    def join_instances(self, timeout: float) -> None:
        for batcher in self.batchers.values():
            batcher.join(timeout)

    def instances_alive(self) -> bool:
        return all(b.instances_alive() for b in self.batchers.values())

    # --- health and metadata ---------------------------------------------------------------------------

    def live(self) -> bool:
        return self.alive

    def ready(self) -> bool:
        return self.alive and self.accepting and all(m.ready for m in self.registry.models())

    def models(self) -> List[Model]:
        return self.registry.models()

    def get_model(self, name: str, version: str = "") -> Model:
        return self.registry.get(name, version)

    def model_ready(self, name: str, version: str = "") -> bool:
        return self.registry.get(name, version).ready and self.accepting

    # --- inference -------------------------------------------------------------------------------------

    def _admit(self, request: InferenceRequest) -> Model:
        model = self.registry.get(request.model_name, request.model_version)
        if not self.accepting or not model.ready:
            raise UnavailableError(f"Server is not accepting requests: model '{model.name}' is not ready")
        return model

    async def infer(self, request: InferenceRequest, is_gone: Optional[Callable[[], bool]] = None) -> InferenceResponse:
        """One request, one response. Cancelling the awaiting task drops the request if still queued; so does
        ``is_gone()`` turning True (a transport's probe for a disconnected client, checked at dispatch)."""
        model = self._admit(request)
        if model.decoupled:
            raise UnsupportedError(DECOUPLED_ON_INFER)
        callable_request, batch_size, key = model.prepare(request)
        stats = self.stats[(model.name, model.version)]
        cache_key = None
        if self.cache is not None and model.config.response_cache:
            started = time.monotonic_ns()
            cache_key = request_key(request)
            outputs = self.cache.get(cache_key)
            if outputs is not None:
                stats.record_cache_hit(time.monotonic_ns() - started)
                return InferenceResponse(model.name, model.version_str, outputs, id=request.id)
            stats.cache_miss.add(time.monotonic_ns() - started)
        future = self.loop.create_future()
        self.batchers[(model.name, model.version)].submit(
            Pending(callable_request, request, batch_size, key, future=future, is_gone=is_gone)
        )
        response = await future
        if cache_key is not None and self.cache is not None:
            self.cache.put(cache_key, response.outputs)
        return response

    async def infer_stream(self, request: InferenceRequest) -> AsyncIterator[InferenceResponse]:
        """0..n responses for a decoupled model (exactly one otherwise); closing the iterator stops the model."""
        model = self._admit(request)
        callable_request, batch_size, key = model.prepare(request)
        batcher = self.batchers[(model.name, model.version)]
        if not model.decoupled:
            future = self.loop.create_future()
            batcher.submit(Pending(callable_request, request, batch_size, key, future=future))
            yield await future
            return
        stream: asyncio.Queue = asyncio.Queue()
        item = Pending(callable_request, request, batch_size, key, stream=stream)
        batcher.submit(item)
        try:
            while True:
                outcome = await stream.get()
                if outcome is _END:
                    return
                if isinstance(outcome, BaseException):
                    raise outcome
                yield outcome
        finally:
            item.closed = True


__all__ = ["DataPlane", "DECOUPLED_ON_INFER", "InferenceError"]
