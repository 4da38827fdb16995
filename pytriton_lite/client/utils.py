"""Client helpers (PyTriton's ``pytriton.client.utils``): URLs, readiness waits, model config and state.

Differences from PyTriton, on purpose: an unknown model fails fast with
``PyTritonClientModelUnavailableError`` (HTTP 404 / gRPC NOT_FOUND) instead of being polled until the
timeout; readiness is polled with a short back-off so sub-second timeouts are honoured; gRPC calls get a
deadline (tritonclient supports ``client_timeout`` on every gRPC call).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
import urllib.parse
from typing import Any, Dict, Optional, Union

import tritonclient.grpc
import tritonclient.http
from tritonclient.utils import InferenceServerException

from pytriton_lite.client._errors import TRANSPORT_ERRORS, is_not_found, model_unavailable, server_message
from pytriton_lite.client.exceptions import (
    PyTritonClientInferenceServerError,
    PyTritonClientInvalidUrlError,
    PyTritonClientTimeoutError,
)
from pytriton_lite.config import DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT
from pytriton_lite.model_config import TritonModelConfig

_LOGGER = logging.getLogger(__name__)

LATEST_MODEL_VERSION = "<latest>"

_DEFAULT_NETWORK_TIMEOUT_S = 60.0
_DEFAULT_WAIT_FOR_SERVER_READY_TIMEOUT_S = 60.0
_DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S = 60.0
# Readiness polling starts fast (a server that is just starting is usually ready within milliseconds)
# and backs off to the period PyTriton used.
_POLL_FIRST_S = 0.01
_POLL_MAX_S = 1.0
# A gRPC deadline must be positive; this is the least we ask for once a wait's budget is used up.
_MIN_GRPC_TIMEOUT_S = 0.001

_TritonSyncClientType = Union[tritonclient.grpc.InferenceServerClient, tritonclient.http.InferenceServerClient]


@dataclasses.dataclass
class TritonUrl:
    """A parsed server URL: scheme (``http``/``grpc``), hostname and port."""

    scheme: str
    hostname: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> TritonUrl:
        """Parse ``[http|grpc://]host[:port]``; a missing scheme means http, a missing port the scheme's default."""
        if not isinstance(url, str):
            raise PyTritonClientInvalidUrlError(f"Invalid url {url!r}. Url must be a string.")
        try:
            parsed = urllib.parse.urlparse(url)
            # "host" parses with no scheme; "host:8001" parses as scheme "host" with no netloc.
            if "://" not in url and (not parsed.scheme or not parsed.netloc):
                parsed = urllib.parse.urlparse(f"http://{url}")
            scheme = parsed.scheme.lower()
            if scheme not in ("grpc", "http"):
                raise ValueError(f"Invalid scheme {scheme!r}. Only grpc and http are supported.")
            if not parsed.hostname:
                raise ValueError("Missing hostname.")
            port = parsed.port or {"grpc": DEFAULT_GRPC_PORT, "http": DEFAULT_HTTP_PORT}[scheme]
        except ValueError as exc:
            raise PyTritonClientInvalidUrlError(f"Invalid url {url!r}: {exc}") from exc
        return cls(scheme, parsed.hostname, port)

    @property
    def with_scheme(self) -> str:
        return f"{self.scheme}://{self.hostname}:{self.port}"

    @property
    def without_scheme(self) -> str:
        return f"{self.hostname}:{self.port}"


class ModelState(enum.Enum):
    """Model state as reported by the repository index."""

    LOADING = "LOADING"
    UNLOADING = "UNLOADING"
    UNAVAILABLE = "UNAVAILABLE"
    READY = "READY"


def create_client_from_url(url: str, network_timeout_s: Optional[float] = None) -> _TritonSyncClientType:
    """A sync tritonclient client for ``url``; HTTP gets ``network_timeout_s`` as connection and network timeout.

    gRPC clients have no client-wide timeout; the helpers here pass a deadline per call instead.
    """
    triton_url = TritonUrl.from_url(url)
    if triton_url.scheme == "grpc":
        return tritonclient.grpc.InferenceServerClient(triton_url.without_scheme)
    timeout_s = _DEFAULT_NETWORK_TIMEOUT_S if network_timeout_s is None else network_timeout_s
    return tritonclient.http.InferenceServerClient(
        triton_url.without_scheme, connection_timeout=timeout_s, network_timeout=timeout_s
    )


def is_grpc_client(client: Any) -> bool:
    return isinstance(client, tritonclient.grpc.InferenceServerClient)


def _call_kwargs(client: Any, timeout_s: Optional[float]) -> Dict[str, Any]:
    """Per-call deadline for gRPC calls (HTTP clients carry theirs from construction)."""
    if timeout_s is None or not is_grpc_client(client):
        return {}
    return {"client_timeout": max(timeout_s, _MIN_GRPC_TIMEOUT_S)}


class _Poller:
    """Deadline bookkeeping and back-off for readiness polling."""

    def __init__(self, timeout_s: float):
        self.deadline = time.monotonic() + timeout_s
        self._period = _POLL_FIRST_S

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def sleep(self) -> bool:
        """Sleep before the next poll; False when the deadline has passed."""
        remaining = self.remaining()
        if remaining <= 0:
            return False
        time.sleep(min(self._period, remaining))
        self._period = min(self._period * 2, _POLL_MAX_S)
        return True


def _is_server_ready(client: _TritonSyncClientType, timeout_s: float) -> bool:
    kwargs = _call_kwargs(client, timeout_s)
    try:
        return bool(client.is_server_ready(**kwargs)) and bool(client.is_server_live(**kwargs))
    except InferenceServerException:
        return False
    except TRANSPORT_ERRORS:
        return False


def wait_for_server_ready(client: _TritonSyncClientType, timeout_s: Optional[float] = None) -> None:
    """Poll until the server is live and ready; ``PyTritonClientTimeoutError`` after ``timeout_s`` (default 60 s)."""
    timeout_s = _DEFAULT_WAIT_FOR_SERVER_READY_TIMEOUT_S if timeout_s is None else timeout_s
    poller = _Poller(timeout_s)
    while not _is_server_ready(client, poller.remaining()):
        if not poller.sleep():
            raise PyTritonClientTimeoutError(f"Waiting for server to be ready timed out after {timeout_s} s.")


def _is_model_ready(client: _TritonSyncClientType, model_name: str, model_version: str, timeout_s: float) -> bool:
    """Model readiness; raises ``PyTritonClientModelUnavailableError`` when the server does not know the model."""
    kwargs = _call_kwargs(client, timeout_s)
    try:
        if client.is_model_ready(model_name, model_version, **kwargs):
            return True
        # tritonclient.http folds 404 into False; the metadata call tells "unknown" from "not ready yet".
        client.get_model_metadata(model_name, model_version, **kwargs)
        return False
    except InferenceServerException as exc:
        if is_not_found(exc):
            raise model_unavailable(model_name, model_version, exc) from exc
        return False
    except TRANSPORT_ERRORS:
        return False


def wait_for_model_ready(
    client: _TritonSyncClientType,
    model_name: str,
    model_version: Optional[str] = None,
    timeout_s: Optional[float] = None,
) -> None:
    """Wait for the server, then the model, to be ready (default timeout 60 s).

    Raises ``PyTritonClientModelUnavailableError`` at once for a model (or version) the server does not know,
    ``PyTritonClientTimeoutError`` when the wait runs out.
    """
    model_version = model_version or ""
    timeout_s = _DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S if timeout_s is None else timeout_s
    poller = _Poller(timeout_s)
    wait_for_server_ready(client, timeout_s=timeout_s)
    while not _is_model_ready(client, model_name, model_version, poller.remaining()):
        if not poller.sleep():
            version = model_version or LATEST_MODEL_VERSION
            raise PyTritonClientTimeoutError(
                f"Waiting for model {model_name}/{version} to be ready timed out after {timeout_s} s."
            )


def fetch_model_config(
    client: _TritonSyncClientType, model_name: str, model_version: str, timeout_s: Optional[float]
) -> TritonModelConfig:
    """Fetch and parse the model config without waiting for readiness."""
    try:
        if is_grpc_client(client):
            kwargs = _call_kwargs(client, timeout_s)
            response = client.get_model_config(model_name, model_version, as_json=True, **kwargs)
            config = response["config"]
        else:
            config = client.get_model_config(model_name, model_version)
    except InferenceServerException as exc:
        if is_not_found(exc):
            raise model_unavailable(model_name, model_version, exc) from exc
        raise PyTritonClientInferenceServerError(
            f"Could not obtain the config of model {model_name!r}. Message: {server_message(exc)}"
        ) from exc
    except TRANSPORT_ERRORS as exc:
        raise PyTritonClientTimeoutError(f"Could not obtain the config of model {model_name!r}: {exc}") from exc
    return parse_model_config(config, model_version)


def parse_model_config(config: Dict[str, Any], model_version: Optional[str]) -> TritonModelConfig:
    version = int(model_version) if model_version and str(model_version).isdigit() else 1
    return TritonModelConfig.from_dict(config, model_version=version)


def get_model_config(
    client: _TritonSyncClientType,
    model_name: str,
    model_version: Optional[str] = None,
    timeout_s: Optional[float] = None,
) -> TritonModelConfig:
    """Wait for the model to be ready, then return its config as ``TritonModelConfig``."""
    timeout_s = _DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    wait_for_model_ready(client, model_name=model_name, model_version=model_version, timeout_s=timeout_s)
    remaining = max(0.0, deadline - time.monotonic())
    return fetch_model_config(client, model_name, model_version or "", remaining)


def parse_http_response(models: Any) -> Dict[tuple, ModelState]:
    """(name, version) -> state from tritonclient.http's repository index (a list of dicts)."""
    states = {}
    for model in models:
        if not model.get("version"):
            continue
        state = ModelState(model["state"]) if model.get("state") else ModelState.LOADING
        states[(model["name"], model["version"])] = state
    return states


def parse_grpc_response(models: Any) -> Dict[tuple, ModelState]:
    """(name, version) -> state from tritonclient.grpc's repository index (protobuf entries)."""
    states = {}
    for model in models:
        if not model.version:
            continue
        state = ModelState(model.state) if model.state else ModelState.LOADING
        states[(model.name, model.version)] = state
    return states


def get_model_state(client: _TritonSyncClientType, model_name: str, model_version: Optional[str] = None) -> ModelState:
    """State of a model version (latest when ``model_version`` is None) from the repository index."""
    index = client.get_model_repository_index()
    if isinstance(index, list):
        states = parse_http_response(index)
    else:
        states = parse_grpc_response(index.models)
    if model_version is None:
        versions = {version: state for (name, version), state in states.items() if name == model_name}
        if not versions:
            return ModelState.UNAVAILABLE
        latest = max(versions, key=lambda v: int(v) if str(v).isdigit() else -1)
        return versions[latest]
    return states.get((model_name, str(model_version)), ModelState.UNAVAILABLE)


__all__ = [
    "TritonUrl",
    "ModelState",
    "create_client_from_url",
    "wait_for_server_ready",
    "wait_for_model_ready",
    "get_model_config",
    "get_model_state",
    "parse_http_response",
    "parse_grpc_response",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_GRPC_PORT",
    "LATEST_MODEL_VERSION",
]
