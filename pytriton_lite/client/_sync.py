"""ModelClient: synchronous client over tritonclient.http / tritonclient.grpc.

One client per thread (tritonclient's HTTP client is gevent based and not thread safe); use
FuturesModelClient for concurrency.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Dict, Iterator, Optional, Union

import numpy as np
import tritonclient.grpc
import tritonclient.http

from pytriton_lite.client import utils
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
from pytriton_lite.client.exceptions import (
    PyTritonClientClosedError,
    PyTritonClientInferenceServerError,
    PyTritonClientModelDoesntSupportBatchingError,
)
from pytriton_lite.model_config import TritonModelConfig

_LOGGER = logging.getLogger("pytriton_lite.client")

_SyncClient = Union[tritonclient.grpc.InferenceServerClient, tritonclient.http.InferenceServerClient]


class ModelClient(BaseModelClient):
    """Synchronous client for one model served over Triton's v2 HTTP or gRPC protocol.

    Args:
        url: ``http://host:port``, ``grpc://host:port`` or ``host[:port]`` (http).
        model_name: name of the model.
        model_version: version; None = latest.
        lazy_init: False waits for the model and fetches its config in the constructor.
        init_timeout_s: budget for waiting on server/model readiness and the config (default 300 s).
        inference_timeout_s: budget for one inference (default 60 s).
        model_config: known config (skips fetching it).
        ensure_model_is_ready: False together with ``model_config`` skips the readiness check.
        access_token: token for servers with restricted endpoints (TritonSecurityConfig).
        api_key: API key for servers started with ``TritonSecurityConfig(api_keys=...)``; sent as
            ``Authorization: Bearer <key>`` on every call (HTTP header or gRPC metadata).
    """

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
        self._triton_client_lib = tritonclient.grpc if self._is_grpc else tritonclient.http
        self._general_client: Optional[_SyncClient] = self._create_client(self._network_timeout_s)
        # gRPC deadlines are per call, so one channel serves both; HTTP clients carry their timeout.
        self._infer_client: Optional[_SyncClient] = (
            self._general_client if self._is_grpc else self._create_client(self._inference_timeout_s)
        )
        if not self._lazy_init:
            try:
                self._wait_and_init_model_config(self._init_timeout_s)
            except BaseException:
                self.close()
                raise

    def _create_client(self, network_timeout_s: float) -> _SyncClient:
        client = utils.create_client_from_url(self._triton_url.with_scheme, network_timeout_s=network_timeout_s)
        return self._register_auth(client)

    # --- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> ModelClient:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connections; later calls raise ``PyTritonClientClosedError``."""
        clients = [c for c in (self._general_client, self._infer_client) if c is not None]
        self._general_client = None
        self._infer_client = None
        for client in dict.fromkeys(clients):  # the gRPC client may be shared; close it once
            try:
                client.close()
            except Exception as exc:  # noqa: BLE001 - closing must not raise over the caller's own exception
                _LOGGER.warning("Error while closing the client: %s", exc)

    def _require_open(self, client: Optional[_SyncClient]) -> _SyncClient:
        if client is None:
            raise PyTritonClientClosedError("ModelClient is closed")
        return client

    # --- readiness and config ------------------------------------------------------------------------

    def wait_for_model(self, timeout_s: float) -> None:
        """Wait until the model is ready; a model the server does not know yet is waited for."""
        with self._waiting_client(timeout_s) as client:
            utils.wait_for_model_ready(client, self._model_name, self._version_str, timeout_s=timeout_s)

    def wait_for_server(self, timeout_s: float) -> None:
        """Wait until the server is live and ready."""
        with self._waiting_client(timeout_s) as client:
            utils.wait_for_server_ready(client, timeout_s=timeout_s)

    @contextlib.contextmanager
    def _waiting_client(self, timeout_s: float) -> Iterator[_SyncClient]:
        """The client to poll with: an HTTP client's timeout is fixed at creation, so a wait shorter than it
        gets a short-lived client whose calls cannot outlast the wait."""
        client = self._require_open(self._general_client)
        if self._is_grpc or timeout_s >= self._network_timeout_s:
            yield client
            return
        short = self._create_client(max(timeout_s, 0.001))
        try:
            yield short
        finally:
            short.close()

    @property
    def model_config(self) -> TritonModelConfig:
        """The model's config, fetched (after waiting up to ``init_timeout_s``) on first access."""
        if self._model_config is None:
            client = self._require_open(self._general_client)
            self._model_config = utils.get_model_config(
                client, self._model_name, self._version_str, timeout_s=self._init_timeout_s
            )
            self._model_ready = True  # get_model_config waited for it
        return self._model_config

    @property
    def is_batching_supported(self) -> bool:
        return self.model_config.max_batch_size > 0

    def _wait_and_init_model_config(self, init_timeout_s: float) -> None:
        client = self._require_open(self._general_client)
        deadline = time.monotonic() + init_timeout_s
        utils.wait_for_model_ready(client, self._model_name, self._version_str, timeout_s=init_timeout_s)
        self._model_ready = True
        if self._model_config is None:
            remaining = max(0.0, deadline - time.monotonic())
            self._model_config = utils.fetch_model_config(client, self._model_name, self._version_str, remaining)

    # --- repository passthrough -----------------------------------------------------------------------

    def load_model(self, config: Optional[str] = None, files: Optional[dict] = None) -> None:
        """Ask the server to load the model (repository extension)."""
        self._require_open(self._general_client).load_model(self._model_name, config=config, files=files)

    def unload_model(self) -> None:
        """Ask the server to unload the model (repository extension)."""
        self._require_open(self._general_client).unload_model(self._model_name)

    # --- inference ------------------------------------------------------------------------------------

    def infer_sample(
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
        if self.is_batching_supported:
            inputs, named_inputs = add_batch_axis(inputs, named_inputs)
        result = self._infer(inputs or named_inputs, parameters, headers)
        return self._debatch_result(result)

    def infer_batch(
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
        if not self.is_batching_supported:
            raise PyTritonClientModelDoesntSupportBatchingError(
                f"Model {self.model_config.model_name} doesn't support batching - use infer_sample method instead"
            )
        return self._infer(inputs or named_inputs, parameters, headers)

    def _debatch_result(self, result: Any) -> Any:
        return debatch(result) if self.is_batching_supported else result

    def _create_request(self, inputs: InputsType):
        self._require_open(self._infer_client)
        if not self._model_ready:
            self._wait_and_init_model_config(self._init_timeout_s)
        return build_request(self._triton_client_lib, self.model_config, inputs)

    def _infer(self, inputs: InputsType, parameters: Optional[dict], headers: Optional[dict]) -> Any:
        if self.model_config.decoupled:
            raise PyTritonClientInferenceServerError("Model config is decoupled. Use DecoupledModelClient instead.")
        inputs_wrapped, outputs_wrapped = self._create_request(inputs)
        client = self._require_open(self._infer_client)
        extra = {"client_timeout": self._inference_timeout_s} if self._is_grpc else {}
        try:
            response = client.infer(
                model_name=self._model_name,
                model_version=self._version_str,
                inputs=inputs_wrapped,
                outputs=outputs_wrapped,
                headers=merge_headers(headers, self._is_grpc),
                request_id=self._next_request_id,
                parameters=parameters,
                **extra,
            )
        except CLIENT_ERRORS as exc:
            raise inference_error(
                exc,
                model_name=self._model_name,
                model_version=self._model_version,
                timeout_s=self._inference_timeout_s,
            ) from exc
        return result_to_dict(response)
