"""pytest plugin (auto-loaded through the ``pytest11`` entry point) and helpers for testing servers.

Fixtures:
    ``triton_server`` -- a factory: ``triton = triton_server(config=None)`` returns a running ``Triton`` on
    127.0.0.1 with every port picked by the OS; bind models on it afterwards (they are live at once).
    ``triton_server(model_repository=path)`` (or ``config=TritonConfig(model_repository=path, ...)``) serves a
    Triton model repository too (explicit model control, every model loaded, unless the config says otherwise).
    Every server it started is stopped when the test ends.

Security: unlike a plain ``Triton()`` (which, as PyTriton 0.7, token-protects statistics, model control, shared
memory, trace and logging), the servers started here have nothing restricted unless ``security_config`` is given.
They listen on loopback on ephemeral ports for one test, and tests read statistics and load models all the time.
To test the production default, pass ``security_config=TritonSecurityConfig()`` (or ``security_config=None``);
its token is ``triton.get_access_token()``. See docs/security.md.

Helpers: ``find_free_port()``, ``running_triton(...)`` (a context manager for use outside pytest; it takes
``model_repository=`` too), and read-only probes of a running server for tests that must wait for a state the
wire does not show: ``model_statistics``, ``queue_state``, ``is_accepting``, ``repository_index`` and
``wait_until``.
"""

from __future__ import annotations

import contextlib
import pathlib
import socket
import time
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

try:  # the plugin needs pytest; the helpers below do not
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

from pytriton_lite.config import TritonConfig, TritonSecurityConfig
from pytriton_lite.triton import Triton
from pytriton_lite.types import StatsSnapshot

LOOPBACK = "127.0.0.1"


def find_free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago (prefer port 0 in TritonConfig where possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def loopback_config(config: Optional[TritonConfig] = None, model_repository: Any = None) -> TritonConfig:
    """``config`` with loopback addresses and OS-picked ports wherever it leaves them unset (and
    ``model_repository``, when given, as the repository to serve)."""
    values = config.to_dict() if config is not None else {}
    if model_repository is not None:
        values["model_repository"] = (
            [pathlib.Path(p) for p in model_repository]
            if isinstance(model_repository, (list, tuple))
            else pathlib.Path(model_repository)
        )
    for key, value in (
        ("http_address", LOOPBACK),
        ("grpc_address", LOOPBACK),
        ("metrics_address", LOOPBACK),
        ("http_port", 0),
        ("grpc_port", 0),
        ("metrics_port", 0),
        ("exit_timeout_secs", 5),
    ):
        values.setdefault(key, value)
    return TritonConfig(**values)


def _test_server_kwargs(triton_kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """``Triton`` keyword arguments with nothing restricted unless the caller chose a ``security_config``."""
    if "security_config" not in triton_kwargs:
        triton_kwargs = {**triton_kwargs, "security_config": TritonSecurityConfig(restricted_endpoints=[])}
    return triton_kwargs


@contextlib.contextmanager
def running_triton(
    config: Optional[TritonConfig] = None, *, model_repository: Any = None, **triton_kwargs: Any
) -> Iterator[Triton]:
    """Start a ``Triton`` on loopback with free ports (serving ``model_repository`` when given); stop it on exit.

    Nothing is restricted unless ``security_config`` is passed (see the module docstring)."""
    triton = Triton(config=loopback_config(config, model_repository), **_test_server_kwargs(triton_kwargs))
    try:
        triton.run()
        yield triton
    finally:
        triton.stop()


def _triton_server() -> Iterator[Callable[..., Triton]]:
    """Factory fixture: ``triton_server(config=None, model_repository=None, **Triton kwargs)`` -> a running
    loopback ``Triton``."""
    started: List[Triton] = []

    def start(config: Optional[TritonConfig] = None, *, model_repository: Any = None, **triton_kwargs: Any) -> Triton:
        triton = Triton(config=loopback_config(config, model_repository), **_test_server_kwargs(triton_kwargs))
        started.append(triton)
        triton.run()
        return triton

    yield start
    for triton in reversed(started):
        triton.stop()


class QueueState(NamedTuple):
    """A model's batcher queue: requests waiting, and how many of them nobody waits for any more."""

    queued: int
    abandoned: int


def model_statistics(triton: Triton, name: str, version: str = "") -> StatsSnapshot:
    """The statistics snapshot of a model version of a running ``triton``, in any state (taken on its loop)."""
    snapshot: StatsSnapshot = triton._on_loop(lambda dataplane: dataplane._snapshot(dataplane.entry(name, version)))
    return snapshot


def queue_state(triton: Triton, name: str, version: str = "") -> QueueState:
    """How many requests wait in the model's queue, and how many of those have been abandoned by their client."""
    return QueueState(*triton._on_loop(lambda dataplane: dataplane.entry(name, version).batcher.queue_counts()))


def is_accepting(triton: Triton) -> bool:
    """False once ``stop()`` began draining (new requests are refused from then on)."""
    return bool(triton._on_loop(lambda dataplane: dataplane.accepting))


def repository_index(triton: Triton) -> List[Dict[str, str]]:
    """The repository index of a running ``triton`` as its HTTP JSON rows (every model, state and reason)."""
    rows = triton._on_loop(lambda dataplane: dataplane.repository_index())
    return [row.as_dict() for row in rows]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.005) -> None:
    """Poll ``predicate`` until it is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        time.sleep(interval)


triton_server = pytest.fixture(_triton_server, name="triton_server") if pytest is not None else None

__all__ = [
    "find_free_port",
    "is_accepting",
    "loopback_config",
    "model_statistics",
    "queue_state",
    "repository_index",
    "running_triton",
    "triton_server",
    "wait_until",
    "QueueState",
    "LOOPBACK",
]
