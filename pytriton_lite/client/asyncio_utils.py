"""asyncio counterparts of ``client.utils`` for tritonclient.http.aio / tritonclient.grpc.aio clients."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional, Tuple, Type, Union

import aiohttp
import tritonclient.grpc.aio
import tritonclient.http.aio
from tritonclient.utils import InferenceServerException

from pytriton_lite.client._errors import TRANSPORT_ERRORS, is_not_found, model_unavailable, server_message
from pytriton_lite.client.exceptions import PyTritonClientInferenceServerError, PyTritonClientTimeoutError
from pytriton_lite.client.utils import (
    _DEFAULT_NETWORK_TIMEOUT_S,
    _DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S,
    _DEFAULT_WAIT_FOR_SERVER_READY_TIMEOUT_S,
    _MIN_GRPC_TIMEOUT_S,
    _POLL_FIRST_S,
    _POLL_MAX_S,
    LATEST_MODEL_VERSION,
    ModelState,
    TritonUrl,
    parse_grpc_response,
    parse_http_response,
    parse_model_config,
)
from pytriton_lite.model_config import TritonModelConfig

_LOGGER = logging.getLogger(__name__)

_TritonAioClientType = Union[tritonclient.grpc.aio.InferenceServerClient, tritonclient.http.aio.InferenceServerClient]

# aiohttp's ServerDisconnectedError and friends are not OSErrors.
AIO_TRANSPORT_ERRORS: Tuple[Type[BaseException], ...] = (*TRANSPORT_ERRORS, aiohttp.ClientError)


def create_client_from_url(url: str, network_timeout_s: Optional[float] = None) -> _TritonAioClientType:
    """An asyncio tritonclient client; HTTP gets ``network_timeout_s`` as its total per-request timeout.

    Must be called with an event loop running (aiohttp binds its session to it).
    """
    triton_url = TritonUrl.from_url(url)
    if triton_url.scheme == "grpc":
        return tritonclient.grpc.aio.InferenceServerClient(triton_url.without_scheme)
    timeout_s = _DEFAULT_NETWORK_TIMEOUT_S if network_timeout_s is None else network_timeout_s
    return tritonclient.http.aio.InferenceServerClient(triton_url.without_scheme, conn_timeout=timeout_s)


def _is_grpc(client: Any) -> bool:
    return isinstance(client, tritonclient.grpc.aio.InferenceServerClient)


async def _call(client: Any, method: str, timeout_s: float, *args: Any, **kwargs: Any) -> Any:
    """Await one client call within ``timeout_s`` (gRPC deadline, or asyncio timeout for HTTP)."""
    timeout_s = max(timeout_s, _MIN_GRPC_TIMEOUT_S)
    if _is_grpc(client):
        kwargs["client_timeout"] = timeout_s
    return await asyncio.wait_for(getattr(client, method)(*args, **kwargs), timeout_s)


class _Poller:
    def __init__(self, timeout_s: float):
        self.deadline = time.monotonic() + timeout_s
        self._period = _POLL_FIRST_S

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    async def sleep(self) -> bool:
        remaining = self.remaining()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(self._period, remaining))
        self._period = min(self._period * 2, _POLL_MAX_S)
        return True


async def _is_server_ready(client: _TritonAioClientType, timeout_s: float) -> bool:
    try:
        ready = await _call(client, "is_server_ready", timeout_s)
        return bool(ready) and bool(await _call(client, "is_server_live", timeout_s))
    except InferenceServerException:
        return False
    except AIO_TRANSPORT_ERRORS:
        return False


async def asyncio_wait_for_server_ready(client: _TritonAioClientType, timeout_s: Optional[float] = None) -> None:
    """Poll until the server is live and ready; ``PyTritonClientTimeoutError`` after ``timeout_s``."""
    timeout_s = _DEFAULT_WAIT_FOR_SERVER_READY_TIMEOUT_S if timeout_s is None else timeout_s
    poller = _Poller(timeout_s)
    while not await _is_server_ready(client, poller.remaining()):
        if not await poller.sleep():
            raise PyTritonClientTimeoutError(f"Waiting for server to be ready timed out after {timeout_s} s.")


async def _is_model_ready(client: _TritonAioClientType, model_name: str, model_version: str, timeout_s: float) -> bool:
    try:
        if await _call(client, "is_model_ready", timeout_s, model_name, model_version):
            return True
        # tritonclient.http folds 404 into False; metadata tells "unknown" from "not ready yet".
        await _call(client, "get_model_metadata", timeout_s, model_name, model_version)
        return False
    except InferenceServerException as exc:
        if is_not_found(exc):
            raise model_unavailable(model_name, model_version, exc) from exc
        return False
    except AIO_TRANSPORT_ERRORS:
        return False


async def asyncio_wait_for_model_ready(
    client: _TritonAioClientType,
    model_name: str,
    model_version: Optional[str] = None,
    timeout_s: Optional[float] = None,
) -> None:
    """Wait for server and model readiness; an unknown model raises ``PyTritonClientModelUnavailableError`` at once."""
    model_version = model_version or ""
    timeout_s = _DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S if timeout_s is None else timeout_s
    poller = _Poller(timeout_s)
    await asyncio_wait_for_server_ready(client, timeout_s=timeout_s)
    while not await _is_model_ready(client, model_name, model_version, poller.remaining()):
        if not await poller.sleep():
            version = model_version or LATEST_MODEL_VERSION
            raise PyTritonClientTimeoutError(
                f"Waiting for model {model_name}/{version} to be ready timed out after {timeout_s} s."
            )


async def asyncio_fetch_model_config(
    client: _TritonAioClientType, model_name: str, model_version: str, timeout_s: float
) -> TritonModelConfig:
    """Fetch and parse the model config without waiting for readiness."""
    try:
        if _is_grpc(client):
            response = await _call(client, "get_model_config", timeout_s, model_name, model_version, as_json=True)
            config = response["config"]
        else:
            config = await _call(client, "get_model_config", timeout_s, model_name, model_version)
    except InferenceServerException as exc:
        if is_not_found(exc):
            raise model_unavailable(model_name, model_version, exc) from exc
        raise PyTritonClientInferenceServerError(
            f"Could not obtain the config of model {model_name!r}. Message: {server_message(exc)}"
        ) from exc
    except AIO_TRANSPORT_ERRORS as exc:
        raise PyTritonClientTimeoutError(f"Could not obtain the config of model {model_name!r}: {exc!r}") from exc
    return parse_model_config(config, model_version)


async def asyncio_get_model_config(
    client: _TritonAioClientType,
    model_name: str,
    model_version: Optional[str] = None,
    timeout_s: Optional[float] = None,
) -> TritonModelConfig:
    """Wait for the model to be ready, then return its config."""
    timeout_s = _DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    await asyncio_wait_for_model_ready(client, model_name, model_version, timeout_s=timeout_s)
    remaining = max(0.0, deadline - time.monotonic())
    return await asyncio_fetch_model_config(client, model_name, model_version or "", remaining)


async def asyncio_get_model_state(
    client: _TritonAioClientType, model_name: str, model_version: Optional[str] = None
) -> ModelState:
    """State of a model version (latest when None) from the repository index."""
    index = await client.get_model_repository_index()
    states = parse_http_response(index) if isinstance(index, list) else parse_grpc_response(index.models)
    if model_version is None:
        versions = {version: state for (name, version), state in states.items() if name == model_name}
        if not versions:
            return ModelState.UNAVAILABLE
        return versions[max(versions, key=lambda v: int(v) if str(v).isdigit() else -1)]
    return states.get((model_name, str(model_version)), ModelState.UNAVAILABLE)


__all__ = [
    "create_client_from_url",
    "asyncio_wait_for_server_ready",
    "asyncio_wait_for_model_ready",
    "asyncio_get_model_config",
    "asyncio_get_model_state",
]
