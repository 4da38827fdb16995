"""pytest plugin (auto-loaded through the ``pytest11`` entry point) and helpers for testing servers.

Fixtures:
    ``triton_server`` -- a factory: ``triton = triton_server(config=None)`` returns a running ``Triton`` on
    127.0.0.1 with every port picked by the OS; bind models on it afterwards (they are live at once).
    Every server it started is stopped when the test ends.

Helpers: ``find_free_port()``, ``running_triton(...)`` (a context manager for use outside pytest).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Callable, Iterator, List, Optional

try:  # the plugin needs pytest; the helpers below do not
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

from pytriton_lite.config import TritonConfig
from pytriton_lite.triton import Triton

LOOPBACK = "127.0.0.1"


def find_free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago (prefer port 0 in TritonConfig where possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def loopback_config(config: Optional[TritonConfig] = None) -> TritonConfig:
    """``config`` with loopback addresses and OS-picked ports wherever it leaves them unset."""
    values = config.to_dict() if config is not None else {}
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


@contextlib.contextmanager
def running_triton(config: Optional[TritonConfig] = None, **triton_kwargs: Any) -> Iterator[Triton]:
    """Start a ``Triton`` on loopback with free ports; stop it on exit."""
    triton = Triton(config=loopback_config(config), **triton_kwargs)
    try:
        triton.run()
        yield triton
    finally:
        triton.stop()


def _triton_server() -> Iterator[Callable[..., Triton]]:
    """Factory fixture: ``triton_server(config=None, **Triton kwargs)`` -> a running loopback ``Triton``."""
    started: List[Triton] = []

    def start(config: Optional[TritonConfig] = None, **triton_kwargs: Any) -> Triton:
        triton = Triton(config=loopback_config(config), **triton_kwargs)
        started.append(triton)
        triton.run()
        return triton

    yield start
    for triton in reversed(started):
        triton.stop()


triton_server = pytest.fixture(_triton_server, name="triton_server") if pytest is not None else None

__all__ = ["find_free_port", "loopback_config", "running_triton", "triton_server", "LOOPBACK"]
