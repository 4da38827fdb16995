"""AsyncioDecoupledModelClient: asyncio streaming client for decoupled models (gRPC only).

``infer_sample``/``infer_batch`` are async generators. Each request opens one ModelStreamInfer call, sends
one request and half-closes; the server ends the call after the last response. Every response is awaited
for at most ``inference_timeout_s`` (``PyTritonClientTimeoutError``); leaving the loop early cancels the call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Dict, Optional, Union

import grpc
import numpy as np
from tritonclient.utils import InferenceServerException

from pytriton_lite.client._asyncio import _AIO_CLIENT_ERRORS, AsyncioModelClient
from pytriton_lite.client._base import (
    InputsType,
    add_batch_axis,
    build_request,
    debatch,
    merge_headers,
    result_to_dict,
    verify_inputs_args,
    verify_parameters,
)
from pytriton_lite.client.exceptions import (
    PyTritonClientInferenceServerError,
    PyTritonClientModelDoesntSupportBatchingError,
    PyTritonClientTimeoutError,
    PyTritonClientValueError,
)

_LOGGER = logging.getLogger("pytriton_lite.client")


class AsyncioDecoupledModelClient(AsyncioModelClient):
    """asyncio client for decoupled models; ``async for partial in client.infer_sample(...)``."""

    async def infer_sample(  # type: ignore[override]
        self,
        *inputs: np.ndarray,
        parameters: Optional[Dict[str, Union[str, int, bool]]] = None,
        headers: Optional[Dict[str, Union[str, int, bool]]] = None,
        **named_inputs: np.ndarray,
    ) -> AsyncIterator[Dict[str, np.ndarray]]:
        """Stream the partial results of one sample (de-batched when the model batches)."""
        verify_inputs_args(inputs, named_inputs)
        verify_parameters(parameters)
        verify_parameters(headers)
        self._require_grpc()
        model_config = await self._ready_config()
        batching = model_config.max_batch_size > 0
        if batching:
            inputs, named_inputs = add_batch_axis(inputs, named_inputs)
        async for item in self._stream(inputs or named_inputs, headers):
            yield debatch(item) if batching else item

    async def infer_batch(  # type: ignore[override]
        self,
        *inputs: np.ndarray,
        parameters: Optional[Dict[str, Union[str, int, bool]]] = None,
        headers: Optional[Dict[str, Union[str, int, bool]]] = None,
        **named_inputs: np.ndarray,
    ) -> AsyncIterator[Dict[str, np.ndarray]]:
        """Stream the partial results of one batch; the model must support batching."""
        verify_inputs_args(inputs, named_inputs)
        verify_parameters(parameters)
        verify_parameters(headers)
        self._require_grpc()
        model_config = await self._ready_config()
        if model_config.max_batch_size <= 0:
            raise PyTritonClientModelDoesntSupportBatchingError(
                f"Model {model_config.model_name} doesn't support batching - use infer_sample method instead"
            )
        async for item in self._stream(inputs or named_inputs, headers):
            yield item

    def _require_grpc(self) -> None:
        if not self._is_grpc:
            raise PyTritonClientValueError("AsyncioDecoupledModelClient is only supported for grpc protocol")

    async def _stream(self, inputs: InputsType, headers: Optional[dict]) -> AsyncIterator[Dict[str, np.ndarray]]:
        # Like PyTriton, request parameters are not sent on streams.
        model_config = await self._ready_config()
        if not model_config.decoupled:
            raise PyTritonClientInferenceServerError("Model config is coupled. Use AsyncioModelClient instead.")
        inputs_wrapped, outputs_wrapped = build_request(self._triton_client_lib, model_config, inputs)
        _, infer_client = self._clients()
        request = {
            "model_name": self._model_name,
            "model_version": self._version_str,
            "inputs": inputs_wrapped,
            "outputs": outputs_wrapped,
            "request_id": self._next_request_id,
        }

        async def requests():
            yield request

        try:
            responses = infer_client.stream_infer(inputs_iterator=requests(), headers=merge_headers(headers, grpc=True))
        except _AIO_CLIENT_ERRORS as exc:
            raise self._map_error(exc) from exc
        finished = False
        try:
            while True:
                try:
                    result, error = await asyncio.wait_for(responses.__anext__(), self._inference_timeout_s)
                except StopAsyncIteration:
                    finished = True
                    return
                except asyncio.TimeoutError as exc:
                    raise PyTritonClientTimeoutError(
                        f"Timeout while waiting for model {self._model_name} to return the next response "
                        f"(timeout: {self._inference_timeout_s} s)"
                    ) from exc
                except grpc.RpcError as exc:  # grpc.aio stream errors are not converted by tritonclient
                    raise self._map_error(_rpc_error(exc)) from exc
                except _AIO_CLIENT_ERRORS as exc:
                    raise self._map_error(exc) from exc
                if error is not None:
                    raise self._map_error(error) from error
                outputs = result_to_dict(result)
                if outputs:  # an empty (final-only) response carries nothing to hand out
                    yield outputs
        finally:
            if not finished:
                # Timeout, error or the caller left the loop: stop the request on the server too.
                responses.cancel()


def _rpc_error(exc: Any) -> InferenceServerException:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return InferenceServerException(msg=details or str(exc), status=str(code) if code is not None else None)
