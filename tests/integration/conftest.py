"""Fixtures shared by the integration tests.

The suite runs twice in CI: as is, and with ``PYTRITON_TRITON_CONFIG_FRONTEND_WORKERS=2`` (every ``Triton()``
then serves HTTP and gRPC from two front-end worker processes). A test marked ``in_process`` looks inside the
serving process for what workers do elsewhere (a thread, a front-end object) and runs only the first way.
"""

from __future__ import annotations

import os

import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient


@pytest.fixture
def clients():
    """``clients(triton)`` -> (HTTP client, gRPC client), both closed when the test ends."""
    made = []

    def make(triton):
        http = httpclient.InferenceServerClient(triton.http_url[len("http://") :])
        grpc_client = grpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])
        made.extend([http, grpc_client])
        return http, grpc_client

    yield make
    for client in made:
        client.close()


def _in_workers() -> bool:
    return os.environ.get("PYTRITON_TRITON_CONFIG_FRONTEND_WORKERS", "0").strip() not in ("", "0")


def pytest_configure(config):
    config.addinivalue_line("markers", "in_process: inspects the serving process's own front ends (not with workers)")


def pytest_collection_modifyitems(config, items):
    if not _in_workers():
        return
    skip = pytest.mark.skip(reason="looks inside in-process front ends; front-end workers run them elsewhere")
    for item in items:
        if item.get_closest_marker("in_process") is not None:
            item.add_marker(skip)
