"""Triton's logging extension against a live server: tritonclient HTTP and gRPC (sync and asyncio), httpx."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpcclient
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient
from google.protobuf import json_format
from tritonclient.utils import InferenceServerException

from pytriton_lite.config import TritonConfig
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.pb_utils import Logger

WAIT_S = 10.0
INITIAL = {
    "log_file": "",
    "log_info": True,
    "log_warning": True,
    "log_error": True,
    "log_verbose_level": 0,
    "log_format": "default",
}


def _grpc_expected(settings):
    message = grpcclient.service_pb2.LogSettingsResponse()
    kinds = {bool: "boolParam", int: "uint32Param", str: "stringParam"}
    values = {k: {kinds[type(v)]: v} for k, v in settings.items()}
    json_format.Parse(json.dumps({"settings": values}), message)
    return message


def test_defaults_on_both_protocols(triton_server, clients):
    http, grpc_client = clients(triton_server())
    assert http.get_log_settings() == INITIAL
    assert grpc_client.get_log_settings() == _grpc_expected(INITIAL)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_updates_as_tritons_qa(triton_server, protocol, clients):
    http, grpc_client = clients(triton_server())
    client = http if protocol == "http" else grpc_client
    with pytest.raises(InferenceServerException, match="log file location can not be updated through network"):
        client.update_log_settings(settings=dict(INITIAL, log_file="log_file.log"))
    steps = [
        {"log_info": False},
        {"log_warning": False},
        {"log_error": False},
        {"log_verbose_level": 1},
        {"log_format": "ISO8601"},
    ]
    expected = dict(INITIAL)
    for step in steps:
        expected.update(step)
        settings = {k: v for k, v in expected.items() if k != "log_file"}
        answer = client.update_log_settings(settings=settings)
        assert answer == (expected if protocol == "http" else _grpc_expected(expected))
    assert http.get_log_settings() == expected


def test_the_settings_change_the_servers_logging_live(triton_server, caplog, clients):
    triton = triton_server()
    http, grpc_client = clients(triton)
    caplog.set_level(logging.DEBUG)  # the root takes everything: what reaches it is pytriton_lite's choice
    package = logging.getLogger("pytriton_lite")

    def logged():
        caplog.clear()
        Logger.log_verbose("v")
        Logger.log_info("i")
        Logger.log_warn("w")
        Logger.log_error("e")
        return [r.getMessage() for r in caplog.records if r.name == "pytriton_lite.pb_utils"]

    level_before = package.level
    http.update_log_settings(settings={"log_info": False})
    assert logged() == ["w", "e"]
    grpc_client.update_log_settings(settings={"log_warning": False, "log_info": True})
    assert logged() == ["i", "e"]  # a level switched off between enabled ones is filtered
    http.update_log_settings(settings={"log_verbose_level": 2, "log_warning": True})
    assert logged() == ["v", "i", "w", "e"]
    grpc_client.update_log_settings(settings={"log_verbose_level": 0, "log_error": False, "log_warning": False})
    assert logged() == ["i"]
    triton.stop()
    assert package.level == level_before and not package.filters  # handed back as it was


def test_bad_values_are_refused_and_nothing_changes(triton_server, clients):
    triton = triton_server()
    http, _ = clients(triton)
    with httpx.Client(base_url=triton.http_url, timeout=WAIT_S) as raw:
        for body, status, message in (
            ({"log_format": "json"}, 400, "invalid argument for --log_format, got: json"),
            ({"log_info": "yes"}, 400, "'log_info' must be a boolean"),
            ({"log_verbose_level": -1}, 400, "'log_verbose_level' must be an unsigned integer"),
            ({"log_verbose_level": 1, "log_error": 0}, 400, "'log_error' must be a boolean"),
            ({"log_file": "x.log"}, 501, "log file location can not be updated through network protocol"),
        ):
            response = raw.post("/v2/logging", json=body)
            assert (response.status_code, response.json()["error"][: len(message)]) == (status, message)
        assert raw.post("/v2/logging", content=b"{oops").status_code == 400
        assert raw.delete("/v2/logging").status_code == 405
        assert raw.post("/v2/logging", json={"log_file": None, "whatever": 1}).json() == INITIAL
    assert http.get_log_settings() == INITIAL
    assert http.is_server_live()


def test_grpc_values_of_the_wrong_kind_are_invalid_argument(triton_server):
    triton = triton_server()
    request = grpcclient.service_pb2.LogSettingsRequest()
    request.settings["log_info"].string_param = "false"
    with grpc.insecure_channel(triton.grpc_url[len("grpc://") :]) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/LogSettings",
            request_serializer=grpcclient.service_pb2.LogSettingsRequest.SerializeToString,
            response_deserializer=grpcclient.service_pb2.LogSettingsResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=WAIT_S)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'log_info' must be a boolean" in info.value.details()


def test_log_file_is_shown_and_iso8601_switches_its_layout(triton_server, tmp_path, clients):
    log_file = tmp_path / "server.log"
    triton = triton_server(TritonConfig(log_file=log_file))
    http, grpc_client = clients(triton)
    assert http.get_log_settings()["log_file"] == str(log_file)
    assert grpc_client.update_log_settings(settings={"log_format": "ISO8601"}, as_json=True)["settings"][
        "log_format"
    ] == {"string_param": "ISO8601"}
    Logger.log_warn("in iso format")
    http.update_log_settings(settings={"log_format": "default"})
    Logger.log_warn("back to the default")
    lines = log_file.read_text().splitlines()
    iso = [line for line in lines if line.endswith("in iso format")]
    assert iso and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ W \d+ test_logging_ext\.py:\d+\] in iso format$", iso[0])
    default = [line for line in lines if line.endswith("back to the default")]
    assert default and not re.match(r"^\d{4}-\d\d-\d\dT", default[0])


def test_python_backend_models_log_through_the_same_settings(triton_server, caplog, clients):
    """A bound callable using pb_utils.Logger (as a model.py does) follows log_info live."""
    triton = triton_server()

    def infer(requests):
        Logger.log_info("model says hello")
        return [{"OUT": r["IN"]} for r in requests]

    triton.bind(
        "talker",
        infer,
        inputs=[Tensor(name="IN", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="OUT", shape=(1,), dtype=np.int32)],
        config=ModelConfig(batching=False),
    )
    http, _ = clients(triton)
    caplog.set_level(logging.DEBUG)
    tensor = httpclient.InferInput("IN", [1], "INT32")
    tensor.set_data_from_numpy(np.array([1], dtype=np.int32))
    http.infer("talker", [tensor])
    assert any(r.getMessage() == "model says hello" for r in caplog.records)
    caplog.clear()
    http.update_log_settings(settings={"log_info": False})
    http.infer("talker", [tensor])
    assert not any(r.getMessage() == "model says hello" for r in caplog.records)


def test_asyncio_clients_and_the_access_policy(triton_server):
    triton = triton_server(TritonConfig(http_restricted_api="logging:lk=1", grpc_restricted_protocol="logging:lk=1"))

    async def main():
        http = aiohttpclient.InferenceServerClient(triton.http_url[len("http://") :])
        grpc_client = aiogrpcclient.InferenceServerClient(triton.grpc_url[len("grpc://") :])
        try:
            refusals = []
            for call in (http.get_log_settings(), grpc_client.get_log_settings()):
                try:
                    await call
                except InferenceServerException as exc:
                    refusals.append(exc.message())
            updated = await http.update_log_settings(settings={"log_verbose_level": 3}, headers={"lk": "1"})
            got = await grpc_client.get_log_settings(headers={"triton-grpc-protocol-lk": "1"}, as_json=True)
            return refusals, updated, got
        finally:
            await http.close()
            await grpc_client.close()

    refusals, updated, got = asyncio.run(main())
    assert refusals == [
        "This API is restricted, expecting header 'lk'",
        "This protocol is restricted, expecting header 'triton-grpc-protocol-lk'",
    ]
    assert updated["log_verbose_level"] == 3
    assert got["settings"]["log_verbose_level"] == {"uint32_param": 3}


def test_a_plain_triton_protects_logging_and_trace_with_its_access_token(triton_server, clients):
    from pytriton_lite.config import TritonSecurityConfig

    triton = triton_server(security_config=TritonSecurityConfig())  # PyTriton 0.7's default
    token = triton.get_access_token()
    http, grpc_client = clients(triton)
    for call in (http.get_log_settings, http.get_trace_settings, grpc_client.get_log_settings):
        with pytest.raises(InferenceServerException, match="restricted, expecting header"):
            call()
    assert http.get_log_settings(headers={"triton-access-token": token}) == INITIAL
    granted = grpc_client.get_trace_settings(headers={"triton-grpc-protocol-triton-access-token": token}, as_json=True)
    assert granted["settings"]["trace_level"]["value"] == ["OFF"]
