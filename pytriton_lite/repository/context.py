"""``DataPlaneContext``: the ``LoadContext`` backends get, calling other models of the same server.

Every call goes through the data plane on the serving loop, so a called model batches with the rest of its
traffic and answers with its usual errors. Blocking calls (``infer``, ``infer_stream``, ``model_config``) post
a coroutine with ``asyncio.run_coroutine_threadsafe`` and wait for it; they are for instance and loader
threads and refuse to run on the serving loop itself (that would deadlock). The async variants are for code
running on an instance's own event loop: they post the same coroutines and await them with
``asyncio.wrap_future``; called on the serving loop they simply await the data plane.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING, Any, AsyncIterator, Coroutine, List, Optional, TypeVar

from pytriton_lite.core.dataplane import InProcessDataPlane
from pytriton_lite.exceptions import PyTritonInvalidOperationError
from pytriton_lite.pb_utils._metrics import CustomMetrics
from pytriton_lite.repository.backend import LoadContext
from pytriton_lite.types import InferenceRequest, InferenceResponse

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

T = TypeVar("T")
_END = object()


class DataPlaneContext:
    """Calls into ``dataplane`` (running on ``loop``) from the threads and loops of model instances."""

    def __init__(self, dataplane: InProcessDataPlane, loop: asyncio.AbstractEventLoop) -> None:
        self._dataplane = dataplane
        self._loop = loop
        # the server's pb_utils.MetricFamily registry: python models find it through their BLS context
        self.custom_metrics = CustomMetrics()

    def _on_serving_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _wait(self, coro: Coroutine[Any, Any, T], timeout_s: Optional[float] = None) -> T:
        if self._on_serving_loop():
            coro.close()
            raise PyTritonInvalidOperationError(
                "a blocking call into the server was made on the serving loop; use the async variant"
            )
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    # --- blocking (instance and loader threads) -------------------------------------------------------

    def infer(self, request: InferenceRequest, timeout_s: Optional[float] = None) -> InferenceResponse:
        return self._wait(self._dataplane.infer(request), timeout_s)

    def infer_stream(self, request: InferenceRequest) -> List[InferenceResponse]:
        return self._wait(self._collect(request))

    async def _collect(self, request: InferenceRequest) -> List[InferenceResponse]:
        return [response async for response in self._dataplane.infer_stream(request)]

    def model_config(self, name: str, version: str = "") -> ModelConfigProto:
        if self._on_serving_loop():
            return self._dataplane.model(name, version).config
        return self._wait(self._config(name, version))

    async def _config(self, name: str, version: str) -> ModelConfigProto:
        return self._dataplane.model(name, version).config

    # --- async (an instance's own event loop) ----------------------------------------------------------

    async def infer_async(self, request: InferenceRequest) -> InferenceResponse:
        if self._on_serving_loop():
            return await self._dataplane.infer(request)
        future = asyncio.run_coroutine_threadsafe(self._dataplane.infer(request), self._loop)
        return await asyncio.wrap_future(future)

    async def infer_stream_async(self, request: InferenceRequest) -> AsyncIterator[InferenceResponse]:
        """The responses as they come; leaving the loop early closes the stream on the serving loop."""
        if self._on_serving_loop():
            async for response in self._dataplane.infer_stream(request):
                yield response
            return
        here = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            try:
                here.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the consumer's loop is closed: nobody reads any more
                pass

        async def pump() -> None:
            try:
                async for response in self._dataplane.infer_stream(request):
                    put(response)
            except BaseException as exc:  # handed to the consumer, re-raised there
                put(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
            else:
                put(_END)

        future = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()  # a stream left early is closed on the serving loop (the called model stops)


if TYPE_CHECKING:  # mypy proves that the implementation satisfies the backends' protocol

    def _implements(context: DataPlaneContext) -> LoadContext:
        return context


__all__ = ["DataPlaneContext"]
