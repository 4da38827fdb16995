"""What every model client shares: constructor arguments, argument checks, request building, result handling.

No I/O here; the sync and asyncio clients do their own calls.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import tritonclient.utils

from pytriton_lite.client.auth import AuthPlugin, auth_headers
from pytriton_lite.client.exceptions import PyTritonClientValueError
from pytriton_lite.client.utils import TritonUrl
from pytriton_lite.model_config import TritonModelConfig

_LOGGER = logging.getLogger("pytriton_lite.client")

DEFAULT_INFERENCE_TIMEOUT_S = 60.0
DEFAULT_INIT_TIMEOUT_S = 300.0
_DEFAULT_NETWORK_TIMEOUT_S = 60.0

InputsType = Union[Tuple[np.ndarray, ...], Dict[str, np.ndarray]]


def verify_inputs_args(inputs: tuple, named_inputs: dict) -> None:
    """Exactly one of the positional / keyword conventions must be used."""
    if not inputs and not named_inputs:
        raise PyTritonClientValueError("Provide input data")
    if inputs and named_inputs:
        raise PyTritonClientValueError("Use either positional either keyword method arguments convention")


def verify_parameters(parameters_or_headers: Optional[Dict[str, Any]]) -> None:
    """Parameters and headers: a dict of str -> str/int/bool."""
    if parameters_or_headers is None:
        return
    if not isinstance(parameters_or_headers, dict):
        raise PyTritonClientValueError("Parameters and headers must be a dictionary")
    if not all(isinstance(key, str) for key in parameters_or_headers):
        raise PyTritonClientValueError("Parameter/header key must be a string")
    if not all(isinstance(value, (str, int, bool)) for value in parameters_or_headers.values()):
        raise PyTritonClientValueError("Parameter/header value must be a string, integer or boolean")


def add_batch_axis(inputs: tuple, named_inputs: dict) -> Tuple[tuple, dict]:
    """Turn one sample into a batch of one (leading axis)."""
    return (
        tuple(_as_array(f"#{i}", data)[np.newaxis, ...] for i, data in enumerate(inputs)),
        {name: _as_array(name, data)[np.newaxis, ...] for name, data in named_inputs.items()},
    )


def debatch(result: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    return {name: data[0] for name, data in result.items()}


def _as_array(name: str, data: Any) -> np.ndarray:
    if not isinstance(data, np.ndarray):
        raise PyTritonClientValueError(f"Input {name} is not a numpy array. Got {type(data)} instead.")
    return data


def name_inputs(model_config: TritonModelConfig, inputs: InputsType) -> Dict[str, np.ndarray]:
    """Positional inputs follow the model config's input order (fewer = leading inputs only, for optionals)."""
    if isinstance(inputs, dict):
        return inputs
    specs = model_config.inputs or []
    if len(inputs) > len(specs):
        _LOGGER.warning(
            "Model %s has %d inputs but %d were given; the extra ones are ignored.",
            model_config.model_name,
            len(specs),
            len(inputs),
        )
    return {spec.name: data for spec, data in zip(specs, inputs)}


def validate_input(name: str, data: Any) -> np.ndarray:
    """PyTriton's input checks: ndarray, BYTES as bytes objects, no unicode arrays."""
    data = _as_array(name, data)
    if data.dtype == object and data.size and not isinstance(data.reshape(-1)[0], bytes):
        raise RuntimeError(
            f"Numpy array for {name!r} input with dtype=object should contain encoded strings "
            f"(e.g. into utf-8). Element type: {type(data.reshape(-1)[0])}"
        )
    if data.dtype.type == np.str_:
        raise RuntimeError(
            "Unicode inputs are not supported. "
            f"Encode numpy array for {name!r} input (ex. with np.char.encode(array, 'utf-8'))."
        )
    return data


def build_request(lib: Any, model_config: TritonModelConfig, inputs: InputsType) -> Tuple[List[Any], List[Any]]:
    """tritonclient InferInput list (all given inputs) and InferRequestedOutput list (all model outputs)."""
    wrapped = []
    for name, data in name_inputs(model_config, inputs).items():
        data = validate_input(name, data)
        triton_dtype = tritonclient.utils.np_to_triton_dtype(data.dtype)
        if triton_dtype is None:
            raise PyTritonClientValueError(f"Input {name!r} has dtype {data.dtype}, which Triton does not support.")
        infer_input = lib.InferInput(name, list(data.shape), triton_dtype)
        infer_input.set_data_from_numpy(data)
        wrapped.append(infer_input)
    outputs = [lib.InferRequestedOutput(spec.name) for spec in model_config.outputs or []]
    return wrapped, outputs


def result_to_dict(result: Any) -> Dict[str, np.ndarray]:
    """Every output present in a tritonclient InferResult (HTTP or gRPC), in response order."""
    response = result.get_response()
    if isinstance(response, dict):
        names = [output["name"] for output in response.get("outputs", [])]
    else:
        names = [output.name for output in response.outputs]
    return {name: result.as_numpy(name) for name in names}


def merge_headers(headers: Optional[Dict[str, Any]], grpc: bool) -> Optional[Dict[str, str]]:
    """A fresh dict of str header values (tritonclient plugins mutate it; gRPC metadata keys are lowercase)."""
    if headers is None:
        return None
    return {(key.lower() if grpc else key): str(value) for key, value in headers.items()}


class BaseModelClient:
    """Constructor and shared state of ModelClient / AsyncioModelClient and their decoupled variants."""

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
        self._triton_url = TritonUrl.from_url(url)
        # ValueError for an empty token/key before any connection is made
        auth_headers(access_token, api_key, self._triton_url.scheme)
        self._access_token = access_token
        self._api_key = api_key
        self._url = url
        self._model_name = model_name
        self._model_version = model_version
        self._init_timeout_s = DEFAULT_INIT_TIMEOUT_S if init_timeout_s is None else float(init_timeout_s)
        self._inference_timeout_s = (
            DEFAULT_INFERENCE_TIMEOUT_S if inference_timeout_s is None else float(inference_timeout_s)
        )
        # Health/config calls over HTTP: bounded by the init budget, and never longer than PyTriton's 60 s.
        self._network_timeout_s = min(_DEFAULT_NETWORK_TIMEOUT_S, self._init_timeout_s)
        self._model_config = model_config
        # A caller that hands over a config and opts out of readiness checks skips the wait entirely.
        self._model_ready = bool(model_config is not None and not ensure_model_is_ready)
        self._lazy_init = lazy_init
        self._request_id_generator = itertools.count(0)

    @classmethod
    def from_existing_client(cls, existing_client: BaseModelClient, **kwargs: Any):
        """A new client for the same url/model/timeouts, reusing the known model config (no readiness wait)."""
        if existing_client._model_config is not None:
            kwargs.setdefault("model_config", existing_client._model_config)
            kwargs.setdefault("ensure_model_is_ready", False)
        accepted = inspect.signature(cls.__init__).parameters
        for name in ("access_token", "api_key"):
            secret = getattr(existing_client, f"_{name}", None)
            if secret is not None and name in accepted:
                kwargs.setdefault(name, secret)
        return cls(
            url=existing_client._url,
            model_name=existing_client._model_name,
            model_version=existing_client._model_version,
            init_timeout_s=existing_client._init_timeout_s,
            inference_timeout_s=existing_client._inference_timeout_s,
            **kwargs,
        )

    def _register_auth(self, client: Any) -> Any:
        """Make ``client`` (any tritonclient client) send the access token / API key on every call."""
        if self._access_token is not None or self._api_key is not None:
            client.register_plugin(AuthPlugin(self._access_token, self._triton_url.scheme, api_key=self._api_key))
        return client

    @property
    def _next_request_id(self) -> str:
        return str(next(self._request_id_generator))

    @property
    def _is_grpc(self) -> bool:
        return self._triton_url.scheme == "grpc"

    @property
    def _version_str(self) -> str:
        return "" if self._model_version is None else str(self._model_version)
