"""Client helpers (PyTriton's ``pytriton.client.utils``): URLs, readiness waits, model config and state.

Signatures as PyTriton's (``headers=`` on the waits, ``get_model_config`` and ``get_model_state``). A model the
server does not know yet is waited for, as in PyTriton; when the wait runs out the error lists the models the
server knows. Differences, on purpose: readiness is polled with a short back-off so sub-second timeouts are
honoured; gRPC calls get a deadline (tritonclient supports ``client_timeout`` on every gRPC call); a version
that the model's ``specific`` version policy leaves out fails at once with ``PyTritonClientModelUnavailableError``.
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

from pytriton_lite.client._errors import (
    CLIENT_ERRORS,
    TRANSPORT_ERRORS,
    is_not_found,
    model_unavailable,
    server_message,
)
from pytriton_lite.client._readiness import (
    DIAGNOSTIC_TIMEOUT_S,
    LATEST_MODEL_VERSION,
    MIN_TIMEOUT_S,
    POLL_FIRST_S,
    POLL_MAX_S,
    Poller,
    describe_error,
    index_entries,
    model_wait_timeout,
    version_policy_error,
)
from pytriton_lite.client.exceptions import (
    PyTritonClientError,
    PyTritonClientInferenceServerError,
    PyTritonClientInvalidUrlError,
    PyTritonClientTimeoutError,
)
from pytriton_lite.config import DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT
from pytriton_lite.model_config import TritonModelConfig

_LOGGER = logging.getLogger(__name__)

_DEFAULT_NETWORK_TIMEOUT_S = 60.0
_DEFAULT_WAIT_FOR_SERVER_READY_TIMEOUT_S = 60.0
_DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S = 300.0  # PyTriton's: five minutes
# kept under their old names for code that imported them from here
_POLL_FIRST_S = POLL_FIRST_S
_POLL_MAX_S = POLL_MAX_S
_MIN_GRPC_TIMEOUT_S = MIN_TIMEOUT_S

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


def _call_kwargs(client: Any, timeout_s: Optional[float], headers: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Per-call deadline for gRPC calls (HTTP clients carry theirs from construction), and a copy of ``headers``
    (tritonclient plugins add to the dict they are given)."""
    kwargs: Dict[str, Any] = {}
    if headers:
        kwargs["headers"] = dict(headers)
    if timeout_s is not None and is_grpc_client(client):
        kwargs["client_timeout"] = max(timeout_s, MIN_TIMEOUT_S)
    return kwargs


def _sleep_or_expire(poller: Poller) -> bool:
    """Sleep before the next poll; False when the deadline has passed."""
    delay = poller.next_delay()
    if delay is None:
        return False
    time.sleep(delay)
    return True


def _is_server_ready(client: _TritonSyncClientType, timeout_s: Optional[float], headers: Optional[dict]) -> bool:
    kwargs = _call_kwargs(client, timeout_s, headers)
    try:
        return bool(client.is_server_ready(**kwargs)) and bool(client.is_server_live(**kwargs))
    except InferenceServerException:
        return False
    except TRANSPORT_ERRORS:
        return False


def wait_for_server_ready(
    client: _TritonSyncClientType, timeout_s: Optional[float] = None, headers: Optional[dict] = None
) -> None:
    """Poll until the server is live and ready; ``PyTritonClientTimeoutError`` after ``timeout_s`` (default 60 s).

    ``headers`` are sent with every request (an access token, for instance).
    """
    timeout_s = _DEFAULT_WAIT_FOR_SERVER_READY_TIMEOUT_S if timeout_s is None else timeout_s
    poller = Poller(timeout_s)
    while not _is_server_ready(client, poller.remaining(), headers):
        if not _sleep_or_expire(poller):
            raise PyTritonClientTimeoutError(f"Waiting for server to be ready timed out after {timeout_s} s.")


def _is_model_ready(
    client: _TritonSyncClientType, model_name: str, model_version: str, timeout_s: Optional[float], headers: Any
) -> bool:
    try:
        return bool(client.is_model_ready(model_name, model_version, **_call_kwargs(client, timeout_s, headers)))
    except InferenceServerException:  # gRPC: NOT_FOUND while the model is not there (yet)
        return False
    except TRANSPORT_ERRORS:
        return False


def _version_policy_checked(
    client: _TritonSyncClientType, model_name: str, model_version: str, timeout_s: Optional[float], headers: Any
) -> bool:
    """True once the model's version policy is known to allow ``model_version``; raises when it rules it out."""
    try:
        config = _raw_model_config(client, model_name, "", _call_kwargs(client, timeout_s, headers))
    except CLIENT_ERRORS:
        return False  # the model is not there (yet): look again on the next poll
    error = version_policy_error(config, model_name, model_version)
    if error is not None:
        raise error
    return True


def _wait_timeout_error(
    client: _TritonSyncClientType, model_name: str, model_version: str, timeout_s: float, headers: Any
) -> PyTritonClientError:
    try:
        index = client.get_model_repository_index(**_call_kwargs(client, DIAGNOSTIC_TIMEOUT_S, headers))
    except CLIENT_ERRORS as exc:
        return model_wait_timeout(model_name, model_version, timeout_s, None, describe_error(exc))
    return model_wait_timeout(model_name, model_version, timeout_s, index_entries(index))


def wait_for_model_ready(
    client: _TritonSyncClientType,
    model_name: str,
    model_version: Optional[str] = None,
    timeout_s: Optional[float] = None,
    headers: Optional[dict] = None,
) -> None:
    """Wait for the server, then the model, to be ready (default timeout 300 s, as PyTriton's).

    A model the server does not know yet is waited for: it may be bound or loaded meanwhile. Raises
    ``PyTritonClientTimeoutError`` when the wait runs out; its message lists the models the server knows, and
    when the model (or version) is unknown to the server it is a ``PyTritonClientModelUnavailableError`` too.
    Raises ``PyTritonClientModelUnavailableError`` at once only when the model's ``specific`` version policy
    leaves the requested version out.
    """
    model_version = model_version or ""
    timeout_s = _DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S if timeout_s is None else timeout_s
    poller = Poller(timeout_s)
    wait_for_server_ready(client, timeout_s=timeout_s, headers=headers)
    policy_checked = not model_version
    while not _is_model_ready(client, model_name, model_version, poller.remaining(), headers):
        if not policy_checked:
            policy_checked = _version_policy_checked(client, model_name, model_version, poller.remaining(), headers)
        if not _sleep_or_expire(poller):
            raise _wait_timeout_error(client, model_name, model_version, timeout_s, headers)


def _raw_model_config(
    client: _TritonSyncClientType, model_name: str, model_version: str, kwargs: Dict[str, Any]
) -> Dict[str, Any]:
    if is_grpc_client(client):
        config: Dict[str, Any] = client.get_model_config(model_name, model_version, as_json=True, **kwargs)["config"]
        return config
    kwargs.pop("client_timeout", None)
    http_config: Dict[str, Any] = client.get_model_config(model_name, model_version, **kwargs)
    return http_config


def fetch_model_config(
    client: _TritonSyncClientType,
    model_name: str,
    model_version: str,
    timeout_s: Optional[float],
    headers: Optional[dict] = None,
) -> TritonModelConfig:
    """Fetch and parse the model config without waiting for readiness."""
    try:
        config = _raw_model_config(client, model_name, model_version, _call_kwargs(client, timeout_s, headers))
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
    headers: Optional[dict] = None,
) -> TritonModelConfig:
    """Wait for the model to be ready, then return its config as ``TritonModelConfig``."""
    timeout_s = _DEFAULT_WAIT_FOR_MODEL_TIMEOUT_S if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    wait_for_model_ready(client, model_name, model_version, timeout_s=timeout_s, headers=headers)
    remaining = max(0.0, deadline - time.monotonic())
    return fetch_model_config(client, model_name, model_version or "", remaining, headers)


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


def select_model_state(states: Dict[tuple, ModelState], model_name: str, model_version: Optional[str]) -> ModelState:
    """The state of ``model_version`` (the numerically latest when None); UNAVAILABLE when the index lacks it."""
    if model_version is None:
        versions = {version: state for (name, version), state in states.items() if name == model_name}
        if not versions:
            return ModelState.UNAVAILABLE
        latest = max(versions, key=lambda v: int(v) if str(v).isdigit() else -1)
        return versions[latest]
    return states.get((model_name, str(model_version)), ModelState.UNAVAILABLE)


def get_model_state(
    client: _TritonSyncClientType,
    model_name: str,
    model_version: Optional[str] = None,
    headers: Optional[dict] = None,
) -> ModelState:
    """State of a model version (latest when ``model_version`` is None) from the repository index."""
    index = client.get_model_repository_index(**_call_kwargs(client, None, headers))
    states = parse_http_response(index) if isinstance(index, list) else parse_grpc_response(index.models)
    return select_model_state(states, model_name, model_version)


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
