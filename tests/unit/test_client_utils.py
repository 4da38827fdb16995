"""Client pieces that need no server: URL parsing, exceptions, argument checks, error mapping, state parsing."""

from __future__ import annotations

import asyncio
import inspect
import socket
import types

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from pytriton_lite.client import DecoupledModelClient, FuturesModelClient, ModelClient
from pytriton_lite.client import exceptions as exc_module
from pytriton_lite.client._base import build_request, name_inputs, validate_input, verify_inputs_args, verify_parameters
from pytriton_lite.client._errors import inference_error
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
    for size in (0, -1):
        with pytest.raises(ValueError):
            FuturesModelClient("http://127.0.0.1:1", "m", max_queue_size=size)


# --- PyTriton's signatures (issue 11) -------------------------------------------------------------------------


def _params(func):
    return list(inspect.signature(func).parameters)


def test_utils_signatures_match_pytriton():
    from pytriton_lite.client import utils

    assert _params(utils.wait_for_server_ready) == ["client", "timeout_s", "headers"]
    assert _params(utils.wait_for_model_ready) == ["client", "model_name", "model_version", "timeout_s", "headers"]
    assert _params(utils.get_model_config) == ["client", "model_name", "model_version", "timeout_s", "headers"]
    assert _params(utils.get_model_state) == ["client", "model_name", "model_version", "headers"]
    assert _params(utils.create_client_from_url) == ["url", "network_timeout_s"]


def test_asyncio_utils_signatures_match_pytriton():
    from pytriton_lite.client import asyncio_utils

    assert _params(asyncio_utils.asyncio_wait_for_server_ready)[:2] == ["asyncio_client", "sleep_time_s"]
    assert _params(asyncio_utils.asyncio_wait_for_model_status_loaded)[:4] == [
        "asyncio_client",
        "model_name",
        "sleep_time_s",
        "model_version",
    ]
    assert _params(asyncio_utils.asyncio_wait_for_model_ready) == [
        "asyncio_client",
        "model_name",
        "model_version",
        "timeout_s",
    ]
    assert inspect.signature(asyncio_utils.asyncio_wait_for_model_ready).parameters["timeout_s"].default == 60.0
    assert _params(asyncio_utils.asyncio_get_model_config) == ["client", "model_name", "model_version", "timeout_s"]
    assert _params(asyncio_utils.asyncio_get_model_state) == ["client", "model_name", "model_version"]


class _FakeServer:
    """What a tritonclient.http client would answer: the model becomes ready after ``ready_after`` polls."""

    def __init__(self, ready_after=0, config=None, index=None):
        self.calls = []
        self.polls = 0
        self.ready_after = ready_after
        self.config = config or {"name": "m", "max_batch_size": 0}
        self.index = [{"name": "m", "version": "1", "state": "READY"}] if index is None else index

    def _record(self, method, headers):
        self.calls.append((method, headers))

    def is_server_ready(self, headers=None):
        self._record("is_server_ready", headers)
        return True

    def is_server_live(self, headers=None):
        self._record("is_server_live", headers)
        return True

    def is_model_ready(self, model_name, model_version="", headers=None):
        self._record("is_model_ready", headers)
        self.polls += 1
        return self.polls > self.ready_after

    def get_model_config(self, model_name, model_version="", headers=None):
        self._record("get_model_config", headers)
        return self.config

    def get_model_repository_index(self, headers=None):
        self._record("get_model_repository_index", headers)
        return self.index


class _FakeAioServer(_FakeServer):
    async def is_server_ready(self, headers=None):
        return super().is_server_ready(headers)

    async def is_server_live(self, headers=None):
        return super().is_server_live(headers)

    async def is_model_ready(self, model_name, model_version="", headers=None):
        return super().is_model_ready(model_name, model_version, headers)

    async def get_model_config(self, model_name, model_version="", headers=None):
        return super().get_model_config(model_name, model_version, headers)

    async def get_model_repository_index(self, headers=None):
        return super().get_model_repository_index(headers)


def test_headers_reach_every_call():
    from pytriton_lite.client.utils import get_model_config, wait_for_model_ready

    headers = {"triton-access-token": "tok"}
    server = _FakeServer(ready_after=1)
    wait_for_server_ready(server, timeout_s=5, headers=headers)
    wait_for_model_ready(server, "m", timeout_s=5, headers=headers)
    config = get_model_config(server, "m", timeout_s=5, headers=headers)
    assert get_model_state(server, "m", headers=headers) is ModelState.READY
    assert config.model_name == "m"
    methods = {method for method, _ in server.calls}
    assert methods == {
        "is_server_ready",
        "is_server_live",
        "is_model_ready",
        "get_model_config",
        "get_model_repository_index",
    }
    assert all(seen == headers for _, seen in server.calls)
    assert all(seen is not headers for _, seen in server.calls)  # a copy each time: plugins may add to it


def test_wait_for_model_times_out_listing_the_known_models():
    from pytriton_lite.client.utils import wait_for_model_ready

    server = _FakeServer(ready_after=10**9, index=[{"name": "a", "version": "1", "state": "READY"}, {"name": "b"}])
    with pytest.raises(PyTritonClientTimeoutError, match="Waiting for model missing/<latest> to be ready timed out"):
        wait_for_model_ready(server, "missing", timeout_s=0.05)
    with pytest.raises(PyTritonClientModelUnavailableError, match="the models it knows: 'a', 'b'"):
        wait_for_model_ready(server, "missing", timeout_s=0.05)


def test_wait_for_model_fails_at_once_for_a_version_outside_a_specific_policy():
    from pytriton_lite.client.utils import wait_for_model_ready

    config = {"name": "m", "version_policy": {"specific": {"versions": ["1", "3"]}}}
    server = _FakeServer(ready_after=10**9, config=config)
    with pytest.raises(PyTritonClientModelUnavailableError, match="version 2 is not one of them") as raised:
        wait_for_model_ready(server, "m", "2", timeout_s=60)
    assert not isinstance(raised.value, PyTritonClientTimeoutError)
    assert server.polls == 1
    # listed versions, other policies and no version at all are waited for
    for version, policy in (
        ("3", config["version_policy"]),
        ("2", {"all": {}}),
        ("2", {"latest": {"num_versions": 1}}),
    ):
        waiting = _FakeServer(ready_after=3, config={"name": "m", "version_policy": policy})
        wait_for_model_ready(waiting, "m", version, timeout_s=10)
        assert waiting.polls == 4


def test_asyncio_wait_for_server_ready_polls_every_sleep_time_s(monkeypatch):
    from pytriton_lite.client import asyncio_utils

    delays = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay):
        delays.append(delay)
        await real_sleep(0)

    class NotReadyTwice(_FakeAioServer):
        async def is_server_ready(self, headers=None):
            self.polls += 1
            return self.polls > 2

    monkeypatch.setattr(asyncio_utils.asyncio, "sleep", recording_sleep)
    asyncio.run(asyncio_utils.asyncio_wait_for_server_ready(NotReadyTwice(), 0.25))
    assert delays == [0.25, 0.25]


def test_asyncio_wait_for_model_status_loaded():
    from pytriton_lite.client import asyncio_utils

    server = _FakeAioServer(ready_after=2)
    asyncio.run(asyncio_utils.asyncio_wait_for_model_status_loaded(server, "m", 0.001))
    assert server.polls == 3

    never = _FakeAioServer(ready_after=10**9)

    async def still_polling_after_a_while() -> bool:
        """No deadline of its own, as PyTriton's: it polls on until the caller cancels it."""
        task = asyncio.ensure_future(asyncio_utils.asyncio_wait_for_model_status_loaded(never, "x", 0.001))
        await asyncio.sleep(0.05)
        running = not task.done() and never.polls > 1
        for _ in range(100):  # a cancel can race a poll finishing (asyncio.wait_for on 3.11): repeat, bounded
            task.cancel()
            await asyncio.sleep(0.01)
            if task.done():
                break
        return running and task.cancelled()

    assert asyncio.run(still_polling_after_a_while())
    with pytest.raises(PyTritonClientModelUnavailableError, match="does not know model 'x'; the models it knows: 'm'"):
        asyncio.run(asyncio_utils.asyncio_wait_for_model_status_loaded(never, "x", 0.001, timeout_s=0.05))
    specific = _FakeAioServer(
        ready_after=10**9, config={"name": "m", "version_policy": {"specific": {"versions": [1]}}}
    )
    with pytest.raises(PyTritonClientModelUnavailableError, match="version 5 is not one of them"):
        asyncio.run(asyncio_utils.asyncio_wait_for_model_status_loaded(specific, "m", 0.001, "5", timeout_s=60))


def test_asyncio_wait_for_model_ready_and_config():
    from pytriton_lite.client import asyncio_utils

    server = _FakeAioServer(ready_after=1)
    asyncio.run(asyncio_utils.asyncio_wait_for_model_ready(asyncio_client=server, model_name="m", timeout_s=5))
    config = asyncio.run(asyncio_utils.asyncio_get_model_config(server, "m", timeout_s=5))
    assert config.model_name == "m"
    assert asyncio.run(asyncio_utils.asyncio_get_model_state(server, "m")) is ModelState.READY
    never = _FakeAioServer(ready_after=10**9)
    with pytest.raises(PyTritonClientTimeoutError, match="timed out after 0.05 s"):
        asyncio.run(asyncio_utils.asyncio_wait_for_model_ready(never, "m", "1", timeout_s=0.05))


def test_timeout_messages_explain_what_the_server_knows():
    from pytriton_lite.client._readiness import ModelNotFoundTimeoutError, model_wait_timeout

    entries = [("m", "1", "READY", ""), ("m", "2", "UNAVAILABLE", "load failed: boom"), ("n", "", "", "")]
    unknown = model_wait_timeout("x", "", 1.5, entries)
    assert isinstance(unknown, ModelNotFoundTimeoutError) and isinstance(unknown, PyTritonClientTimeoutError)
    assert "timed out after 1.5 s" in unknown.message and "the models it knows: 'm', 'n'" in unknown.message
    no_version = model_wait_timeout("m", "7", 1, entries)
    assert isinstance(no_version, ModelNotFoundTimeoutError)
    assert "versions 1: READY, 2: UNAVAILABLE (load failed: boom)" in no_version.message
    assert "but not version 7" in no_version.message
    not_ready = model_wait_timeout("m", "2", 1, entries)
    assert type(not_ready) is PyTritonClientTimeoutError and "load failed: boom" in not_ready.message
    empty = model_wait_timeout("x", "", 1, [])
    assert "the models it knows: none" in empty.message
    unread = model_wait_timeout("x", "", 1, None, "401: restricted")
    assert type(unread) is PyTritonClientTimeoutError and "could not be read: 401: restricted" in unread.message
