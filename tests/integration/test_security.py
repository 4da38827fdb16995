"""TritonSecurityConfig: token-protected endpoints over HTTP and gRPC; open by default."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pytriton_lite.exceptions import PyTritonValidationError
from pytriton_lite.model_config import Tensor
from pytriton_lite.triton import TRITON_ACCESS_HEADER, TritonSecurityConfig

IN = [Tensor(name="x", shape=(-1,), dtype=np.float32)]
OUT = [Tensor(name="y", shape=(-1,), dtype=np.float32)]


def identity(requests):
    return [{"y": r["x"]} for r in requests]


def test_default_is_open_so_perf_analyzer_can_read_stats(triton_server):
    triton = triton_server()
    triton.bind("m", identity, IN, OUT)
    client = httpclient.InferenceServerClient(triton.http_url[7:])
    assert client.get_inference_statistics("m")["model_stats"][0]["name"] == "m"
    client.close()
    assert triton.get_access_token() is None


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
