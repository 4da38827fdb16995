"""repository.config, scanner and loader without a server: parsing with positions, Triton's messages, the
completed config, the layout rules, version policies, placements, tensors, reshape and GPU detection."""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
import pytest
from google.protobuf import text_format
from spine_support import FakeBackend, use_fake_backends, write_model
from tritonclient.grpc import model_config_pb2
from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

from pytriton_lite.repository import loader, scanner
from pytriton_lite.repository.backend import LoadedModel, ModelLoadError
from pytriton_lite.repository.config import (
    check_config,
    complete_config,
    config_from_json,
    initial_config,
    read_config,
    resolve_backend,
)
from pytriton_lite.types import Request


def _config(text: str, name: str = "m") -> ModelConfigProto:
    config = text_format.Parse(text, ModelConfigProto())
    config.name = config.name or name
    return config


def _completed(text: str, backend: str = "python", gpus: int = 0) -> ModelConfigProto:
    config = _config(text)
    check_config(config, backend)
    complete_config(config, backend, gpus)
    return config


# --- parsing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, position, words",
    [
        ('name: "m"\nmax_batch_sizes: 3\n', "2:1", 'has no field named "max_batch_sizes"'),
        ('input [ { name: "a" }\noutput [ ]\n', "2:1", 'Expected ","'),
        ('input [{ name: "a" data_type: TYPE_FLOAT32 }]\n', "1:31", "has no value named TYPE_FLOAT32"),
        ("max_batch_size 8\n", "1:16", "Expected"),
    ],
)
def test_a_parse_error_names_the_file_line_and_column(tmp_path, text, position, words):
    path = tmp_path / "config.pbtxt"
    path.write_text(text)
    with pytest.raises(ModelLoadError) as caught:
        read_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{position}: ") and words in message


def test_tutorial_forms_parse(tmp_path):
    path = tmp_path / "config.pbtxt"
    path.write_text(
        '# a comment\nname: "text_generation"\nbackend: "python"\nmax_batch_size: 4\n'
        'input [{ name: "PROMPT", data_type: TYPE_STRING, dims: [ 1 ] }]\n'
        'output [{ name: "TEXT" data_type: TYPE_STRING dims: [1] }]\n'
        "instance_group [{ count: 8, kind: KIND_CPU }]\ndynamic_batching { }\n"
    )
    config = read_config(path)
    assert config.instance_group[0].count == 8 and config.input[0].data_type == model_config_pb2.TYPE_STRING


def test_the_name_must_match_the_folder_and_a_missing_file_is_an_empty_config(tmp_path):
    folder = write_model(tmp_path, "folder", 'name: "other"\n')
    source = scanner.model_source(tmp_path, "folder")
    with pytest.raises(ModelLoadError, match="unexpected directory name 'folder' for model 'other'"):
        initial_config(source)
    (folder / "config.pbtxt").unlink()
    assert initial_config(source) == ModelConfigProto(name="folder")
    override = initial_config(source, json.dumps({"max_batch_size": 2}))
    assert override.max_batch_size == 2 and override.name == "folder"
    with pytest.raises(ModelLoadError, match="failed to load 'x', failed to poll from model repository"):
        config_from_json("{bad", "x")
    with pytest.raises(ModelLoadError, match="failed to read text proto"):
        read_config(tmp_path / "nope.pbtxt")


# --- platform and backend --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, backend, platform",
    [
        ('platform: "onnxruntime_onnx"', "onnxruntime", "onnxruntime_onnx"),
        ('backend: "onnxruntime"', "onnxruntime", "onnxruntime_onnx"),
        ('platform: "pytorch_libtorch"', "pytorch", "pytorch_libtorch"),
        ('backend: "pytorch"', "pytorch", "pytorch_libtorch"),
        ('backend: "python"', "python", ""),
        ('platform: "ensemble"', "ensemble", "ensemble"),
    ],
)
def test_platform_and_backend_complete_each_other(text, backend, platform):
    config = _config(text)
    assert resolve_backend(config, None) == backend
    assert config.platform == platform and config.backend == ("" if backend == "ensemble" else backend)


@pytest.mark.parametrize(
    "text, message",
    [
        ('platform: "onnxruntime_onxx"', "unexpected platform type 'onnxruntime_onxx' for m"),
        ('backend: "pyhton"', "unable to find backend library for backend 'pyhton', try specifying runtime"),
        ('platform: "tensorrt_plan"', "platform 'tensorrt_plan' of model 'm' is not supported by pytriton_lite"),
        ('backend: "openvino"', "backend 'openvino' of model 'm' is not supported by pytriton_lite"),
        ('platform: "onnxruntime_onnx" backend: "pytorch"', "unexpected 'platform' and 'backend' pair"),
        ("", "unable to determine the backend of model 'm'"),
    ],
)
def test_unknown_platforms_and_backends_fail_with_triton_text(text, message):
    with pytest.raises(ModelLoadError, match=message.replace("(", r"\(")):
        resolve_backend(_config(text), None)


@pytest.mark.parametrize(
    "filename, backend", [("model.py", "python"), ("model.onnx", "onnxruntime"), ("model.pt", "pytorch")]
)
def test_with_neither_the_backend_comes_from_the_files(tmp_path, filename, backend):
    (tmp_path / filename).write_bytes(b"")
    assert resolve_backend(_config(""), tmp_path) == backend
    assert resolve_backend(_config('default_model_filename: "net.onnx"'), None) == "onnxruntime"


# --- checks ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_batch_size: -1", "max_batch_size of model 'm' must be >= 0"),
        ('input [{ name: "a" dims: [1] }]', "model input 'a' of model 'm' must specify 'data_type'"),
        ('input [{ name: "a" data_type: TYPE_BF16 dims: [1] }]', "data type TYPE_BF16, which pytriton_lite"),
        ('input [{ name: "a" data_type: TYPE_FP32 dims: [0] }]', "dimension must be integer >= 1, or -1"),
        ("output [{ data_type: TYPE_FP32 dims: [1] }]", "model 'm' has an output without a name"),
        (
            'input [{ name: "a" data_type: TYPE_FP32 dims: [1] }, { name: "a" data_type: TYPE_FP32 dims: [1] }]',
            "input 'a' of model 'm' is specified more than once",
        ),
        (
            'input [{ name: "a" data_type: TYPE_FP32 dims: [2, 2] reshape { shape: [3] } }]',
            "has different size for dims and reshape",
        ),
        (
            "max_batch_size: 4 dynamic_batching { preferred_batch_size: [8] }",
            "dynamic batching preferred size must be <= max batch size for m",
        ),
        ("dynamic_batching { priority_levels: 2 default_priority_level: 3 }", "default priority level must be in"),
        (
            "dynamic_batching { priority_levels: 1 priority_queue_policy { key: 2 value: {} } }",
            "priority queue policy must have priority level in range",
        ),
        (
            'sequence_batching { state [{ input_name: "S_IN" output_name: "S_OUT" }] }',
            "implicit state ('sequence_batching.state') is not supported",
        ),
        ("batch_input [{ kind: BATCH_ELEMENT_COUNT }]", "'batch_input' (ragged batching inputs) is not supported"),
    ],
)
def test_checks_fail_with_a_reason(text, message):
    with pytest.raises(ModelLoadError) as caught:
        check_config(_config(text), "python")
    assert message in str(caught.value)


def test_ensemble_scheduling_belongs_to_ensembles_only():
    with pytest.raises(ModelLoadError, match="must specify 'ensemble_scheduling'"):
        check_config(_config('platform: "ensemble"'), "ensemble")
    with pytest.raises(ModelLoadError, match="is only for platform 'ensemble'"):
        check_config(_config('ensemble_scheduling { step [{ model_name: "a" }] }'), "python")


def test_unsupported_fields_are_named_in_a_warning(caplog):
    config = _config(
        'runtime: "x.so" optimization { cuda { graphs: true } graph { level: 1 } } metric_tags { key: "a" value: "b" }'
        " instance_group [{ rate_limiter { priority: 1 } }]"
        ' input [{ name: "a" data_type: TYPE_FP32 dims: [1] allow_ragged_batch: true }]'
    )
    ignored = check_config(config, "python")
    assert ignored == [
        "runtime",
        "metric_tags",
        "optimization.cuda",
        "instance_group[0].rate_limiter",
        "input['a'].allow_ragged_batch",
    ]
    assert "optimization.graph" not in check_config(config, "onnxruntime")  # the onnxruntime backend reads it
    from pytriton_lite.repository.config import warn_ignored

    with caplog.at_level(logging.WARNING, logger="pytriton_lite.repository"):
        warn_ignored("m", ignored)
    assert "model 'm': config field 'optimization.cuda' is not supported by pytriton_lite, ignored" in caplog.text


# --- defaults --------------------------------------------------------------------------------------------


def test_defaults_are_filled_in_as_triton_does(monkeypatch):
    from pytriton_lite.repository.backends import onnx as onnx_backend
    from pytriton_lite.repository.backends import torch as torch_backend

    for module in (onnx_backend, torch_backend):  # as on a GPU machine with GPU builds of the frameworks
        monkeypatch.setattr(type(module.BACKEND), "can_use_gpus", lambda self: True)
    config = _completed("max_batch_size: 8 dynamic_batching { }")
    assert config.version_policy.latest.num_versions == 1
    assert [(g.name, g.kind, g.count) for g in config.instance_group] == [
        ("m_0", model_config_pb2.ModelInstanceGroup.KIND_CPU, 1)
    ]
    assert config.default_model_filename == "model.py"
    assert list(config.dynamic_batching.preferred_batch_size) == [8]
    assert config.optimization.input_pinned_memory.enable and config.optimization.output_pinned_memory.enable
    assert config.HasField("model_transaction_policy")
    onnx = _completed("", backend="onnxruntime")
    assert onnx.instance_group[0].count == 2 and onnx.default_model_filename == "model.onnx"
    assert (
        _completed("", backend="onnxruntime", gpus=2).instance_group[0].kind
        == model_config_pb2.ModelInstanceGroup.KIND_GPU
    )
    assert list(_completed("", backend="pytorch", gpus=2).instance_group[0].gpus) == [0, 1]
    assert (
        _completed("", backend="python", gpus=2).instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    )
    assert not _completed(
        'platform: "ensemble" ensemble_scheduling { step [{ model_name: "a" }] }', "ensemble"
    ).instance_group
    kept = _completed('version_policy { specific { versions: [1, 3] } } instance_group [{ name: "g", count: 3 }]')
    assert list(kept.version_policy.specific.versions) == [1, 3]
    assert (kept.instance_group[0].name, kept.instance_group[0].count) == ("g", 3)


@pytest.mark.parametrize(
    "text, gpus, message",
    [
        (
            "instance_group [{ kind: KIND_GPU }]",
            0,
            "instance group m_0 of model m has kind KIND_GPU but no GPUs are available",
        ),
        (
            "instance_group [{ kind: KIND_GPU gpus: [1] }]",
            1,
            "instance group m_0 of model m specifies invalid or unsupported gpu id 1",
        ),
        ("instance_group [{ kind: KIND_CPU gpus: [0] }]", 1, "has kind KIND_CPU but specifies one or more GPUs"),
        ("instance_group [{ gpus: [0] }]", 0, "has kind KIND_GPU but no GPUs are available"),
    ],
)
def test_gpu_groups_need_gpus(text, gpus, message):
    with pytest.raises(ModelLoadError, match=message):
        _completed(text, gpus=gpus)


# --- layout ----------------------------------------------------------------------------------------------


def test_only_numeric_version_folders_count_and_the_others_are_logged(tmp_path, caplog):
    folder = write_model(tmp_path, "m", versions={1: None, 3: None, 10: None, "03": None, "abc": None, 0: None})
    (folder / "warmup").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "README.md").write_text("not a model")
    with caplog.at_level(logging.WARNING, logger="pytriton_lite.repository"):
        assert scanner.version_numbers(scanner.model_source(tmp_path, "m")) == [1, 3, 10]
    assert "model 'm': ignore version directory '03' which contains leading zeros" in caplog.text
    assert "model 'm': ignore version directory 'abc' which fails to convert to integral number" in caplog.text
    assert "'warmup'" not in caplog.text
    assert scanner.model_names(tmp_path) == ["m"]
    assert scanner.model_names(tmp_path / "nope") == []


@pytest.mark.parametrize(
    "text, served",
    [
        ("", [10]),
        ("version_policy { latest { num_versions: 2 } }", [3, 10]),
        ("version_policy { all { } }", [1, 3, 10]),
        ("version_policy { specific { versions: [1, 4] } }", [1]),
    ],
)
def test_version_policies(text, served):
    config = _config(text)
    policy = config.version_policy if config.HasField("version_policy") else None
    assert scanner.served_versions(policy, [1, 3, 10]) == served


def test_the_fingerprint_changes_with_config_and_version_files(tmp_path):
    folder = write_model(tmp_path, "m")
    source = scanner.model_source(tmp_path, "m")
    first = scanner.fingerprint(source)
    assert scanner.fingerprint(source) == first and set(first[1]) == {1}
    (folder / "1" / "model.py").write_text("changed = True\n" * 3)
    assert scanner.fingerprint(source)[1][1] != first[1][1]
    (folder / "config.pbtxt").write_text('backend: "python"\n')
    assert scanner.fingerprint(source)[0] != first[0]
    assert scanner.fingerprint(scanner.model_source(tmp_path, "nope")) == ((), {})


# --- placements, tensors, reshape, GPUs -------------------------------------------------------------------


def test_placements_follow_triton_naming():
    config = _completed(
        "instance_group [{ count: 1 kind: KIND_CPU }, { count: 2, kind: KIND_GPU, gpus: [0, 1] }]", "pytorch", gpus=2
    )
    assert [(p.name, p.kind, p.device_id, p.index) for p in loader.placements(config)] == [
        ("m_0", "KIND_CPU", 0, 0),
        ("m_1_0", "KIND_GPU", 0, 1),
        ("m_1_0", "KIND_GPU", 1, 2),
        ("m_1_1", "KIND_GPU", 0, 3),
        ("m_1_1", "KIND_GPU", 1, 4),
    ]
    ensemble = loader.placements(config, "ensemble")
    assert len(ensemble) == loader.ENSEMBLE_INSTANCES and ensemble[0].name == "m_ensemble_0"


def test_tensors_come_from_the_proto():
    config = _config(
        'input [{ name: "a" data_type: TYPE_STRING dims: [1] },'
        ' { name: "b" data_type: TYPE_FP16 dims: [-1, 2] optional: true }]'
        ' output [{ name: "c" data_type: TYPE_INT64 dims: [3] }]'
    )
    inputs, outputs = loader.tensors(config)
    assert [(t.name, t.shape, t.dtype, t.optional) for t in inputs] == [
        ("a", (1,), bytes, False),
        ("b", (-1, 2), np.float16, True),
    ]
    assert [(t.name, t.shape, t.dtype) for t in outputs] == [("c", (3,), np.int64)]


RESHAPED = (
    'max_batch_size: 4 input [{ name: "x" data_type: TYPE_FP32 dims: [1] reshape { shape: [] } }]'
    ' output [{ name: "y" data_type: TYPE_FP32 dims: [2, 2] reshape { shape: [4] } }]'
)


def _requests():
    return [Request(data={"x": np.arange(3, dtype=np.float32).reshape(3, 1)}, parameters={"p": 1})]


def test_reshape_wraps_every_kind_of_callable():
    config = _config(RESHAPED)
    seen = []

    def plain(requests):
        seen.append(requests[0]["x"].shape)
        assert requests[0].parameters == {"p": 1}
        return [{"y": np.zeros((3, 4), np.float32)}]

    def generator(requests):
        yield plain(requests)

    async def coroutine(requests):
        return plain(requests)

    async def async_generator(requests):
        yield plain(requests)

    assert loader.reshaping(plain, _config("")) is plain
    assert loader.reshaping(plain, config)(_requests())[0]["y"].shape == (3, 2, 2)
    assert next(iter(loader.reshaping(generator, config)(_requests())))[0]["y"].shape == (3, 2, 2)
    assert asyncio.run(loader.reshaping(coroutine, config)(_requests()))[0]["y"].shape == (3, 2, 2)

    async def first():
        async for item in loader.reshaping(async_generator, config)(_requests()):
            return item

    assert asyncio.run(first())[0]["y"].shape == (3, 2, 2)
    assert seen == [(3,)] * 4


def test_reshape_with_several_variable_dims_keeps_their_sizes():
    config = _config('input [{ name: "x" data_type: TYPE_FP32 dims: [-1, 2, -1] reshape { shape: [-1, -1, 2] } }]')
    wrapped = loader.reshaping(lambda requests: [{"x": requests[0]["x"]}], config)
    result = wrapped([Request(data={"x": np.zeros((3, 2, 5), np.float32)})])
    assert result[0]["x"].shape == (3, 5, 2)


def test_gpu_count_reads_device_files_and_cuda_visible_devices(monkeypatch):
    monkeypatch.setattr(loader.os, "listdir", lambda path: ["nvidia0", "nvidia1", "nvidiactl", "null"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert loader.gpu_count() == 2
    for visible, count in (("1", 1), ("0,1,2", 2), ("", 0), ("-1", 0), ("0,-1,1", 1)):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert loader.gpu_count() == count


def test_prepare_load_version_and_build_model(tmp_path, monkeypatch):
    use_fake_backends(monkeypatch)
    write_model(
        tmp_path,
        "m",
        'backend: "python" max_batch_size: 2 input [{ name: "IN" data_type: TYPE_FP32 dims: [-1] }]'
        ' output [{ name: "OUT" data_type: TYPE_FP32 dims: [-1] }]'
        ' model_warmup [{ name: "w" batch_size: 2 count: 2'
        ' inputs { key: "IN" value: { data_type: TYPE_FP32 dims: [3] zero_data: true } } },'
        ' { name: "f" inputs { key: "IN" value: { data_type: TYPE_FP32 dims: [1] input_data_file: "in.bin" } } }]',
        {1: None, 2: "def infer(requests):\n    return [{'OUT': r['IN']} for r in requests]\n"},
    )
    prepared = loader.prepare(scanner.model_source(tmp_path, "m"))
    assert prepared.versions == [2] and prepared.backend_name == "python" and isinstance(prepared.backend, FakeBackend)
    model, loaded = loader.load_version(prepared, 2, context=None)  # type: ignore[arg-type]
    assert (model.name, model.version, model.max_batch_size) == ("m", 2, 2)
    assert model.served == prepared.config and model.served is not prepared.config
    warmups = model.config.model_warmup
    assert [(w.name, w.batch_size, w.count) for w in warmups] == [("w", 2, 2), ("f", 1, 0)]
    assert warmups[1].inputs["IN"].input_data_file == str(tmp_path / "m" / "warmup" / "in.bin")
    assert warmups[0].inputs["IN"].zero_data and isinstance(loaded, LoadedModel)
    with pytest.raises(ModelLoadError, match="model file not found: '.*1/model.py'"):
        loader.load_version(prepared, 1, context=None)  # type: ignore[arg-type]
    with pytest.raises(ModelLoadError, match="no infer function"):
        loader.build_model(prepared, 2, LoadedModel([]))


def test_a_missing_backend_module_is_the_reason(monkeypatch):
    from pytriton_lite.repository import backends

    monkeypatch.setitem(backends._MODULES, "python", "spine_no_such_module")
    with pytest.raises(
        ModelLoadError, match="backend 'python' is not available: No module named 'spine_no_such_module'"
    ):
        loader.load_backend("python")
    with pytest.raises(ModelLoadError, match="unknown backend or platform 'x'"):
        loader.load_backend("x")


def test_kind_auto_stays_on_cpu_where_the_framework_cannot_use_the_gpus(monkeypatch):
    from pytriton_lite.repository.backends import onnx as onnx_backend

    monkeypatch.setattr(type(onnx_backend.BACKEND), "can_use_gpus", lambda self: False)  # a CPU onnxruntime
    group = _completed("", backend="onnxruntime", gpus=2).instance_group[0]
    assert group.kind == model_config_pb2.ModelInstanceGroup.KIND_CPU and group.count == 2
