"""TritonSecurityConfig: token-protected endpoints over HTTP and gRPC, protected by default as in PyTriton 0.7."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.exceptions import PyTritonValidationError
from pytriton_lite.model_config import Tensor
from pytriton_lite.testing import loopback_config
from pytriton_lite.triton import TRITON_ACCESS_HEADER, Triton, TritonSecurityConfig

IN = [Tensor(name="x", shape=(-1,), dtype=np.float32)]
OUT = [Tensor(name="y", shape=(-1,), dtype=np.float32)]


def identity(requests):
    return [{"y": r["x"]} for r in requests]


def test_no_security_config_protects_the_five_groups_as_pytriton(triton_server):
    triton = triton_server(security_config=None)  # what Triton() does; the fixture alone opens everything
    triton.bind("m", identity, IN, OUT)
    token = triton.get_access_token()
    assert token and len(token) >= 32
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    for call in (lambda: client.get_inference_statistics("m"), client.get_model_repository_index):
        with pytest.raises(InferenceServerException, match="restricted"):
            call()
    headers = {TRITON_ACCESS_HEADER: token}
    assert client.get_inference_statistics("m", headers=headers)["model_stats"][0]["name"] == "m"
    assert client.get_model_metadata("m")["name"] == "m"  # metadata, config, health, inference stay open
    assert client.get_model_config("m")["name"] == "m"
    client.close()
    gclient = grpcclient.InferenceServerClient(triton.grpc_url[7:])
    with pytest.raises(InferenceServerException, match="restricted") as refused:
        gclient.get_model_repository_index()
    assert refused.value.status() == "StatusCode.UNAVAILABLE"  # Triton's code for a restricted protocol
    gclient.close()


def test_a_plain_triton_is_protected_and_the_test_fixture_is_open(triton_server):
    with Triton(config=loopback_config()) as triton:
        assert triton.get_access_token()
        assert triton.config.http_restricted_api.startswith("shared-memory,model-repository,statistics,trace,logging:")
    assert triton_server().get_access_token() is None  # pytriton_lite.testing: loopback test servers are open


def test_an_empty_endpoint_list_opens_everything_so_perf_analyzer_can_read_stats(triton_server):
    triton = triton_server(security_config=TritonSecurityConfig(restricted_endpoints=[]))
    triton.bind("m", identity, IN, OUT)
    assert triton.get_access_token() is None
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    assert client.get_inference_statistics("m")["model_stats"][0]["name"] == "m"
    client.close()


def test_security_config_fills_token_and_groups_at_construction():
    security = TritonSecurityConfig()
    assert security.restricted_endpoints == ["shared-memory", "model-repository", "statistics", "trace", "logging"]
    assert security.access_token and len(security.access_token) >= 32
    assert security.access_token != TritonSecurityConfig().access_token  # random each time
    assert TritonSecurityConfig(restricted_endpoints=[]).access_token is None
    assert TritonSecurityConfig(access_token="given").access_token == "given"
    assert "given" not in repr(TritonSecurityConfig(access_token="given"))  # secrets stay out of logs


@pytest.mark.parametrize("token", ["", "with space", "semi;colon", "caf\u00e9"])
def test_tokens_that_cannot_travel_in_a_header_are_refused(token):
    with pytest.raises(PyTritonValidationError, match="access_token must be"):
        TritonSecurityConfig(access_token=token)


def test_a_wrong_token_of_the_right_length_is_refused(triton_server):
    triton = triton_server(security_config=TritonSecurityConfig(access_token="a" * 43))
    triton.bind("m", identity, IN, OUT)
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    with pytest.raises(InferenceServerException, match="restricted"):
        client.get_inference_statistics("m", headers={TRITON_ACCESS_HEADER: "a" * 42 + "b"})
    client.close()


def test_config_rules_are_kept_beside_the_token(triton_server):
    # TritonConfig's own --http-restricted-api rules come after the token's: both apply, the config wins per group
    rule = "model-config:admin=yes"
    config = TritonConfig(http_restricted_api=rule, grpc_restricted_protocol=rule)
    triton = triton_server(config=config, security_config=TritonSecurityConfig(access_token="tok"))
    triton.bind("m", identity, IN, OUT)
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    with pytest.raises(InferenceServerException, match="expecting header 'admin'"):
        client.get_model_config("m")
    assert client.get_model_config("m", headers={"admin": "yes"})["name"] == "m"
    assert client.get_inference_statistics("m", headers={TRITON_ACCESS_HEADER: "tok"})["model_stats"]
    client.close()


def test_pytriton_default_protects_statistics_with_a_generated_token(triton_server):
    triton = triton_server(security_config=TritonSecurityConfig())
    triton.bind("m", identity, IN, OUT)
    token = triton.get_access_token()
    assert token and len(token) >= 32
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    with pytest.raises(InferenceServerException, match="restricted"):
        client.get_inference_statistics("m")
    stats = client.get_inference_statistics("m", headers={TRITON_ACCESS_HEADER: token})
    assert stats["model_stats"][0]["name"] == "m"
    assert client.is_server_ready()  # health and inference stay open
    data = np.ones((1, 2), np.float32)
    inp = httpclient.InferInput("x", data.shape, "FP32")
    inp.set_data_from_numpy(data)
    assert client.infer("m", [inp]).as_numpy("y").tolist() == [[1.0, 1.0]]
    client.close()

    gclient = grpcclient.InferenceServerClient(triton.grpc_url[7:])
    with pytest.raises(InferenceServerException, match="restricted"):
        gclient.get_inference_statistics("m")
    header = {f"triton-grpc-protocol-{TRITON_ACCESS_HEADER}": token}
    assert gclient.get_inference_statistics("m", headers=header).model_stats[0].name == "m"
    gclient.close()


def test_custom_token_and_endpoints(triton_server):
    security = TritonSecurityConfig(access_token="s3cret", restricted_endpoints=["inference"])
    triton = triton_server(security_config=security)
    triton.bind("m", identity, IN, OUT)
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    data = np.ones((1, 2), np.float32)
    inp = httpclient.InferInput("x", data.shape, "FP32")
    inp.set_data_from_numpy(data)
    with pytest.raises(InferenceServerException, match="restricted"):
        client.infer("m", [inp])
    assert client.infer("m", [inp], headers={TRITON_ACCESS_HEADER: "s3cret"}).as_numpy("y").shape == (1, 2)
    client.close()


def test_invalid_endpoint_names_are_refused():
    with pytest.raises(PyTritonValidationError, match="Invalid endpoint names: nope"):
        TritonSecurityConfig(restricted_endpoints=["health", "nope"])


def test_a_token_with_a_colon_protects_both_protocols_alike(triton_server):
    # one parser for both flags: before, the HTTP front end refused this spec (its groups ended at the last ':')
    security = TritonSecurityConfig(access_token="s3:cret", restricted_endpoints=["statistics"])
    triton = triton_server(security_config=security)
    triton.bind("m", identity, IN, OUT)
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    with pytest.raises(InferenceServerException, match="restricted"):
        client.get_inference_statistics("m")
    assert client.get_inference_statistics("m", headers={TRITON_ACCESS_HEADER: "s3:cret"})["model_stats"]
    client.close()
    gclient = grpcclient.InferenceServerClient(triton.grpc_url[7:])
    with pytest.raises(InferenceServerException, match="restricted"):
        gclient.get_inference_statistics("m")
    header = {f"triton-grpc-protocol-{TRITON_ACCESS_HEADER}": "s3:cret"}
    assert gclient.get_inference_statistics("m", headers=header).model_stats[0].name == "m"
    gclient.close()


def test_fields_changed_after_construction_do_not_open_the_server(triton_server):
    security = TritonSecurityConfig()
    security.restricted_endpoints = None  # PyTriton's "defaults", set late
    security.access_token = None
    triton = triton_server(security_config=security)
    token = triton.get_access_token()
    assert token and triton.config.http_restricted_api.endswith(f":{TRITON_ACCESS_HEADER}={token}")
    security = TritonSecurityConfig(restricted_endpoints=[])
    security.restricted_endpoints = ["nope"]
    with pytest.raises(PyTritonValidationError, match="Invalid endpoint names: nope"):
        triton_server(security_config=security)
