"""``InferenceRequest`` (what ``execute`` receives, and a BLS request a model builds), its response sender and
the thread-safe queue behind the sender."""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import threading
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Tuple, Union

from pytriton_lite.pb_utils import _bls
from pytriton_lite.pb_utils._errors import TritonModelException
from pytriton_lite.pb_utils._response import InferenceResponse, checked_parameters
from pytriton_lite.pb_utils._tensor import Tensor
from pytriton_lite.pb_utils._types import TRITONSERVER_REQUEST_RELEASE_RESCHEDULE, TRITONSERVER_RESPONSE_COMPLETE_FINAL
from pytriton_lite.types import Request

if TYPE_CHECKING:
    from pytriton_lite.repository.backend import LoadContext

_FINAL = TRITONSERVER_RESPONSE_COMPLETE_FINAL
_QUEUE_LOCK = threading.Lock()
Waiter = Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class MemoryType(enum.IntEnum):
    TRITONSERVER_MEMORY_GPU = 0
    TRITONSERVER_MEMORY_CPU = 1


TRITONSERVER_MEMORY_GPU = MemoryType.TRITONSERVER_MEMORY_GPU
TRITONSERVER_MEMORY_CPU = MemoryType.TRITONSERVER_MEMORY_CPU


class PreferredMemory:
    """Where a BLS call would like its outputs; outputs are always in host memory here."""

    def __init__(self, preferred_memory_type: int, preferred_device_id: int = 0) -> None:
        self.preferred_memory_type = preferred_memory_type
        self.preferred_device_id = preferred_device_id


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _wake(waiter: Optional[Waiter]) -> None:
    if waiter is not None:
        try:
            waiter[0].call_soon_threadsafe(_resolve, waiter[1])
        except RuntimeError:  # the reader's loop is closed: nobody reads any more
            pass


def _check_send(response: Any, flags: int) -> None:
    if flags not in (0, _FINAL):
        raise TritonModelException("Unable to send response. Unsupported flag provided.")
    if response is None and flags == 0:
        raise TritonModelException("Inference Response object must be provided when the response flags is set to zero.")
    if response is not None and not isinstance(response, InferenceResponse):
        raise TypeError(f"send() takes a pb_utils.InferenceResponse, got {type(response).__name__}")


class ResponseQueue:
    """The responses sent for one request: put from any thread, read by one coroutine (on the instance's
    loop). Enforces Triton's rules: nothing after the FINAL flag; a non-decoupled model sends one response."""

    __slots__ = ("_lock", "_items", "_waiter", "decoupled", "closed", "cancelled", "sent")

    def __init__(self, decoupled: bool) -> None:
        self._lock = threading.Lock()
        self._items: Deque[Tuple[Any, int]] = collections.deque()
        self._waiter: Optional[Waiter] = None
        self.decoupled = decoupled
        self.closed = False
        self.cancelled = False  # the client is gone: what is sent now reaches nobody
        self.sent = 0

    def send(self, response: Optional[InferenceResponse], flags: int) -> None:
        _check_send(response, flags)
        with self._lock:
            if not self.decoupled and response is not None and self.sent:
                raise TritonModelException(
                    "Unable to send response. Non-decoupled model cannot send more than one response."
                )
            if not self.decoupled and response is None and not self.sent:
                raise TritonModelException(
                    "Unable to send response. Non-decoupled model cannot send complete final before sending a response."
                )
            if self.closed:
                raise TritonModelException("Unable to send response. Response sender has been closed.")
            self.closed = flags == _FINAL
            self.sent += 1
            waiter = self._enqueue((response, flags))
        _wake(waiter)

    def put(self, item: Tuple[Any, int]) -> None:
        """Queue ``item`` (the backend's own marker) and wake the reader."""
        with self._lock:
            waiter = self._enqueue(item)
        _wake(waiter)

    def _enqueue(self, item: Tuple[Any, int]) -> Optional[Waiter]:
        """Append under the lock (so sends from several threads keep their order); the waiter to wake."""
        if self.cancelled:
            return None
        self._items.append(item)
        waiter, self._waiter = self._waiter, None
        return waiter

    async def get(self) -> Tuple[Any, int]:
        """The next item, waiting on the running loop without blocking it."""
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                self._waiter = (loop, future)
            try:
                await future
            finally:
                with self._lock:
                    if self._waiter is not None and self._waiter[1] is future:
                        self._waiter = None

    def cancel(self) -> None:
        """The reader is gone: later sends are dropped and ``is_cancelled()`` answers True."""
        with self._lock:
            self.cancelled = True
            self._items.clear()


class InferenceResponseSender:
    """``request.get_response_sender()``: send responses from any thread, even after ``execute`` returned."""

    __slots__ = ("_queue",)

    def __init__(self, queue: ResponseQueue) -> None:
        self._queue = queue

    def send(self, response: Optional[InferenceResponse] = None, flags: int = 0) -> None:
        """Send ``response``; ``flags=TRITONSERVER_RESPONSE_COMPLETE_FINAL`` ends the request's responses
        (with or without a last response)."""
        self._queue.send(response, flags)

    def is_cancelled(self) -> bool:
        return self._queue.cancelled


class InferenceRequest:
    """A request: received by ``execute``, or built by a model for BLS and run with ``exec()``/``async_exec()``."""

    __slots__ = (
        "_model_name",
        "_model_version",
        "_inputs",
        "_data",
        "_requested",
        "_request_id",
        "_correlation_id",
        "_flags",
        "_timeout",
        "_parameters",
        "_preferred_memory",
        "_context",
        "_core",
        "_queue",
        "_decoupled",
        "_release_flags",
    )

    def __init__(
        self,
        *,
        model_name: str,
        inputs: Optional[List[Tensor]] = None,
        requested_output_names: Optional[List[str]] = None,
        request_id: str = "",
        correlation_id: Union[int, str] = 0,
        model_version: int = -1,
        flags: int = 0,
        timeout: int = 0,
        preferred_memory: Optional[PreferredMemory] = None,
        trace: Any = None,
        parameters: Optional[Dict[str, Any]] = None,
    ) -> None:
        if not isinstance(correlation_id, (int, str)):
            raise TritonModelException("Correlation ID must be integer or string")
        self._model_name = model_name
        self._model_version = model_version
        self._inputs: Optional[List[Tensor]] = list(inputs or [])
        self._data: Optional[Dict[str, Any]] = None
        self._requested = list(requested_output_names or [])
        self._request_id = request_id
        self._correlation_id = correlation_id
        self._flags = flags
        self._timeout = timeout
        self._parameters = checked_parameters(parameters)
        self._preferred_memory = preferred_memory
        self._context: Optional[LoadContext] = _bls.current()  # the server of the model building it
        self._core: Optional[Request] = None
        self._queue: Optional[ResponseQueue] = None
        self._decoupled: Optional[bool] = None  # None: not a received request (no response sender)
        self._release_flags = 0

    @classmethod
    def _incoming(cls, request: Request, model_name: str, decoupled: bool) -> InferenceRequest:
        """A request the model receives (the request path: nothing is copied or checked)."""
        self = cls.__new__(cls)
        self._model_name = model_name
        self._model_version = -1
        self._inputs = None  # Tensors are made when asked for
        self._data = request.data
        self._requested = request.requested_output_names or []
        self._parameters = request.parameters or {}
        self._context = None
        self._core = request
        self._queue = None
        self._decoupled = decoupled
        self._release_flags = 0
        self._preferred_memory = None
        return self

    def inputs(self) -> List[Tensor]:
        if self._inputs is None:
            data = self._data or {}
            self._inputs = [Tensor._wrap(name, array) for name, array in data.items()]
        return self._inputs

    def _input(self, name: str) -> Optional[Tensor]:
        if self._inputs is None and self._data is not None:
            array = self._data.get(name)
            return None if array is None else Tensor._wrap(name, array)
        for tensor in self.inputs():
            if tensor._name == name:
                return tensor
        return None

    # a received request answers from the server's ``Request``: the client's id, sequence_id and flags
    def request_id(self) -> str:
        return self._core.id if self._core is not None else self._request_id

    def correlation_id(self) -> Union[int, str]:
        return self._core.correlation_id if self._core is not None else self._correlation_id

    def flags(self) -> int:
        return self._core.flags if self._core is not None else self._flags

    def set_flags(self, flags: int) -> None:
        self._flags = flags

    def timeout(self) -> int:
        """The request's timeout in microseconds (0: none)."""
        return self._core.timeout_us if self._core is not None else self._timeout

    def parameters(self) -> str:
        """The request parameters as a JSON string, e.g. ``'{"tenant": "acme"}'``."""
        return json.dumps(self._parameters)

    def requested_output_names(self) -> List[str]:
        return list(self._requested)

    def _ensure_queue(self) -> ResponseQueue:
        with _QUEUE_LOCK:
            if self._queue is None:
                self._queue = ResponseQueue(bool(self._decoupled))
            return self._queue

    def get_response_sender(self) -> InferenceResponseSender:
        if self._decoupled is None:
            raise TritonModelException("get_response_sender() is only for requests a model received")
        return InferenceResponseSender(self._ensure_queue())

    def is_cancelled(self) -> bool:
        queue = self._queue
        return queue is not None and queue.cancelled

    def set_release_flags(self, flags: int) -> None:
        if flags & TRITONSERVER_REQUEST_RELEASE_RESCHEDULE:
            raise TritonModelException(
                "request rescheduling needs 'sequence_batching { iterative_sequence: true }', "
                "which pytriton_lite does not support"
            )
        self._release_flags = flags

    def _bls_request(self) -> Any:
        return _bls.core_request(
            self._model_name,
            self._model_version,
            self.inputs(),
            self._requested,
            self.request_id(),
            self.timeout(),
            self._parameters,
            self.correlation_id(),
            self.flags(),
        )

    def exec(self, decoupled: bool = False) -> Any:
        """Run this request on its model and wait: an ``InferenceResponse`` (check ``has_error()``), or with
        ``decoupled=True`` an iterator of them."""
        return _bls.run(_bls.resolve(self._context), self._bls_request(), decoupled)

    def async_exec(self, decoupled: bool = False) -> Any:
        """``exec`` as an awaitable, for ``async def execute`` (several may run at once with asyncio.gather)."""
        return _bls.run_async(_bls.resolve(self._context), self._bls_request(), decoupled)

    def __repr__(self) -> str:
        return f"InferenceRequest(model_name={self._model_name!r}, inputs={self.inputs()!r})"


def get_input_tensor_by_name(inference_request: Any, name: str) -> Optional[Tensor]:
    """The input tensor ``name`` of a request, or None (an optional input the client left out)."""
    if type(inference_request) is InferenceRequest:
        return inference_request._input(name)
    for tensor in inference_request.inputs():
        if tensor.name() == name:
            return tensor
    return None


__all__ = [
    "InferenceRequest",
    "InferenceResponseSender",
    "MemoryType",
    "PreferredMemory",
    "ResponseQueue",
    "TRITONSERVER_MEMORY_CPU",
    "TRITONSERVER_MEMORY_GPU",
    "get_input_tensor_by_name",
]
