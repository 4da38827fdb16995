"""``pytriton_lite.client.auth`` raises ``ValueError`` where PyTriton's does; ModelClient checks its token early."""

from __future__ import annotations

import pytest

from pytriton_lite.client import DecoupledModelClient, ModelClient
from pytriton_lite.client.auth import (
    TRITON_ACCESS_HEADER,
    AuthPlugin,
    auth_headers,
    create_api_key_headers,
    create_auth_headers,
    extract_access_token_from_headers,
)

GRPC_HEADER = "triton-grpc-protocol-triton-access-token"


def test_create_auth_headers_per_protocol():
    assert TRITON_ACCESS_HEADER == "triton-access-token"
    assert create_auth_headers("tok", "http") == {"triton-access-token": "tok"}
    assert create_auth_headers("tok", "grpc") == {GRPC_HEADER: "tok"}
    assert create_auth_headers("tok", "GRPC") == {GRPC_HEADER: "tok"}


@pytest.mark.parametrize("token", [None, ""])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_create_auth_headers_refuses_a_missing_token(token, protocol):
    with pytest.raises(ValueError, match="access_token cannot be None or empty"):
        create_auth_headers(token, protocol)


@pytest.mark.parametrize("protocol", ["https", "", "websocket"])
def test_create_auth_headers_refuses_an_unknown_protocol(protocol):
    with pytest.raises(ValueError, match="Invalid protocol"):
        create_auth_headers("tok", protocol)


def test_extract_access_token():
    assert extract_access_token_from_headers(None) is None
    assert extract_access_token_from_headers({}) is None
    assert extract_access_token_from_headers({"other": "b"}) is None
    assert extract_access_token_from_headers({"triton-access-token": "a"}) == "a"
    assert extract_access_token_from_headers({GRPC_HEADER: "g"}) == "g"
    assert extract_access_token_from_headers({"Triton-Access-Token": "a"}) == "a"  # header names ignore case
    assert extract_access_token_from_headers({"triton-access-token": "same", GRPC_HEADER: "same"}) == "same"


@pytest.mark.parametrize(
    "headers",
    [
        {"triton-access-token": "a", GRPC_HEADER: "b"},
        {"triton-access-token": "a", "Triton-Access-Token": "b"},
        {"triton-access-token": "", GRPC_HEADER: "b"},
    ],
)
def test_extract_access_token_refuses_conflicting_tokens(headers):
    with pytest.raises(ValueError, match="Conflicting authentication headers"):
        extract_access_token_from_headers(headers)


def test_auth_plugin_adds_the_header():
    class Request:
        headers = {"x": "1"}

    request = Request()
    AuthPlugin("tok", "grpc")(request)
    assert request.headers == {"x": "1", GRPC_HEADER: "tok"}
    with pytest.raises(ValueError):
        AuthPlugin("", "http")


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "grpc://127.0.0.1:1"])
def test_model_client_refuses_an_empty_token_before_connecting(url):
    with pytest.raises(ValueError, match="access_token cannot be None or empty"):
        ModelClient(url, "m", lazy_init=False, init_timeout_s=60, access_token="")


def test_from_existing_client_keeps_the_access_token():
    with ModelClient("grpc://127.0.0.1:1", "m", access_token="s3cret") as first:
        with ModelClient.from_existing_client(first) as second:
            assert second._access_token == "s3cret"
        with DecoupledModelClient.from_existing_client(first) as decoupled:  # every client takes the token now
            assert decoupled._access_token == "s3cret"


def test_from_existing_client_keeps_the_api_key():
    with ModelClient("grpc://127.0.0.1:1", "m", api_key="k3y") as first:
        with DecoupledModelClient.from_existing_client(first) as second:
            assert (second._api_key, second._access_token) == ("k3y", None)


def test_api_key_headers_for_both_protocols():
    assert create_api_key_headers("k3y") == {"Authorization": "Bearer k3y"}
    assert create_api_key_headers("k3y", "grpc") == {"authorization": "Bearer k3y"}  # gRPC keys are lower-case
    assert auth_headers("tok", "k3y", "grpc") == {GRPC_HEADER: "tok", "authorization": "Bearer k3y"}
    assert auth_headers(None, None, "http") == {}
    for bad in (None, "", "two words", "caf\u00e9"):
        with pytest.raises(ValueError, match="api_key"):
            create_api_key_headers(bad)
    with pytest.raises(ValueError, match="Invalid protocol"):
        create_api_key_headers("k3y", "ftp")


def test_auth_plugin_with_an_api_key_only():
    class Request:
        headers: dict = {}

    request = Request()
    AuthPlugin(None, "http", api_key="k3y")(request)
    assert request.headers == {"Authorization": "Bearer k3y"}
    with pytest.raises(ValueError):
        AuthPlugin(None, "http")


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "grpc://127.0.0.1:1"])
def test_model_client_refuses_an_empty_api_key_before_connecting(url):
    with pytest.raises(ValueError, match="api_key cannot be None or empty"):
        ModelClient(url, "m", lazy_init=False, init_timeout_s=60, api_key="")
