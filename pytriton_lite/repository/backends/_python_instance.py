"""One python model instance: its ``TritonPythonModel`` object and the infer callable that drives it.

The callable turns the server's ``Request``s into ``pb_utils.InferenceRequest``s, calls ``execute`` (plain or
``async def``) with the instance's ``LoadContext`` bound for BLS, and turns the ``InferenceResponse``s back
into output dicts. Responses sent through a response sender go through a thread-safe queue per request,
read on the instance's event loop: decoupled models stream from it (an async generator, so the instance is
free for the next request while a stream goes on, as in Triton), and a non-decoupled ``execute`` returning
None (or None for some requests) has its responses awaited there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import traceback
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Dict, List, Optional, Sequence

from pytriton_lite.exceptions import InferenceError, ModelExecutionError, PyTritonUnrecoverableError
from pytriton_lite.pb_utils import _bls
from pytriton_lite.pb_utils._errors import TritonError, TritonModelException, to_inference_error
from pytriton_lite.pb_utils._request import InferenceRequest, ResponseQueue
from pytriton_lite.pb_utils._response import InferenceResponse
from pytriton_lite.pb_utils._types import TRITONSERVER_RESPONSE_COMPLETE_FINAL
from pytriton_lite.repository.backend import ModelLoadError
from pytriton_lite.repository.backends._python_import import Namespace
from pytriton_lite.types import Request

if TYPE_CHECKING:
    from pytriton_lite.repository.backend import LoadContext

LOGGER = logging.getLogger("pytriton_lite.repository.python")

_FINAL = TRITONSERVER_RESPONSE_COMPLETE_FINAL
_EXECUTED = object()  # queued when an async decoupled execute returns
# frames left out of the tracebacks shown: the backend's own, and importlib's
_INTERNAL_FILES = (os.path.dirname(os.path.abspath(__file__)) + os.sep, "<frozen importlib")


def describe(exc: BaseException) -> str:
    """Triton's words for a Python exception: ``<Type>: <message>``, then ``At:`` and the model's frames,
    innermost first (``  /models/m/1/model.py(12): execute``)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_INTERNAL_FILES)]
    text = f"{type(exc).__name__}: {exc}"
    if frames:
        text += "\n\nAt:\n" + "\n".join(f"  {f.filename}({f.lineno}): {f.name}" for f in reversed(frames))
    return text


def run_to_completion(value: Any) -> Any:
    """``value``, or what it resolves to when it is awaitable (an ``async def initialize``/``finalize``)."""
    if not inspect.isawaitable(value):
        return value

    async def wait() -> Any:
        return await value

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # this thread runs a loop: wait on another one
        return pool.submit(asyncio.run, wait()).result()


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: the stream's reader reports it, if it is still there


class PythonInstance:
    """A ``TritonPythonModel`` object and its infer callable (``infer``).

    The object is made, and ``initialize`` called, by ``initialize`` on the instance's own thread (the one
    that runs ``execute``, as Triton's stub runs both on its main thread): thread-local state and asyncio
    objects made there serve ``execute``.
    """

    def __init__(
        self,
        cls: Any,
        instance_name: str,
        model_name: str,
        decoupled: bool,
        context: LoadContext,
        namespace: Namespace,
    ) -> None:
        execute = getattr(cls, "execute", None)
        if execute is None:
            raise ModelLoadError(f"Python model '{model_name}' does not implement `execute` method.")
        self._cls = cls
        self.model: Any = None  # the TritonPythonModel object, once initialized
        self.instance_name = instance_name
        self.model_name = model_name
        self.decoupled = decoupled
        self.context = context
        self.namespace = namespace
        self._execute: Callable[[List[InferenceRequest]], Any] = self._not_initialized
        is_async = inspect.iscoroutinefunction(execute)
        self.infer: Callable[[List[Request]], Any]
        if decoupled:
            self.infer = self._stream_async if is_async else self._stream
        else:
            self.infer = self._infer_async if is_async else self._infer

    async def initialize(self, args: Dict[str, str]) -> None:
        """Make the model object and run its ``initialize(args)`` (sync or ``async def``, awaited on the
        instance's event loop); an exception is a ``ModelLoadError`` with the model's frames."""
        token = _bls.bind(self.context)
        try:
            model = self._cls()
            method = getattr(model, "initialize", None)
            if method is not None:
                result = method(args)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            raise ModelLoadError(describe(exc)) from exc
        finally:
            _bls.unbind(token)
        self.model = model
        self._execute = model.execute

    def _not_initialized(self, requests: List[InferenceRequest]) -> Any:
        raise TritonModelException(f"model instance '{self.instance_name}' is not initialized")

    # --- the infer callables (called on the instance's thread) ----------------------------------------

    def _requests(self, requests: Sequence[Request]) -> List[InferenceRequest]:
        name, decoupled = self.model_name, self.decoupled
        return [InferenceRequest._incoming(r, name, decoupled) for r in requests]

    def _call(self, pb_requests: List[InferenceRequest]) -> Any:
        token = _bls.bind(self.context)
        try:
            return self._execute(pb_requests)
        except Exception as exc:
            raise self._failure(exc) from exc
        finally:
            _bls.unbind(token)

    def _infer(self, requests: List[Request]) -> Any:
        pb_requests = self._requests(requests)
        return self._responses(self._call(pb_requests), pb_requests)

    async def _infer_async(self, requests: List[Request]) -> Any:
        pb_requests = self._requests(requests)
        result = await self._call_async(pb_requests)
        outputs = self._responses(result, pb_requests)
        return await outputs if inspect.isawaitable(outputs) else outputs

    async def _call_async(self, pb_requests: List[InferenceRequest]) -> Any:
        _bls.bind(self.context)  # this task's own context
        try:
            return await self._execute(pb_requests)
        except Exception as exc:
            raise self._failure(exc) from exc

    def _stream(self, requests: List[Request]) -> AsyncIterator[List[Dict[str, Any]]]:
        pb_requests = self._requests(requests)
        queue = self._stream_queue(pb_requests)
        try:
            self._check_decoupled_result(self._call(pb_requests))
        except BaseException:
            queue.cancel()  # the stream fails now: what the model still sends reaches nobody
            raise
        return self._drain(queue, None)

    def _stream_async(self, requests: List[Request]) -> AsyncIterator[List[Dict[str, Any]]]:
        pb_requests = self._requests(requests)
        return self._drain(self._stream_queue(pb_requests), pb_requests)

    def _stream_queue(self, pb_requests: List[InferenceRequest]) -> ResponseQueue:
        if len(pb_requests) != 1:
            raise ModelExecutionError(
                f"decoupled model '{self.model_name}' got {len(pb_requests)} requests in one batch, expected 1"
            )
        return pb_requests[0]._ensure_queue()

    async def _drain(
        self, queue: ResponseQueue, pb_requests: Optional[List[InferenceRequest]]
    ) -> AsyncIterator[List[Dict[str, Any]]]:
        """Yield ``[outputs]`` per response sent, until the FINAL flag. With ``pb_requests`` (an async
        ``execute``) run it first as a task of its own, as Triton does, so responses stream while it runs."""
        task: Optional[asyncio.Future[Any]] = None
        if pb_requests is not None:
            task = asyncio.ensure_future(self._call_async(pb_requests))
            task.add_done_callback(_consume)
            task.add_done_callback(lambda _: queue.put((_EXECUTED, 0)))
        finished = False
        try:
            while True:
                response, flags = await queue.get()
                if response is _EXECUTED:
                    assert task is not None
                    self._check_decoupled_result(task.result())
                    continue
                if response is not None:
                    yield [self._outputs_of(response)]
                if flags & _FINAL:
                    finished = True
                    return
        finally:
            if not finished:
                queue.cancel()  # the client is gone (or the stream failed): the sender says cancelled

    def _check_decoupled_result(self, result: Any) -> None:
        if result is not None:
            raise self._error(
                f"Python model '{self.instance_name}' is using the decoupled mode and the execute function must "
                "return None."
            )

    # --- responses -> outputs -------------------------------------------------------------------------

    def _responses(self, result: Any, pb_requests: List[InferenceRequest]) -> Any:
        """The output dicts of a non-decoupled ``execute``'s result, or a coroutine giving them when some
        requests are answered through their response sender (None in the list, or None for the list)."""
        if result is None:
            result = [None] * len(pb_requests)
        elif not isinstance(result, (list, tuple)):
            raise self._error(f"Expected a list in the execute return, found type '{type(result)}'.")
        if len(result) != len(pb_requests):
            raise self._error(
                "Number of InferenceResponse objects do not match the number of InferenceRequest objects. "
                f"InferenceRequest(s) size is:{len(pb_requests)}, and InferenceResponse(s) size is:{len(result)}"
            )
        outputs = self._outputs(result)
        if outputs is None:
            return self._sent_responses(list(result), pb_requests)
        return outputs

    async def _sent_responses(self, responses: List[Any], pb_requests: List[InferenceRequest]) -> Any:
        for index, response in enumerate(responses):
            if response is None:
                responses[index], _ = await pb_requests[index]._ensure_queue().get()
        return self._outputs(responses)

    def _outputs(self, responses: Sequence[Any]) -> Optional[List[Any]]:
        """The output dicts (an ``InferenceError`` where a response carries an error); None when some request
        is answered through its sender instead."""
        outputs: List[Any] = []
        for response in responses:
            if response is None:
                return None
            if type(response) is not InferenceResponse:
                raise self._error(
                    "Expected an 'InferenceResponse' object in the execute function return list, found type "
                    f"'{type(response)}'."
                )
            if response._error is not None:
                outputs.append(to_inference_error(response._error))  # that request alone fails
            else:
                outputs.append(self._tensors_of(response))
        return outputs

    def _outputs_of(self, response: Any) -> Dict[str, Any]:
        """One streamed response's outputs; an error response fails the stream with its code."""
        if response._error is not None:
            raise to_inference_error(response._error)
        return self._tensors_of(response)

    def _tensors_of(self, response: InferenceResponse) -> Dict[str, Any]:
        try:
            return response._outputs()
        except TritonModelException as exc:
            raise self._error(str(exc)) from exc

    # --- errors ---------------------------------------------------------------------------------------

    def _error(self, text: str) -> ModelExecutionError:
        return ModelExecutionError(
            f"Failed to process the request(s) for model '{self.instance_name}', message: {text}"
        )

    def _failure(self, exc: Exception) -> BaseException:
        """What an exception raised by ``execute`` fails the batch with."""
        if isinstance(exc, (InferenceError, PyTritonUnrecoverableError)):
            return exc
        if isinstance(exc, TritonError):
            return to_inference_error(exc)
        error = self._error(describe(exc))
        LOGGER.error("%s", error.message)
        return error

    # --- unload ---------------------------------------------------------------------------------------

    def finalize(self) -> None:
        """``finalize()`` of the model object (its exception is logged), then forget the instance's modules."""
        try:
            method = getattr(self.model, "finalize", None) if self.model is not None else None
            if method is not None:
                run_to_completion(method())
        except Exception:
            LOGGER.exception("finalize() of model instance '%s' failed", self.instance_name)
        finally:
            _bls.unregister(self.namespace.token)
            self.namespace.close()


__all__ = ["PythonInstance", "describe", "run_to_completion"]
