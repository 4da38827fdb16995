"""AsyncioModelClient: asyncio client over tritonclient.http.aio / tritonclient.grpc.aio.

The underlying clients are created on first use, inside the running event loop (aiohttp binds its
session to the loop), so the client may be constructed anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, Optional, Tuple, Type, Union

import numpy as np
import tritonclient.grpc.aio
import tritonclient.http.aio

from pytriton_lite.client import asyncio_utils
from pytriton_lite.client._base import (
    BaseModelClient,
    InputsType,
    add_batch_axis,
    build_request,
    debatch,
    merge_headers,
    result_to_dict,
    verify_inputs_args,
    verify_parameters,
)
from pytriton_lite.client._errors import CLIENT_ERRORS, inference_error
from pytriton_lite.client.asyncio_utils import AIO_TRANSPORT_ERRORS
from pytriton_lite.client.exceptions import (
    PyTritonClientClosedError,
    PyTritonClientInferenceServerError,
    PyTritonClientModelDoesntSupportBatchingError,
    PyTritonClientTimeoutError,
)
from pytriton_lite.model_config import TritonModelConfig

_LOGGER = logging.getLogger("pytriton_lite.client")

_AioClient = Union[tritonclient.grpc.aio.InferenceServerClient, tritonclient.http.aio.InferenceServerClient]
_AIO_CLIENT_ERRORS: Tuple[Type[BaseException], ...] = (*CLIENT_ERRORS, *AIO_TRANSPORT_ERRORS)


class AsyncioModelClient(BaseModelClient):
    """asyncio client for one model over HTTP or gRPC (same arguments as ModelClient, ``access_token`` and
    ``api_key`` included)."""

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
        self._triton_client_lib = tritonclient.grpc.aio if self._is_grpc else tritonclient.http.aio
        self._general_client: Optional[_AioClient] = None
        self._infer_client: Optional[_AioClient] = None
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncioModelClient:
        try:
            if not self._lazy_init:
                await self._wait_and_init_model_config(self._init_timeout_s)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the underlying connections; later calls raise ``PyTritonClientClosedError``."""
        self._closed = True
        clients = [c for c in (self._general_client, self._infer_client) if c is not None]
        self._general_client = None
        self._infer_client = None
        for client in dict.fromkeys(clients):
            try:
                await client.close()
            except Exception as exc:  # noqa: BLE001 - closing must not raise over the caller's own exception
                _LOGGER.warning("Error while closing the client: %s", exc)

    def _clients(self):
        """(general, infer) clients, created on first use inside the running loop."""
        if self._closed:
            raise PyTritonClientClosedError("AsyncioModelClient is closed")
        if self._general_client is None:
            url = self._triton_url.with_scheme
            self._general_client = self._register_auth(
                asyncio_utils.create_client_from_url(url, network_timeout_s=self._network_timeout_s)
            )
            # gRPC deadlines are per call, so one channel serves both.
            self._infer_client = (
                self._general_client
                if self._is_grpc
                else self._register_auth(
                    asyncio_utils.create_client_from_url(url, network_timeout_s=self._inference_timeout_s)
                )
            )
        return self._general_client, self._infer_client

    # --- readiness and config ------------------------------------------------------------------------

    async def wait_for_model(self, timeout_s: float) -> None:
        """Wait until the model is ready; a model the server does not know yet is waited for."""
        general, _ = self._clients()
        await asyncio_utils.asyncio_wait_for_model_ready(general, self._model_name, self._version_str, timeout_s)

    async def wait_for_server(self, timeout_s: float) -> None:
        """Wait until the server is live and ready."""
        general, _ = self._clients()
        await asyncio_utils.asyncio_wait_for_server_ready(general, timeout_s=timeout_s)

    @property
    async def model_config(self) -> TritonModelConfig:
        """Awaitable: the model's config, fetched (after waiting up to ``init_timeout_s``) on first access."""
        if self._model_config is None:
            general, _ = self._clients()
            self._model_config = await asyncio_utils.asyncio_get_model_config(
                general, self._model_name, self._version_str, timeout_s=self._init_timeout_s
            )
            self._model_ready = True
        return self._model_config

    async def _wait_and_init_model_config(self, init_timeout_s: float) -> None:
        general, _ = self._clients()
        deadline = time.monotonic() + init_timeout_s
        await asyncio_utils.asyncio_wait_for_model_ready(general, self._model_name, self._version_str, init_timeout_s)
        self._model_ready = True
        if self._model_config is None:
            remaining = max(0.0, deadline - time.monotonic())
            self._model_config = await asyncio_utils.asyncio_fetch_model_config(
                general, self._model_name, self._version_str, remaining
            )

    async def _ready_config(self) -> TritonModelConfig:
        if not self._model_ready:
            await self._wait_and_init_model_config(self._init_timeout_s)
        return await self.model_config

    # --- inference ------------------------------------------------------------------------------------

    async def infer_sample(
        self,
        *inputs: np.ndarray,
        parameters: Optional[Dict[str, Union[str, int, bool]]] = None,
        headers: Optional[Dict[str, Union[str, int, bool]]] = None,
        **named_inputs: np.ndarray,
    ) -> Dict[str, np.ndarray]:
        """Run one sample: a batch axis is added to inputs and removed from outputs when the model batches."""
        verify_inputs_args(inputs, named_inputs)
        verify_parameters(parameters)
        verify_parameters(headers)
        model_config = await self._ready_config()
        batching = model_config.max_batch_size > 0
        if batching:
            inputs, named_inputs = add_batch_axis(inputs, named_inputs)
        result = await self._infer(inputs or named_inputs, parameters, headers)
        return debatch(result) if batching else result

    async def infer_batch(
        self,
        *inputs: np.ndarray,
        parameters: Optional[Dict[str, Union[str, int, bool]]] = None,
        headers: Optional[Dict[str, Union[str, int, bool]]] = None,
        **named_inputs: np.ndarray,
    ) -> Dict[str, np.ndarray]:
        """Run a batch (inputs carry the batch axis); the model must support batching."""
        verify_inputs_args(inputs, named_inputs)
        verify_parameters(parameters)
        verify_parameters(headers)
        model_config = await self._ready_config()
        if model_config.max_batch_size <= 0:
            raise PyTritonClientModelDoesntSupportBatchingError(
                f"Model {model_config.model_name} doesn't support batching - use infer_sample method instead"
            )
        return await self._infer(inputs or named_inputs, parameters, headers)

    def _map_error(self, exc: BaseException) -> Exception:
        return inference_error(
            exc, model_name=self._model_name, model_version=self._model_version, timeout_s=self._inference_timeout_s
        )

    async def _infer(self, inputs: InputsType, parameters: Optional[dict], headers: Optional[dict]) -> Any:
        model_config = await self._ready_config()
        if model_config.decoupled:
            raise PyTritonClientInferenceServerError(
                "Model config is decoupled. Use AsyncioDecoupledModelClient instead."
            )
        inputs_wrapped, outputs_wrapped = build_request(self._triton_client_lib, model_config, inputs)
        _, infer_client = self._clients()
        extra = {"client_timeout": self._inference_timeout_s} if self._is_grpc else {}
        try:
            # The asyncio bound also covers the HTTP client, whose own timeout is per connection pool.
            response = await asyncio.wait_for(
                infer_client.infer(
                    model_name=self._model_name,
                    model_version=self._version_str,
                    inputs=inputs_wrapped,
                    outputs=outputs_wrapped,
                    headers=merge_headers(headers, self._is_grpc),
                    request_id=self._next_request_id,
                    parameters=parameters,
                    **extra,
                ),
                self._inference_timeout_s,
            )
        except asyncio.TimeoutError as exc:
            raise PyTritonClientTimeoutError(
                f"Timeout exceeded while running inference for {self._model_name} "
                f"(timeout: {self._inference_timeout_s} s)"
            ) from exc
        except _AIO_CLIENT_ERRORS as exc:
            raise self._map_error(exc) from exc
        return result_to_dict(response)
