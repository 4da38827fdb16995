"""ModelStreamInfer: the stream half of ``GrpcServicer`` (a mixin), and the failure -> status mapping.

Every request on a call runs as its own task. Responses of decoupled models go out as they are produced;
those of ordinary models go out in request order. Errors, a malformed message (``_grpc_guard.Malformed``)
and a response over the send limit included, become in-stream ``error_message`` responses for that
request only, and the stream stays usable. Responses wait in a bounded queue per stream, so a client that
stops reading makes the producers wait.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, AsyncGenerator, Dict, List, Optional, Set, Tuple

import grpc

from pytriton_lite._echo import echo
from pytriton_lite.core.api import DataPlane
from pytriton_lite.exceptions import InvalidArgumentError, PyTritonError
from pytriton_lite.frontends._grpc_guard import MAX_MESSAGE_SIZE, Malformed
from pytriton_lite.protocol import grpc_codec
from pytriton_lite.protocol import shm as shm_codec
from pytriton_lite.protocol.classification import classify_response
from pytriton_lite.types import InferenceRequest

__all__ = ["StreamInfer", "answer_status", "describe"]

LOGGER = logging.getLogger("pytriton_lite.grpc")

_STREAM_QUEUE_SIZE = 256  # responses buffered per stream before producers wait for the client
_STREAM_CLOSE_TIMEOUT_S = 5.0
_END = object()
_MAX_DETAILS = 4096  # status details travel in trailing metadata, which clients cap (16 KiB for tritonclient)


def _status(exc: BaseException) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, getattr(exc, "grpc_code", "INTERNAL"), grpc.StatusCode.INTERNAL)


def _version_str(model: Any) -> str:
    return getattr(model, "version_str", None) or str(model.version)


def answer_status(code: str, message: str) -> PyTritonError:
    """A status the servicer answers on its own (UNIMPLEMENTED, NOT_FOUND): raised, mapped by the wrapper."""
    error = PyTritonError(message)
    error.grpc_code = code
    return error


def describe(exc: BaseException) -> Tuple[grpc.StatusCode, str]:
    """(status, details) for a failure; an unexpected one (not a ``PyTritonError``) is logged here, once."""
    if isinstance(exc, PyTritonError):
        return _status(exc), echo(str(exc), _MAX_DETAILS)
    LOGGER.error("Unexpected error in the gRPC front end", exc_info=exc)
    return grpc.StatusCode.INTERNAL, echo(f"{type(exc).__name__}: {exc}", _MAX_DETAILS)


class _StreamError:
    """An in-stream error response plus the status it would have as a call error."""

    __slots__ = ("message", "code", "details")

    def __init__(self, message: Any, code: grpc.StatusCode, details: str) -> None:
        self.message = message
        self.code = code
        self.details = details


class StreamInfer:
    """``ModelStreamInfer`` over ``_dataplane``; the servicer sets the attributes below."""

    _dataplane: DataPlane
    _forward: Optional[re.Pattern[str]]
    max_send_message_size: int = MAX_MESSAGE_SIZE

    async def ModelStreamInfer(
        self, request_iterator: Any, context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[Any, None]:
        metadata = context.invocation_metadata() or ()
        # Triton's optional mode: the first error ends the call with its real status.
        error_ends_stream = any(k == "triton_grpc_error" and v == "true" for k, v in metadata)
        forwarded = grpc_codec.forwarded_parameters(metadata, self._forward) if self._forward else None
        out: asyncio.Queue = asyncio.Queue(_STREAM_QUEUE_SIZE)
        failure: List[BaseException] = []
        reader = asyncio.ensure_future(self._read_stream(request_iterator, forwarded, out, failure))
        try:
            while True:
                item = await out.get()
                if item is _END:
                    break
                if isinstance(item, _StreamError):
                    if error_ends_stream:
                        await context.abort(item.code, item.details)
                    item = item.message
                yield item
            if failure:
                raise failure[0]  # the call's status, from the wrapper
        finally:
            if not reader.done():
                reader.cancel()
                await asyncio.wait({reader}, timeout=_STREAM_CLOSE_TIMEOUT_S)

    async def _read_stream(
        self, request_iterator: Any, forwarded: Optional[Dict[str, str]], out: asyncio.Queue, failure: list
    ) -> None:
        """Start a task per incoming request; after the half-close, wait for them and end the stream."""
        tasks: Set[asyncio.Future] = set()
        previous: Optional[asyncio.Future] = None  # emission gate of the last in-order (coupled) request
        try:
            async for request in request_iterator:
                message, raw = request if isinstance(request, tuple) else (request, None)
                gate: asyncio.Future = asyncio.get_running_loop().create_future()
                task = asyncio.ensure_future(self._stream_one(message, raw, forwarded, out, previous, gate))
                previous = gate  # decoupled requests open their gate at once, so only coupled ones hold it
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:  # half-closed: nothing is added any more
                await asyncio.wait(set(tasks))
        except asyncio.CancelledError:
            for pending in tasks:
                pending.cancel()
            if tasks:
                await asyncio.wait(set(tasks), timeout=_STREAM_CLOSE_TIMEOUT_S)
            raise
        except Exception as exc:  # noqa: BLE001 - reported once the queued responses are out
            failure.append(exc)
            for pending in tasks:
                pending.cancel()
        await out.put(_END)

    async def _stream_one(
        self,
        message: Any,
        raw: grpc_codec.RawBuffers,
        forwarded: Optional[Dict[str, str]],
        out: asyncio.Queue,
        previous: Optional[asyncio.Future],
        gate: asyncio.Future,
    ) -> None:
        """Serve one stream request. Decoupled: resolve ``gate`` at once, stream as produced. Otherwise
        wait for ``previous`` (the earlier in-order request) before queueing, then resolve ``gate``."""
        model_name, model_version, request_id = message.model_name, message.model_version, message.id
        try:
            try:
                if isinstance(message, Malformed):  # fails this message only; the stream goes on
                    raise message.error()
                shm = self._dataplane.shared_memory  # inputs read from / outputs written to registered regions
                request = grpc_codec.decode_infer_request(message, raw, forwarded, shm)
                counts = grpc_codec.classification_counts(message)
                targets = grpc_codec.shm_outputs(message) if message.outputs else {}
                model = self._dataplane.model(request.model_name, request.model_version)
                if targets and model.decoupled:
                    raise InvalidArgumentError(
                        f"shared memory outputs are not supported for the decoupled model '{echo(model.name)}': "
                        "its responses are streamed, each would overwrite the region"
                    )
            except Exception as exc:  # noqa: BLE001
                await self._emit_in_order(previous, out, self._stream_error(exc, model_name, model_version, request_id))
                return
            if model.decoupled:
                gate.set_result(None)
                await self._stream_decoupled(request, model, message, out)
                return
            try:
                response = await self._dataplane.infer(request)
                if counts:
                    response = classify_response(response, counts, model)
                in_shm = shm_codec.write_outputs(shm, response, targets) if targets else ()
                item: Any = self._fits(grpc_codec.serialize_stream_response(response, final=True, in_shm=in_shm))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                item = self._stream_error(exc, model_name, _version_str(model), request_id)
            await self._emit_in_order(previous, out, item)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not hang the stream
            LOGGER.exception("Unexpected error serving a gRPC stream request")
        finally:
            if not gate.done():
                gate.set_result(None)

    @staticmethod
    async def _emit_in_order(previous: Optional[asyncio.Future], out: asyncio.Queue, item: Any) -> None:
        if previous is not None and not previous.done():
            await asyncio.shield(previous)
        await out.put(item)

    async def _stream_decoupled(self, request: InferenceRequest, model: Any, message: Any, out: asyncio.Queue) -> None:
        model_version = _version_str(model)
        responses = self._dataplane.infer_stream(request)
        counts = grpc_codec.classification_counts(message)
        try:
            async for response in responses:
                if response.final and not response.outputs:
                    continue  # a flags-only end marker; the empty final below stands for it
                if counts:
                    response = classify_response(response, counts, model)
                await out.put(self._fits(grpc_codec.serialize_stream_response(response, final=False)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - in-stream error; the stream carries on
            await out.put(self._stream_error(exc, request.model_name, model_version, request.id))
            return
        finally:
            await responses.aclose()
        if grpc_codec.wants_empty_final_response(message):
            await out.put(grpc_codec.stream_empty_final_response(request.model_name, model_version, request.id))

    def _fits(self, data: bytes) -> bytes:
        """``data`` unless over the send limit: refused here so that on a stream only this response fails
        (grpc itself would end the whole call)."""
        if len(data) > self.max_send_message_size:
            raise answer_status(
                "RESOURCE_EXHAUSTED",
                f"response of {len(data)} bytes exceeds the maximum message size of {self.max_send_message_size} "
                "bytes (grpc_max_send_message_size)",
            )
        return data

    @staticmethod
    def _stream_error(exc: BaseException, model_name: str, model_version: str, request_id: str) -> _StreamError:
        code, details = describe(exc)
        message = grpc_codec.stream_error_response(details, model_name, model_version, request_id)
        return _StreamError(message, code, details)
