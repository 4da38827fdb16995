"""Fixtures shared by the integration tests."""

from __future__ import annotations

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
