"""PyTriton's module paths under ``pytriton_lite.model_config`` and ``pytriton_lite.constants`` (issue 11, section 1),
warm-up data generation, and ``TritonModelConfig.from_dict`` keeping every field a server serves."""

from __future__ import annotations

import dataclasses
import importlib
import pathlib

import numpy as np
import pytest

import pytriton_lite.model_config as package
from pytriton_lite.exceptions import PyTritonBadParameterError, PyTritonModelConfigError

PATHS = {
    "pytriton_lite.model_config.common": [
        "DeviceKind",
        "DynamicBatcher",
        "QueuePolicy",
        "TimeoutAction",
        "ModelWarmup",
        "WarmupInput",
        "generate_warmup_data",
        "generate_warmup_requests",
    ],
    "pytriton_lite.model_config.triton_model_config": ["TritonModelConfig", "ResponseCache", "TensorSpec"],
    "pytriton_lite.model_config.tensor": ["Tensor"],
    "pytriton_lite.model_config.model_config": ["ModelConfig"],
}


@pytest.mark.parametrize("module_name, names", list(PATHS.items()))
def test_pytriton_module_paths_hold_the_package_objects(module_name, names):
    module = importlib.import_module(module_name)
    for name in names:
        assert getattr(module, name) is getattr(package, name), f"{module_name}.{name}"


def test_triton_model_config_module_also_has_the_common_names_pytriton_imports_there():
    from pytriton_lite.model_config import triton_model_config

    assert triton_model_config.DeviceKind is package.DeviceKind
    assert triton_model_config.DynamicBatcher is package.DynamicBatcher


def test_the_old_flat_imports_still_work():
    from pytriton_lite import _dtypes
    from pytriton_lite.model_config import (  # noqa: F401 - the import is the test
        TRITON_DTYPES,
        from_triton_dtype,
        is_bytes_dtype,
        normalize_dtype,
        replace,
        to_triton_dtype,
        validate_model_config,
    )

    assert to_triton_dtype is _dtypes.to_triton_dtype and TRITON_DTYPES is _dtypes.TRITON_DTYPES
    assert replace(package.QueuePolicy(), max_queue_size=3).max_queue_size == 3
    with pytest.raises(PyTritonBadParameterError):
        validate_model_config(package.ModelConfig(max_batch_size=0))
    for name in package.__all__:
        assert hasattr(package, name), name


def test_constants_module():
    from pytriton_lite import _triton_context, config, constants

    assert (constants.DEFAULT_HTTP_PORT, constants.DEFAULT_GRPC_PORT, constants.DEFAULT_METRICS_PORT) == (
        8000,
        8001,
        8002,
    )
    assert constants.DEFAULT_HTTP_PORT is config.DEFAULT_HTTP_PORT
    assert constants.TRITON_CONTEXT_FIELD_NAME is _triton_context.TRITON_CONTEXT_FIELD_NAME == "triton_context"
    assert constants.TRITON_LOCAL_IP == "127.0.0.1"
    assert constants.DEFAULT_TRITON_STARTUP_TIMEOUT_S == 120
    assert constants.CREATE_TRITON_CLIENT_TIMEOUT_S == 10
    assert constants.TRITON_PYTHON_BACKEND_INTERPRETER_DIRNAME == "python_backend_interpreter"
    assert isinstance(constants.PYTRITON_HOME, pathlib.Path) and constants.PYTRITON_HOME.is_absolute()


def test_pytriton_home_follows_the_environment(monkeypatch, tmp_path):
    from pytriton_lite.constants import _pytriton_home

    monkeypatch.delenv("PYTRITON_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _pytriton_home() == (tmp_path / "cache" / "pytriton").resolve()
    monkeypatch.setenv("PYTRITON_HOME", str(tmp_path / "home"))
    assert _pytriton_home() == (tmp_path / "home").resolve()
    monkeypatch.delenv("PYTRITON_HOME")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _pytriton_home() == (pathlib.Path.home() / ".cache" / "pytriton").resolve()


# --- warm-up data (model_config.common) ----------------------------------------------------------------------


def test_generate_warmup_data_sources(tmp_path):
    from pytriton_lite.model_config.common import WarmupInput, generate_warmup_data

    zeros = generate_warmup_data(WarmupInput(dtype=np.float32, shape=(3,), zero_data=True), batch_size=2)
    assert zeros.shape == (2, 3) and zeros.dtype == np.float32 and not zeros.any()
    for dtype in (np.int8, np.uint16, np.int64, np.float16, np.bool_):
        random = generate_warmup_data(WarmupInput(dtype=dtype, shape=(4, 2), random_data=True), batch_size=3)
        assert random.shape == (3, 4, 2) and random.dtype == np.dtype(dtype)
    words = generate_warmup_data(WarmupInput(dtype=bytes, shape=(2,), random_data=True), batch_size=1)
    assert words.dtype == object and all(isinstance(w, bytes) and 8 <= len(w) <= 32 for w in words.ravel())
    empty = generate_warmup_data(WarmupInput(dtype=np.bytes_, shape=(1,), zero_data=True), batch_size=2)
    assert empty.tolist() == [[b""], [b""]]

    sample = tmp_path / "sample.npy"
    np.save(sample, np.arange(3, dtype=np.float64))
    from_sample = generate_warmup_data(WarmupInput(dtype=np.float32, shape=(3,), input_data_file=str(sample)), 2)
    assert from_sample.dtype == np.float32 and from_sample.tolist() == [[0, 1, 2], [0, 1, 2]]
    rows = tmp_path / "rows.npy"
    np.save(rows, np.array([[1], [2]], dtype=np.int32))
    assert generate_warmup_data(WarmupInput(np.int32, (1,), input_data_file=str(rows)), 3).tolist() == [[1], [2], [1]]
    assert generate_warmup_data(WarmupInput(np.int32, (1,), input_data_file=str(rows)), 1).tolist() == [[1]]
    with pytest.raises(PyTritonBadParameterError, match="shape"):
        generate_warmup_data(WarmupInput(np.int32, (5,), input_data_file=str(rows)), 1)
    with pytest.raises(PyTritonBadParameterError, match="must be provided"):
        generate_warmup_data(WarmupInput(dtype=np.float32, shape=(1,)), 1)


def test_generate_warmup_requests_count_per_entry():
    from pytriton_lite.model_config.common import ModelWarmup, WarmupInput, generate_warmup_requests

    warmups = [
        ModelWarmup("a", batch_size=2, inputs={"x": WarmupInput(np.float32, (1,), zero_data=True)}, count=2),
        ModelWarmup("b", batch_size=1, inputs={"y": WarmupInput(np.int64, (2,), random_data=True)}, count=1),
    ]
    requests = generate_warmup_requests(warmups, [], [])
    assert [sorted(r) for r in requests] == [["x"], ["x"], ["y"]]
    assert requests[0]["x"].shape == (2, 1) and requests[2]["y"].shape == (1, 2)
    assert generate_warmup_requests(None, [], []) == [] and generate_warmup_requests([], [], []) == []


# --- TritonModelConfig.from_dict -----------------------------------------------------------------------------

SERVED = {  # what /v2/models/m/config serves (core/served_config.py), with numbers as proto-JSON strings
    "name": "m",
    "platform": "",
    "backend": "python",
    "version_policy": {"all": {}},
    "max_batch_size": 8,
    "input": [
        {"name": "x", "data_type": "TYPE_FP32", "dims": ["-1"], "format": "FORMAT_NONE"},
        {"name": "t", "data_type": "TYPE_STRING", "dims": ["1"], "optional": True},
    ],
    "output": [{"name": "y", "data_type": "TYPE_BOOL", "dims": ["2", "3"]}],
    "instance_group": [
        {"name": "m_0", "count": 2, "kind": "KIND_CPU"},
        {"name": "m_1", "count": 1, "kind": "KIND_CPU"},
        {"name": "m_2", "count": 1},
    ],
    "dynamic_batching": {
        "preferred_batch_size": [4, 8],
        "max_queue_delay_microseconds": "100",
        "preserve_ordering": True,
        "priority_levels": 2,
        "default_priority_level": 1,
        "default_queue_policy": {"timeout_action": "DELAY", "default_timeout_microseconds": "5", "max_queue_size": 3},
        "priority_queue_policy": {"2": {"allow_timeout_override": True}},
    },
    "model_warmup": [
        {
            "name": "w",
            "batch_size": 2,
            "count": 3,
            "inputs": {
                "x": {"data_type": "TYPE_FP32", "dims": ["4"], "zero_data": True},
                "t": {"data_type": "TYPE_STRING", "dims": ["1"], "input_data_file": "text.npy"},
            },
        }
    ],
    "model_transaction_policy": {"decoupled": True},
    "response_cache": {"enable": True},
    "parameters": {"workspace-path": {"string_value": "/tmp/w"}},
    "sequence_batching": {"max_sequence_idle_microseconds": "100"},
}


def test_from_dict_keeps_every_served_field():
    from pytriton_lite.model_config.common import (
        DeviceKind,
        DynamicBatcher,
        ModelWarmup,
        QueuePolicy,
        TimeoutAction,
        WarmupInput,
    )
    from pytriton_lite.model_config.triton_model_config import ResponseCache, TensorSpec, TritonModelConfig

    config = TritonModelConfig.from_dict(SERVED, model_version=3)
    assert config.model_name == "m" and config.model_version == 3
    assert config.max_batch_size == 8 and config.batching and config.decoupled
    assert config.inputs == [
        TensorSpec("x", (-1,), np.float32, False),
        TensorSpec("t", (1,), np.bytes_, True),
    ]
    assert config.outputs == [TensorSpec("y", (2, 3), np.bool_, False)]
    assert config.instance_group == {DeviceKind.KIND_CPU: 3, DeviceKind.KIND_AUTO: 1}
    assert config.batcher == DynamicBatcher(
        max_queue_delay_microseconds=100,
        preferred_batch_size=[4, 8],
        preserve_ordering=True,
        priority_levels=2,
        default_priority_level=1,
        default_queue_policy=QueuePolicy(TimeoutAction.DELAY, 5, False, 3),
        priority_queue_policy={2: QueuePolicy(allow_timeout_override=True)},
    )
    assert config.model_warmup == [
        ModelWarmup(
            name="w",
            batch_size=2,
            count=3,
            inputs={
                "x": WarmupInput(dtype=np.float32, shape=(4,), zero_data=True),
                "t": WarmupInput(dtype=np.bytes_, shape=(1,), input_data_file="text.npy"),
            },
        )
    ]
    assert config.response_cache == ResponseCache(enable=True)
    assert config.backend_parameters == {"workspace-path": "/tmp/w"}
    # what PyTriton has no field for is kept as served
    assert config.served_config == SERVED and config.served_config is not SERVED
    assert config.served_config["sequence_batching"] == {"max_sequence_idle_microseconds": "100"}
    assert config.backend == "python" and config.platform == ""
    # served_config is not part of equality or repr
    assert dataclasses.replace(config, served_config={}) == config
    assert "served_config" not in repr(config)


def test_from_dict_defaults_and_variants():
    from pytriton_lite.model_config import TritonModelConfig

    onnx = TritonModelConfig.from_dict({"name": "o", "platform": "onnxruntime_onnx", "backend": "onnxruntime"})
    assert onnx.backend == "onnxruntime" and onnx.platform == "onnxruntime_onnx"
    assert not onnx.batching and onnx.batcher is None and onnx.model_warmup is None and onnx.response_cache is None
    assert TritonModelConfig(model_name="bound").backend == "python"
    assert TritonModelConfig.from_dict({"name": "p", "parameters": ["a", "b"]}).backend_parameters == {"a": "", "b": ""}


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"name": "m", "input": [{"name": "x", "dims": [1]}]},
        {"name": "m", "instance_group": [{"kind": "KIND_TPU"}]},
        {"name": "m", "model_warmup": [{"name": "w", "inputs": {"x": {"data_type": "TYPE_FP32"}}}]},
        {"name": "m", "model_warmup": [{"name": "w", "inputs": {"x": {"data_type": "TYPE_NOPE", "dims": [1]}}}]},
        {"name": "m", "max_batch_size": "many"},
    ],
)
def test_from_dict_errors_are_model_config_errors(broken):
    from pytriton_lite.model_config import TritonModelConfig

    with pytest.raises(PyTritonModelConfigError):
        TritonModelConfig.from_dict(broken)
