"""DecoupledModelClient: synchronous streaming client for decoupled models (gRPC only).

``infer_sample``/``infer_batch`` send the request at once and return an iterator of partial results.
Unlike PyTriton 0.7 (whose per-item timeout never fires), every response is awaited for at most
``inference_timeout_s``; a late one raises ``PyTritonClientTimeoutError`` and cancels the request.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Dict, Iterator, Optional

import numpy as np

from pytriton_lite.client._base import InputsType, debatch, result_to_dict
from pytriton_lite.client._errors import CLIENT_ERRORS, inference_error
from pytriton_lite.client._sync import ModelClient
from pytriton_lite.client.exceptions import (
    PyTritonClientClosedError,
    PyTritonClientInferenceServerError,
    PyTritonClientTimeoutError,
    PyTritonClientValueError,
)
from pytriton_lite.client.utils import TritonUrl
from pytriton_lite.model_config import TritonModelConfig

_LOGGER = logging.getLogger("pytriton_lite.client")

_FINAL_FLAG = "triton_final_response"


class DecoupledModelClient(ModelClient):
    """Client for decoupled (streaming) models over gRPC; one inference at a time per client."""

    def __init__(
        self,
        url: str,
        model_name: str,
        model_version: Optional[str] = None,
        *,
        lazy_init: bool = True,
        init_timeout_s: Optional[float] = None,
        inference_timeout_s: Optional[float] = None,
        model_config: Optional[TritonModelConfig] = None,
        ensure_model_is_ready: bool = True,
        access_token: Optional[str] = None,
        api_key: Optional[str] = None,
    ):
        # Checked before any connection or readiness wait is made.
        if TritonUrl.from_url(url).scheme == "http":
            raise PyTritonClientValueError("DecoupledModelClient is only supported for grpc protocol")
        self._lock = threading.Lock()
        self._stream_queue: Optional[queue.Queue] = None
        self._stream_stale = False
        self._closed = False
        super().__init__(
            url,
            model_name,
            model_version,
            lazy_init=lazy_init,
            init_timeout_s=init_timeout_s,
            inference_timeout_s=inference_timeout_s,
            model_config=model_config,
            ensure_model_is_ready=ensure_model_is_ready,
            access_token=access_token,
            api_key=api_key,
        )

    def close(self) -> None:
        """Close the client; a stream still delivering responses is cancelled."""
        self._closed = True
        self._stop_stream(cancel=True)
        super().close()

    # --- stream management ----------------------------------------------------------------------------

    def _ensure_stream(self) -> queue.Queue:
        """The queue of the open stream, opening one if needed (one stream carries many requests)."""
        if self._stream_stale:
            self._stop_stream(cancel=True)
        if self._stream_queue is None:
            responses: queue.Queue = queue.Queue()

            # Each stream has its own queue, so responses of a cancelled stream never reach a later request.
            def callback(result: Any, error: Any) -> None:
                responses.put((result, error))

            self._require_open(self._infer_client).start_stream(callback=callback)
            self._stream_queue = responses
        return self._stream_queue

    def _stop_stream(self, cancel: bool) -> None:
        """Stop the stream; ``cancel`` also cancels requests still running on the server."""
        client = self._infer_client
        self._stream_queue = None
        self._stream_stale = False
        if client is None:
            return
        stream = getattr(client, "_stream", None)
        try:
            client.stop_stream(cancel_requests=cancel)
        except Exception as exc:  # noqa: BLE001 - the stream may already be broken; nothing left to release
            _LOGGER.debug("Error while stopping the stream: %s", exc)
        # tritonclient does not end its request iterator when cancelling, which leaves grpc's request
        # thread blocked forever; ending it here releases that thread.
        request_queue = getattr(stream, "_request_queue", None)
        if cancel and request_queue is not None:
            request_queue.put(None)

    def _finish(self, abort: bool) -> None:
        """End of one inference: release the client; an aborted request also takes its stream down."""
        if abort:
            self._stop_stream(cancel=True)
        self._lock.release()

    # --- inference ------------------------------------------------------------------------------------

    def _debatch_result(self, result: Any) -> Any:
        # Called by infer_sample only: each streamed item loses its batch axis as it is read.
        if self.is_batching_supported:
            result.debatch_items()
        return result

    def infer_sample(self, *inputs: np.ndarray, parameters=None, headers=None, **named_inputs: np.ndarray):
        """Send one sample; returns an iterator over its (de-batched) partial results."""
        return super().infer_sample(*inputs, parameters=parameters, headers=headers, **named_inputs)

    def infer_batch(self, *inputs: np.ndarray, parameters=None, headers=None, **named_inputs: np.ndarray):
        """Send one batch; returns an iterator over its partial results."""
        return super().infer_batch(*inputs, parameters=parameters, headers=headers, **named_inputs)

    def _infer(self, inputs: InputsType, parameters: Optional[dict], headers: Optional[dict]) -> Any:
        if parameters is not None:
            raise PyTritonClientValueError("DecoupledModelClient does not support parameters")
        if headers is not None:
            raise PyTritonClientValueError("DecoupledModelClient does not support headers")
        if not self._model_config:
            _ = self.model_config  # before taking the lock: a failed fetch must not leave it held
        if not self._lock.acquire(blocking=False):
            raise PyTritonClientInferenceServerError("Inference is already in progress")
        try:
            if not self.model_config.decoupled:
                raise PyTritonClientInferenceServerError("Model config is coupled. Use ModelClient instead.")
            inputs_wrapped, outputs_wrapped = self._create_request(inputs)
            responses = self._ensure_stream()
            self._require_open(self._infer_client).async_stream_infer(
                model_name=self._model_name,
                model_version=self._version_str,
                inputs=inputs_wrapped,
                outputs=outputs_wrapped,
                request_id=self._next_request_id,
                enable_empty_final_response=True,
            )
        except CLIENT_ERRORS as exc:
            self._finish(abort=True)
            raise self._map_error(exc) from exc
        except BaseException:
            self._finish(abort=False)
            raise
        return _StreamResponses(self, responses)

    def _map_error(self, exc: BaseException) -> Exception:
        return inference_error(
            exc, model_name=self._model_name, model_version=self._model_version, timeout_s=self._inference_timeout_s
        )


class _StreamResponses(Iterator[Dict[str, np.ndarray]]):
    """Partial results of one request, read from the stream's queue until the final response."""

    def __init__(self, client: DecoupledModelClient, responses: queue.Queue):
        self._client = client
        self._responses = responses
        self._debatch = False
        self._done = False

    def debatch_items(self) -> None:
        self._debatch = True

    def __iter__(self) -> _StreamResponses:
        return self

    def __next__(self) -> Dict[str, np.ndarray]:
        if self._done:
            raise StopIteration
        client = self._client
        try:
            result, error = self._responses.get(timeout=client._inference_timeout_s)
        except queue.Empty:
            self._end(abort=True)
            raise PyTritonClientTimeoutError(
                f"Timeout occurred during inference request. Timeout: {client._inference_timeout_s} s"
            ) from None
        if client._closed:
            self._end(abort=False)
            raise PyTritonClientClosedError("DecoupledModelClient is closed")
        if error is not None:
            self._end(abort=True)
            raise client._map_error(error) from error
        outputs = result_to_dict(result)
        if self._debatch:
            outputs = debatch(outputs)
        parameters = result.get_response().parameters
        if _FINAL_FLAG in parameters and parameters[_FINAL_FLAG].bool_param:
            self._end(abort=False)
            if not outputs:  # the usual empty final response
                raise StopIteration
        return outputs

    def close(self) -> None:
        """Stop reading early: the request is cancelled and the client freed."""
        if not self._done:
            self._end(abort=True)

    def _end(self, abort: bool) -> None:
        if self._done:
            return
        self._done = True
        if self._client._closed:
            self._client._lock.release()
            return
        self._client._finish(abort=abort)

    def __del__(self) -> None:
        # Garbage collection may run on any thread: only free the client and leave the stream to be
        # replaced by the next inference (or closed by close()).
        if not getattr(self, "_done", True):
            self._done = True
            self._client._stream_stale = True
            self._client._lock.release()
