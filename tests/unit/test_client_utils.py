"""Client pieces that need no server: URL parsing, exceptions, argument checks, error mapping, state parsing."""

from __future__ import annotations

import socket
import types

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from pytriton_lite.client import DecoupledModelClient, FuturesModelClient, ModelClient
from pytriton_lite.client import exceptions as exc_module
from pytriton_lite.client._base import build_request, name_inputs, validate_input, verify_inputs_args, verify_parameters
from pytriton_lite.client._errors import inference_error
from pytriton_lite.client.auth import create_auth_headers, extract_access_token_from_headers
from pytriton_lite.client.exceptions import (
    PyTritonClientError,
    PyTritonClientInferenceServerError,
    PyTritonClientInvalidUrlError,
    PyTritonClientModelUnavailableError,
    PyTritonClientTimeoutError,
    PyTritonClientValueError,
)
from pytriton_lite.client.utils import ModelState, TritonUrl, get_model_state, wait_for_server_ready
from pytriton_lite.client.warnings import NotSupportedTimeoutWarning, PyTritonWarning
from pytriton_lite.model_config import TritonModelConfig


@pytest.mark.parametrize(
    "url, expected",
    [
        ("localhost", ("http", "localhost", 8000)),
        ("localhost:8001", ("http", "localhost", 8001)),
        ("127.0.0.1:9000", ("http", "127.0.0.1", 9000)),
        ("http://host", ("http", "host", 8000)),
        ("http://host:1234", ("http", "host", 1234)),
        ("grpc://localhost", ("grpc", "localhost", 8001)),
        ("grpc://localhost:5555", ("grpc", "localhost", 5555)),
        ("GRPC://h:1", ("grpc", "h", 1)),
    ],
)
def test_url_forms(url, expected):
    parsed = TritonUrl.from_url(url)
    assert (parsed.scheme, parsed.hostname, parsed.port) == expected
    assert parsed.without_scheme == f"{expected[1]}:{expected[2]}"
    assert parsed.with_scheme == f"{expected[0]}://{expected[1]}:{expected[2]}"


@pytest.mark.parametrize("url", ["https://host", "ftp://host:1", "http://host:notaport", 8000, None, "grpc://"])
def test_invalid_urls(url):
    with pytest.raises(PyTritonClientInvalidUrlError):
        TritonUrl.from_url(url)


def test_invalid_url_is_a_value_error_for_every_client():
    with pytest.raises(PyTritonClientValueError):
        ModelClient("https://localhost", "m")
    with pytest.raises(PyTritonClientValueError, match="grpc"):
        DecoupledModelClient("http://localhost:1", "m")


def test_exception_hierarchy():
    names = [
        "PyTritonClientValueError",
        "PyTritonClientInvalidUrlError",
        "PyTritonClientTimeoutError",
        "PyTritonClientModelUnavailableError",
        "PyTritonClientClosedError",
        "PyTritonClientModelDoesntSupportBatchingError",
        "PyTritonClientInferenceServerError",
        "PyTritonClientQueueFullError",
    ]
    for name in names:
        cls = getattr(exc_module, name)
        assert issubclass(cls, PyTritonClientError)
        error = cls("text")
        assert error.message == "text" and str(error) == "text"
    assert issubclass(PyTritonClientInvalidUrlError, PyTritonClientValueError)
    assert issubclass(NotSupportedTimeoutWarning, PyTritonWarning) and issubclass(PyTritonWarning, UserWarning)


def test_auth_headers():
    assert create_auth_headers(None) == {}
    assert create_auth_headers("tok") == {"triton-access-token": "tok"}
    assert create_auth_headers("tok", "grpc") == {"triton-grpc-protocol-triton-access-token": "tok"}
    assert extract_access_token_from_headers({"Triton-Access-Token": "a"}) == "a"
    assert extract_access_token_from_headers({"other": "b"}) is None


def test_argument_checks():
    with pytest.raises(PyTritonClientValueError, match="Provide input data"):
        verify_inputs_args((), {})
    with pytest.raises(PyTritonClientValueError, match="either positional either keyword"):
        verify_inputs_args((1,), {"a": 1})
    verify_parameters(None)
    verify_parameters({"a": "b", "c": 1, "d": True})
    for bad in ({1: "a"}, {"a": 1.5}, {"a": None}, ["a"]):
        with pytest.raises(PyTritonClientValueError):
            verify_parameters(bad)


def test_input_validation():
    validate_input("x", np.array([b"a", b"b\x00"], dtype=object))
    validate_input("x", np.array([], dtype=object))
    with pytest.raises(RuntimeError, match="encoded strings"):
        validate_input("x", np.array(["a"], dtype=object))
    with pytest.raises(RuntimeError, match="Unicode"):
        validate_input("x", np.array(["a"]))
    with pytest.raises(PyTritonClientValueError):
        validate_input("x", [1, 2])


def _config():
    return TritonModelConfig.from_dict(
        {
            "name": "m",
            "max_batch_size": 4,
            "input": [
                {"name": "a", "data_type": "TYPE_FP32", "dims": [-1]},
                {"name": "b", "data_type": "TYPE_STRING", "dims": ["-1"], "optional": True},
            ],
            "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": [-1]}],
        }
    )


def test_positional_inputs_follow_config_order():
    config = _config()
    a, b = np.ones((1, 2), np.float32), np.array([[b"x"]], dtype=object)
    assert list(name_inputs(config, (a, b))) == ["a", "b"]
    assert list(name_inputs(config, (a,))) == ["a"]
    assert list(name_inputs(config, (a, b, a))) == ["a", "b"]  # extra positional inputs are dropped
    import tritonclient.http

    inputs, outputs = build_request(tritonclient.http, config, {"a": a, "b": b})
    assert [(i.name(), i.datatype(), i.shape()) for i in inputs] == [("a", "FP32", [1, 2]), ("b", "BYTES", [1, 1])]
    assert [o.name() for o in outputs] == ["y"]
    with pytest.raises(PyTritonClientValueError):
        build_request(tritonclient.http, config, {"a": np.ones(1, np.complex64)})


@pytest.mark.parametrize(
    "status, message, expected",
    [
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", PyTritonClientTimeoutError),
        ("503", "Request timeout expired", PyTritonClientTimeoutError),
        ("404", "Request for unknown model: 'm' is not found", PyTritonClientModelUnavailableError),
        ("StatusCode.NOT_FOUND", "Request for unknown model: 'm' is not found", PyTritonClientModelUnavailableError),
        ("500", "ValueError: boom", PyTritonClientInferenceServerError),
        ("StatusCode.INVALID_ARGUMENT", "bad shape", PyTritonClientInferenceServerError),
        (None, "stream error", PyTritonClientInferenceServerError),
    ],
)
def test_error_mapping(status, message, expected):
    error = inference_error(
        InferenceServerException(msg=message, status=status), model_name="m", model_version=None, timeout_s=1.0
    )
    assert type(error) is expected
    assert message in str(error)


def test_transport_errors_map_to_timeouts():
    for raised in (socket.timeout("timed out"), ConnectionRefusedError("refused")):
        error = inference_error(raised, model_name="m", model_version=None, timeout_s=1.0)
        assert isinstance(error, PyTritonClientTimeoutError)


def test_model_state_from_repository_index():
    http_index = [
        {"name": "a", "version": "1", "state": "READY"},
        {"name": "a", "version": "2", "state": "LOADING"},
        {"name": "a", "version": "10", "state": "UNLOADING"},
        {"name": "b"},
    ]
    http_client = types.SimpleNamespace(get_model_repository_index=lambda: http_index)
    assert get_model_state(http_client, "a") is ModelState.UNLOADING  # latest = 10 (numeric order)
    assert get_model_state(http_client, "a", "1") is ModelState.READY
    assert get_model_state(http_client, "a", "3") is ModelState.UNAVAILABLE
    assert get_model_state(http_client, "b") is ModelState.UNAVAILABLE

    entry = types.SimpleNamespace
    grpc_index = entry(models=[entry(name="a", version="1", state="READY"), entry(name="a", version="2", state="")])
    grpc_client = types.SimpleNamespace(get_model_repository_index=lambda: grpc_index)
    assert get_model_state(grpc_client, "a") is ModelState.LOADING
    assert get_model_state(grpc_client, "a", "1") is ModelState.READY


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_wait_for_server_times_out_when_nothing_listens(scheme):
    from pytriton_lite.client.utils import create_client_from_url

    client = create_client_from_url(f"{scheme}://127.0.0.1:{_closed_port()}", network_timeout_s=0.2)
    try:
        with pytest.raises(PyTritonClientTimeoutError):
            wait_for_server_ready(client, timeout_s=0.2)
    finally:
        client.close()


def test_futures_client_argument_checks():
    with pytest.raises(ValueError):
        FuturesModelClient("http://127.0.0.1:1", "m", max_workers=0)
    with pytest.raises(ValueError):
        FuturesModelClient("http://127.0.0.1:1", "m", max_queue_size=-1)
