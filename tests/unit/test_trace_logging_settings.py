"""The pure parts of the trace and logging extensions: settings, sampling, trace records, codecs."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from pytriton_lite.core.log_settings import Iso8601Formatter, LogSettings
from pytriton_lite.core.trace import TraceFile, TraceSettings, parse_level, parse_value
from pytriton_lite.exceptions import InvalidArgumentError, PyTritonValidationError, UnsupportedError
from pytriton_lite.protocol import logging_json, trace_json

# --- trace settings ------------------------------------------------------------------------------------


def test_trace_config_specs_become_the_start_values(tmp_path):
    settings = TraceSettings.from_config(
        ["level=TIMESTAMPS", "level=TENSORS", "rate=5", "count=7", f"triton,file={tmp_path}/t.json"]
        + ["triton,log-frequency=3", "mode=triton"]
    )
    assert settings.view() == {
        "trace_level": ["TIMESTAMPS", "TENSORS"],
        "trace_rate": "5",
        "trace_count": "7",
        "log_frequency": "3",
        "trace_file": f"{tmp_path}/t.json",
        "trace_mode": "triton",
    }
    assert settings.active
    assert not TraceSettings.from_config(None).active
    assert TraceSettings.from_config([f"triton,file={tmp_path}/a,b.json"]).trace_file == f"{tmp_path}/a,b.json"
    assert TraceSettings.from_config(None).view()["trace_level"] == ["OFF"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("rate", "expected [<mode>,]<setting>=<value>"),
        ("rate=x", "Unable to parse 'trace_rate', got: x"),
        ("level=LOUD", "Unable to parse 'trace_level', got: LOUD"),
        ("colour=red", "unknown setting 'colour'"),
        ("mode=jaeger", "invalid trace mode 'jaeger'"),
        ("nope,file=x", "expected [<mode>,]<setting>=<value>"),
    ],
)
def test_bad_trace_config_specs_are_refused(spec, message):
    with pytest.raises(PyTritonValidationError, match=message.replace("[", r"\[").replace("(", r"\(")):
        TraceSettings.from_config([spec])


def test_opentelemetry_mode_is_refused_without_the_sdk():
    try:
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        with pytest.raises(PyTritonValidationError, match="needs the opentelemetry-sdk package"):
            TraceSettings.from_config(["mode=opentelemetry"])
    else:
        assert TraceSettings.from_config(["mode=opentelemetry"]).view()["trace_mode"] == "opentelemetry"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("trace_rate", "abc", "Unable to parse 'trace_rate', got: abc"),
        ("trace_rate", "-1", "Unable to parse 'trace_rate', value is out of range [ 0, 4294967295 ], got: -1"),
        ("trace_rate", True, "Unable to parse 'trace_rate', got: True"),
        ("trace_count", "-2", "Unable to parse 'trace_count'. Expecting value >= -1, got:-2"),
        ("trace_count", "2147483648", "out of range [ -1, 2147483647 ]"),
        ("log_frequency", "1.5", "Unable to parse 'log_frequency', got: 1.5"),
        ("trace_level", ["OFF", "TIMESTAMPS"], "Expect only one trace level 'OFF' is specified"),
        ("trace_level", [1], "expected an array of strings"),
    ],
)
def test_trace_values_are_checked_with_tritons_texts(key, value, message):
    with pytest.raises(InvalidArgumentError) as info:
        parse_value(key, value)
    assert message in str(info.value)


def test_levels_come_out_in_tritons_order():
    assert parse_level(["TENSORS", "TIMESTAMPS"]) == ("TIMESTAMPS", "TENSORS")
    assert parse_level(["OFF"]) == ()
    assert parse_level("TIMESTAMPS") == ("TIMESTAMPS",)
    assert parse_value("trace_rate", 12) == 12 and parse_value("trace_count", " -1 ") == -1


def test_model_settings_override_follow_and_clear_as_in_triton():
    """Triton's qa trace endpoint test: a model keeps the fields it set, follows the global ones otherwise."""
    settings = TraceSettings(level=("TIMESTAMPS",), rate=1, trace_file="global_unittest.log")
    settings.update("simple", {"trace_rate": "12", "log_frequency": "34"})
    settings.update("", {"trace_rate": "56", "trace_count": "78", "trace_level": ["OFF"]})
    settings.update("", {"trace_rate": None, "trace_count": None})  # back to the start values
    assert settings.view() == {
        "trace_level": ["OFF"],
        "trace_rate": "1",
        "trace_count": "-1",
        "log_frequency": "0",
        "trace_file": "global_unittest.log",
        "trace_mode": "triton",
    }
    model = settings.view("simple")
    assert (model["trace_level"], model["trace_rate"], model["log_frequency"]) == (["OFF"], "12", "34")
    settings.update("simple", {"trace_rate": None, "trace_level": None})
    model = settings.view("simple")
    assert (model["trace_rate"], model["log_frequency"]) == ("1", "34")
    settings.update("simple", {})  # a model named with no settings: its own ones are removed
    assert settings.view("simple") == settings.view()
    assert not settings.active


def test_a_bad_value_changes_nothing():
    settings = TraceSettings(rate=10)
    with pytest.raises(InvalidArgumentError):
        settings.update("", {"trace_rate": "2", "trace_count": "nope"})
    assert settings.view()["trace_rate"] == "10"
    with pytest.raises(UnsupportedError, match="trace file location can not be updated through network protocol"):
        settings.update("m", {"trace_file": "other.json"})
    assert "m" not in settings.models


def test_every_rate_th_request_is_sampled_until_the_count_is_used_up():
    settings = TraceSettings(level=("TIMESTAMPS",), rate=3, count=2)
    sampled = [settings.start("m", "1") is not None for _ in range(12)]
    assert sampled == [False, False, True, False, False, True] + [False] * 6
    assert settings.view()["trace_count"] == "0"  # the remaining count, as Triton shows it
    settings.update("m", {"trace_rate": "1", "trace_count": "1"})  # the model's own rate and count
    assert settings.start("m", "1") is not None and settings.start("m", "1") is None
    assert settings.view("m")["trace_count"] == "0"


def test_records_have_tritons_shape():
    settings = TraceSettings(level=("TIMESTAMPS", "TENSORS"), rate=1)
    trace = settings.start("m", "2", "req-1")
    assert trace is not None
    trace.stamp("QUEUE_START", trace.timestamps[0][1] + 5)
    trace.stamp("REQUEST_END", trace.timestamps[0][1] + 9)
    inputs = {"IN": np.array([[1.5, 2.0]], dtype=np.float32), "TEXT": np.array([b"a", b"b"], dtype=object)}
    records = settings.records(trace, inputs, {"OUT": np.array([3], dtype=np.int64)})
    assert records[0] == {"id": 1, "model_name": "m", "model_version": 2, "request_id": "req-1", "parent_id": 0}
    assert [t["name"] for t in records[1]["timestamps"]] == ["REQUEST_START", "QUEUE_START", "REQUEST_END"]
    assert records[2] == {
        "id": 1,
        "activity": "TENSOR_QUEUE_INPUT",
        "tensor": {"name": "IN", "data": "1.5,2.0", "shape": "1,2", "dtype": "FP32"},
    }
    assert records[3]["tensor"] == {"name": "TEXT", "data": "a,b", "shape": "2", "dtype": "BYTES"}
    assert records[4]["activity"] == "TENSOR_BACKEND_OUTPUT" and records[4]["tensor"]["dtype"] == "INT64"


def test_trace_file_numbering_and_the_file_at_stop(tmp_path):
    path = str(tmp_path / "trace.json")
    numbered = TraceFile(path)
    for n in range(5):
        numbered.add([{"id": n}], log_frequency=2)
    numbered.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.json.0", "trace.json.1", "trace.json.2"]
    assert json.loads((tmp_path / "trace.json.2").read_text()) == [{"id": 4}]
    at_stop = TraceFile(str(tmp_path / "all.json"))
    at_stop.add([{"id": 1}], log_frequency=0)
    at_stop.add([{"id": 2}], log_frequency=0)
    assert not (tmp_path / "all.json").exists()
    at_stop.close()
    assert json.loads((tmp_path / "all.json").read_text()) == [{"id": 1}, {"id": 2}]


# --- log settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"log_file": "x.log"}, UnsupportedError, "log file location can not be updated through network protocol"),
        ({"log_format": "json"}, InvalidArgumentError, "invalid argument for --log_format, got: json"),
        ({"log_info": "yes"}, InvalidArgumentError, "'log_info' must be a boolean"),
        ({"log_error": 1}, InvalidArgumentError, "'log_error' must be a boolean"),
        ({"log_verbose_level": -1}, InvalidArgumentError, "'log_verbose_level' must be an unsigned integer"),
        ({"log_verbose_level": True}, InvalidArgumentError, "'log_verbose_level' must be an unsigned integer"),
    ],
)
def test_log_values_are_checked(changes, error, message):
    settings = LogSettings()
    with pytest.raises(error, match=message):
        settings.update(changes)
    assert settings.view()["log_info"] is True


def test_switches_and_verbose_levels_decide_what_is_logged():
    settings = LogSettings()
    package = logging.getLogger("pytriton_lite.unit_probe")  # loggers existing at the update get the filter
    level_before = logging.getLogger("pytriton_lite").level
    try:
        settings.update({"log_warning": False, "log_file": None, "unknown": 1})
        assert package.isEnabledFor(logging.INFO)
        record = package.makeRecord(package.name, logging.WARNING, __file__, 1, "w", (), None)
        assert not package.filter(record)  # warnings off between INFO and ERROR: the filter drops them
        assert settings.enabled(logging.ERROR) and not settings.enabled(logging.DEBUG)
        settings.update({"log_verbose_level": 1, "log_warning": True})
        assert package.isEnabledFor(logging.DEBUG) and package.filter(record)
        settings.update({"log_info": False, "log_warning": False, "log_error": False, "log_verbose_level": 0})
        assert logging.getLogger("pytriton_lite").level == logging.CRITICAL
    finally:
        settings.release()
    assert logging.getLogger("pytriton_lite").level == level_before and not package.filters


def test_iso8601_layout():
    record = logging.LogRecord("pytriton_lite.x", logging.WARNING, "/a/model.py", 42, "hello %s", ("you",), None)
    text = Iso8601Formatter().format(record)
    assert text.endswith(" W " + text.split(" ")[2] + " model.py:42] hello you")
    assert text[4] == "-" and text[10] == "T" and text[19] == "Z"


# --- codecs --------------------------------------------------------------------------------------------


def test_trace_codecs():
    assert trace_json.decode_http(b"") == {}
    assert trace_json.decode_http(b'{"trace_rate": "3", "trace_level": null}') == {
        "trace_rate": "3",
        "trace_level": None,
    }
    for body in (b"[1]", b"{nope"):
        with pytest.raises(InvalidArgumentError, match="failed to parse the request JSON buffer for trace settings"):
            trace_json.decode_http(body)
    request = service_pb2.TraceSettingRequest(model_name="m")
    assert trace_json.decode_grpc(request) == ("m", None)
    request.settings["trace_rate"].value.append("4")
    request.settings["trace_level"].value.extend(["TIMESTAMPS", "TENSORS"])
    request.settings["trace_count"]  # a key without a value clears the setting
    assert trace_json.decode_grpc(request)[1] == {
        "trace_rate": "4",
        "trace_level": ["TIMESTAMPS", "TENSORS"],
        "trace_count": None,
    }
    response = trace_json.encode_grpc({"trace_level": ["OFF"], "trace_rate": "1"})
    assert list(response.settings["trace_level"].value) == ["OFF"]
    assert list(response.settings["trace_rate"].value) == ["1"]


def test_logging_codecs():
    request = service_pb2.LogSettingsRequest()
    request.settings["log_info"].bool_param = False
    request.settings["log_verbose_level"].uint32_param = 2
    request.settings["log_format"].string_param = "ISO8601"
    request.settings["log_file"]  # a key with no value
    assert logging_json.decode_grpc(request) == {
        "log_info": False,
        "log_verbose_level": 2,
        "log_format": "ISO8601",
        "log_file": None,
    }
    response = logging_json.encode_grpc(LogSettings().view())
    assert response.settings["log_info"].bool_param is True
    assert response.settings["log_verbose_level"].WhichOneof("parameter_choice") == "uint32_param"
    assert response.settings["log_file"].string_param == ""
    with pytest.raises(InvalidArgumentError, match="for log settings"):
        logging_json.decode_http(b'"text"')


def test_the_cli_takes_tritonservers_trace_config_flag():
    from pytriton_lite.__main__ import parser

    args = parser().parse_args(
        ["serve", "--model-repository=models", "--trace-config", "level=TIMESTAMPS", "--trace-config=rate=5"]
    )
    assert args.trace_config == ["level=TIMESTAMPS", "rate=5"]
    assert TraceSettings.from_config(args.trace_config).view()["trace_rate"] == "5"
    assert parser().parse_args(["serve", "--model-repository=models"]).trace_config is None
