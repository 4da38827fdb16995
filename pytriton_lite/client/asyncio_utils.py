"""asyncio counterparts of ``client.utils`` for tritonclient.http.aio / tritonclient.grpc.aio clients.

Signatures as PyTriton's ``pytriton.client.asyncio_utils``: ``asyncio_wait_for_server_ready(asyncio_client,
sleep_time_s)`` and ``asyncio_wait_for_model_status_loaded(asyncio_client, model_name, sleep_time_s,
model_version=None)`` poll every ``sleep_time_s`` with no deadline of their own (bound them with
``asyncio.wait_for``, or pass ``timeout_s=``); ``asyncio_wait_for_model_ready(asyncio_client, model_name,
model_version=None, timeout_s=60.0)`` waits for both. A model the server does not know yet is waited for, as in
``client.utils``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, Optional, Tuple, Type, Union

import aiohttp
import tritonclient.grpc.aio
import tritonclient.http.aio
from tritonclient.utils import InferenceServerException

from pytriton_lite.client._errors import TRANSPORT_ERRORS, is_not_found, model_unavailable, server_message
from pytriton_lite.client._readiness import (
    DIAGNOSTIC_TIMEOUT_S,
    MIN_TIMEOUT_S,
    Poller,
    describe_error,
    index_entries,
    model_wait_timeout,
    version_policy_error,
)
from pytriton_lite.client.exceptions import (
    PyTritonClientError,
    PyTritonClientInferenceServerError,
    PyTritonClientTimeoutError,
)
from pytriton_lite.client.utils import (
    _DEFAULT_NETWORK_TIMEOUT_S,
    ModelState,
    TritonUrl,
    parse_grpc_response,
    parse_http_response,
    parse_model_config,
    select_model_state,
)
from pytriton_lite.model_config import TritonModelConfig

_LOGGER = logging.getLogger(__name__)

_DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S = 60.0  # PyTriton's asyncio default

_TritonAioClientType = Union[tritonclient.grpc.aio.InferenceServerClient, tritonclient.http.aio.InferenceServerClient]

# aiohttp's ServerDisconnectedError and friends are not OSErrors.
AIO_TRANSPORT_ERRORS: Tuple[Type[BaseException], ...] = (*TRANSPORT_ERRORS, aiohttp.ClientError)
_AIO_CLIENT_ERRORS: Tuple[Type[BaseException], ...] = (InferenceServerException, *AIO_TRANSPORT_ERRORS)


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


async def _call(client: Any, method: str, timeout_s: Optional[float], *args: Any, **kwargs: Any) -> Any:
    """Await one client call within ``timeout_s`` (gRPC deadline, or asyncio timeout for HTTP); None: unbounded."""
    if timeout_s is None:
        return await getattr(client, method)(*args, **kwargs)
    timeout_s = max(timeout_s, MIN_TIMEOUT_S)
    if _is_grpc(client):
        kwargs["client_timeout"] = timeout_s
    return await asyncio.wait_for(getattr(client, method)(*args, **kwargs), timeout_s)


async def _sleep_or_expire(poller: Poller) -> bool:
    delay = poller.next_delay()
    if delay is None:
        return False
    await asyncio.sleep(delay)
    return True


async def _is_server_ready(client: _TritonAioClientType, timeout_s: Optional[float]) -> bool:
    try:
        ready = await _call(client, "is_server_ready", timeout_s)
        return bool(ready) and bool(await _call(client, "is_server_live", timeout_s))
    except InferenceServerException:
        return False
    except AIO_TRANSPORT_ERRORS:
        return False


async def asyncio_wait_for_server_ready(
    asyncio_client: _TritonAioClientType,
    sleep_time_s: Optional[float] = None,
    timeout_s: Optional[float] = None,
) -> None:
    """Poll until the server is live and ready, every ``sleep_time_s`` (None: a back-off from 10 ms to 1 s).

    As in PyTriton there is no deadline unless ``timeout_s`` is given (then ``PyTritonClientTimeoutError``).
    """
    poller = Poller(timeout_s, sleep_time_s)
    while not await _is_server_ready(asyncio_client, _call_bound(poller)):
        if not await _sleep_or_expire(poller):
            raise PyTritonClientTimeoutError(f"Waiting for server to be ready timed out after {timeout_s} s.")


def _call_bound(poller: Poller) -> float:
    """How long one call may take: what is left of the wait, or the network default when it has no deadline."""
    remaining = poller.remaining()
    return _DEFAULT_NETWORK_TIMEOUT_S if remaining is None else remaining


async def _is_model_ready(client: _TritonAioClientType, model_name: str, model_version: str, timeout_s: float) -> bool:
    try:
        return bool(await _call(client, "is_model_ready", timeout_s, model_name, model_version))
    except InferenceServerException:  # gRPC: NOT_FOUND while the model is not there (yet)
        return False
    except AIO_TRANSPORT_ERRORS:
        return False


async def _version_policy_checked(client: Any, model_name: str, model_version: str, timeout_s: float) -> bool:
    """True once the model's version policy is known to allow ``model_version``; raises when it rules it out."""
    try:
        config = await _raw_model_config(client, model_name, "", timeout_s)
    except _AIO_CLIENT_ERRORS:
        return False  # the model is not there (yet): look again on the next poll
    error = version_policy_error(config, model_name, model_version)
    if error is not None:
        raise error
    return True


async def _wait_timeout_error(client: Any, model_name: str, model_version: str, timeout_s: Any) -> PyTritonClientError:
    try:
        index = await _call(client, "get_model_repository_index", DIAGNOSTIC_TIMEOUT_S)
    except _AIO_CLIENT_ERRORS as exc:
        return model_wait_timeout(model_name, model_version, timeout_s, None, describe_error(exc))
    return model_wait_timeout(model_name, model_version, timeout_s, index_entries(index))


async def _wait_model_loaded(
    client: Any, model_name: str, model_version: str, poller: Poller, reported_timeout_s: Any
) -> None:
    policy_checked = not model_version
    while not await _is_model_ready(client, model_name, model_version, _call_bound(poller)):
        if not policy_checked:
            policy_checked = await _version_policy_checked(client, model_name, model_version, _call_bound(poller))
        if not await _sleep_or_expire(poller):
            raise await _wait_timeout_error(client, model_name, model_version, reported_timeout_s)


async def asyncio_wait_for_model_status_loaded(
    asyncio_client: _TritonAioClientType,
    model_name: str,
    sleep_time_s: Optional[float] = None,
    model_version: Optional[str] = None,
    timeout_s: Optional[float] = None,
) -> None:
    """Poll ``is_model_ready`` every ``sleep_time_s`` (None: a back-off) until the model is ready.

    As in PyTriton there is no deadline unless ``timeout_s`` is given; a model the server does not know yet is
    waited for. Raises ``PyTritonClientModelUnavailableError`` at once only when the model's ``specific`` version
    policy leaves ``model_version`` out.
    """
    poller = Poller(timeout_s, sleep_time_s)
    await _wait_model_loaded(asyncio_client, model_name, model_version or "", poller, timeout_s)


async def asyncio_wait_for_model_ready(
    asyncio_client: _TritonAioClientType,
    model_name: str,
    model_version: Optional[str] = None,
    timeout_s: Optional[float] = _DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S,
) -> None:
    """Wait for server and model readiness within ``timeout_s`` (default 60 s; None: the default).

    Raises ``PyTritonClientTimeoutError`` when the wait runs out (listing the models the server knows; also a
    ``PyTritonClientModelUnavailableError`` when the model or version is unknown to the server).
    """
    timeout_s = _DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S if timeout_s is None else timeout_s
    poller = Poller(timeout_s)
    await asyncio_wait_for_server_ready(asyncio_client, timeout_s=timeout_s)
    await _wait_model_loaded(asyncio_client, model_name, model_version or "", poller, timeout_s)


async def _raw_model_config(client: Any, model_name: str, model_version: str, timeout_s: float) -> Dict[str, Any]:
    if _is_grpc(client):
        response = await _call(client, "get_model_config", timeout_s, model_name, model_version, as_json=True)
        config: Dict[str, Any] = response["config"]
        return config
    http_config: Dict[str, Any] = await _call(client, "get_model_config", timeout_s, model_name, model_version)
    return http_config


async def asyncio_fetch_model_config(
    client: _TritonAioClientType, model_name: str, model_version: str, timeout_s: float
) -> TritonModelConfig:
    """Fetch and parse the model config without waiting for readiness."""
    try:
        config = await _raw_model_config(client, model_name, model_version, timeout_s)
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
    timeout_s: Optional[float] = _DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S,
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
    return select_model_state(states, model_name, model_version)


__all__ = [
    "create_client_from_url",
    "asyncio_wait_for_server_ready",
    "asyncio_wait_for_model_status_loaded",
    "asyncio_wait_for_model_ready",
    "asyncio_get_model_config",
    "asyncio_get_model_state",
]
