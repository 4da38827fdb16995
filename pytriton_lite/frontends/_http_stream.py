"""Sending a generate request's responses: one JSON body (``/generate``) or server-sent events
(``/generate_stream``).

Each event is awaited through uvicorn's ``send``, which waits while the transport's write buffer is above its
high-water mark: a client that stops reading stops the model's generator at the core's response window
(docs/limits.md), instead of the server buffering every response.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, List

from pytriton_lite.exceptions import InvalidArgumentError, ModelExecutionError, PyTritonError
from pytriton_lite.frontends._http_request import _SSE, _Request, _respond
from pytriton_lite.protocol import generate_codec

LOGGER = logging.getLogger("pytriton_lite.http")

GENERATE_ONE_RESPONSE = (
    "generate expects model to produce exactly 1 response, use generate stream for model that generates "
    "various number of responses"
)


async def send_one(request: _Request, stream: AsyncIterator[Any], label: str) -> None:
    responses: List[Any] = []
    async for response in stream:
        responses.append(response)
        if len(responses) > 1:
            break
    if len(responses) != 1:
        raise InvalidArgumentError(GENERATE_ONE_RESPONSE)
    await _respond(request, 200, generate_codec.encode_generate_response(responses[0]))


async def send_events(request: _Request, stream: AsyncIterator[Any], label: str) -> None:
    """Server-sent events. The first response decides the status; later errors travel in-stream."""
    responses = stream.__aiter__()
    send = request.send
    try:
        first = await responses.__anext__()
    except StopAsyncIteration:
        first = None
    except ModelExecutionError as exc:  # the model itself failed: like Triton, an event under the 200
        await request.start(200, [_SSE])
        await send({"type": "http.response.body", "body": generate_codec.sse_error_event(_stream_error(exc, label))})
        return
    payload = generate_codec.encode_generate_response(first) if first is not None else b""
    await request.start(200, [_SSE])
    if first is not None:
        await send({"type": "http.response.body", "body": generate_codec.sse_event(payload), "more_body": True})
        try:
            async for response in responses:
                event = generate_codec.sse_event(generate_codec.encode_generate_response(response))
                await send({"type": "http.response.body", "body": event, "more_body": True})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported in-stream; the server keeps serving
            event = generate_codec.sse_error_event(_stream_error(exc, label))
            await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _stream_error(exc: BaseException, label: str) -> str:
    """An error event's text: a model's own exception message as raised (no ``RuntimeError:`` prefix)."""
    if isinstance(exc, ModelExecutionError) and exc.model_message:
        return exc.model_message
    return _error_text(exc, label)


def _error_text(exc: BaseException, label: str) -> str:
    """What the client reads about a failure; an unexpected one (not a ``PyTritonError``) is logged here, once."""
    if isinstance(exc, PyTritonError):
        return str(exc)
    LOGGER.error("Unexpected error while serving %s", label, exc_info=exc)
    return f"{type(exc).__name__}: {exc}"
