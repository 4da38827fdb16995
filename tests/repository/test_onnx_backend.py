"""The onnxruntime backend called directly: auto-complete from the graph, validation against it at load,
SessionOptions from the parameters, sessions per instance, batching along dim 0, data types, errors."""

from __future__ import annotations

import pathlib
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from pytriton_lite.exceptions import InvalidArgumentError, ModelExecutionError
from pytriton_lite.repository.backend import (
    BackendUnavailableError,
    InstancePlacement,
    ModelLoadError,
    ModelSource,
    VersionSource,
)
from pytriton_lite.repository.backends import backend_for
from pytriton_lite.types import Request

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from pytriton_lite.repository.backends import onnx as onnx_backend  # noqa: E402
from pytriton_lite.repository.backends.onnx import BACKEND, OnnxBackend, cuda_options, session_options  # noqa: E402

RNG = np.random.default_rng(0)
W1 = RNG.standard_normal((4, 8)).astype(np.float32)
B1 = RNG.standard_normal(8).astype(np.float32)
W2 = RNG.standard_normal((8, 3)).astype(np.float32)
B2 = RNG.standard_normal(3).astype(np.float32)


def mlp_reference(x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ W1 + B1, 0) @ W2 + B2


def mlp(batch: Any = "batch") -> Any:
    """An MNIST-like MLP: MatMul + Add + Relu + MatMul + Add, x [batch, 4] -> y [batch, 3]."""
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "B1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W2"], ["h3"]),
        helper.make_node("Add", ["h3", "B2"], ["y"]),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((W1, "W1"), (B1, "B1"), (W2, "W2"), (B2, "B2"))]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])],
        inits,
    )
    return _model(graph)


def _model(graph: Any) -> Any:
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def unary(op: str, elem: int, shape: Sequence[Any], name_in: str = "x", name_out: str = "y") -> Any:
    graph = helper.make_graph(
        [helper.make_node(op, [name_in], [name_out])],
        op.lower(),
        [helper.make_tensor_value_info(name_in, elem, list(shape))],
        [helper.make_tensor_value_info(name_out, elem, list(shape))],
    )
    return _model(graph)


def two_outputs() -> Any:
    """x -> (relu, neg), both [batch, -1]."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["relu"]), helper.make_node("Neg", ["x"], ["neg"])],
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "n"])],
        [
            helper.make_tensor_value_info("relu", TensorProto.FLOAT, ["b", "n"]),
            helper.make_tensor_value_info("neg", TensorProto.FLOAT, ["b", "n"]),
        ],
    )
    return _model(graph)


def write(tmp_path: pathlib.Path, name: str, model: Any, filename: str = "model.onnx") -> ModelSource:
    path = tmp_path / name / "1" / filename
    path.parent.mkdir(parents=True)
    onnx.save(model, str(path))
    return ModelSource(name=name, repository=tmp_path, directory=tmp_path / name)


def config(text: str = "", name: str = "m") -> model_config_pb2.ModelConfig:
    return text_format.Parse(f'name: "{name}" platform: "onnxruntime_onnx" ' + text, model_config_pb2.ModelConfig())


def cpu(index: int = 0, name: str = "") -> InstancePlacement:
    return InstancePlacement(name=name or f"m_0_{index}", kind="KIND_CPU", device_id=0, index=index)


def completed(source: ModelSource, text: str = "", backend: OnnxBackend = BACKEND) -> model_config_pb2.ModelConfig:
    cfg = config(text, source.name)
    backend.auto_complete(source, cfg, source.directory / "1")
    return cfg


def load(source: ModelSource, cfg: model_config_pb2.ModelConfig, placements: Optional[List[InstancePlacement]] = None):
    return BACKEND.load(VersionSource(source, 1, cfg), placements or [cpu()], context=None)  # type: ignore[arg-type]


def req(outputs: Optional[List[str]] = None, **inputs: np.ndarray) -> Request:
    return Request(data=dict(inputs), requested_output_names=outputs)


class CountingSession:
    """Wraps an InferenceSession and records the feeds of every run."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.runs: List[Dict[str, np.ndarray]] = []

    def run(self, names: Any, feeds: Dict[str, np.ndarray], options: Any = None) -> Any:
        self.runs.append(dict(feeds))
        return self._session.run(names, feeds, options)


def counting(infer: Any) -> CountingSession:
    instance = infer.__self__
    instance.session = CountingSession(instance.session)
    return instance.session


# --- registration, auto-complete ------------------------------------------------------------------------


def test_registered_under_both_triton_names():
    assert backend_for("onnxruntime_onnx") is BACKEND
    assert backend_for("onnxruntime") is BACKEND
    assert BACKEND.default_model_filename == "model.onnx"


def test_can_use_gpus_only_with_the_cuda_provider(monkeypatch):
    assert BACKEND.can_use_gpus() == ("CUDAExecutionProvider" in ort.get_available_providers())
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert BACKEND.can_use_gpus()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert not BACKEND.can_use_gpus()


def test_auto_complete_fills_tensors_max_batch_size_and_dynamic_batching(tmp_path):
    cfg = completed(write(tmp_path, "mnist", mlp()))
    assert cfg.max_batch_size == 4
    assert cfg.HasField("dynamic_batching")
    assert [(i.name, model_config_pb2.DataType.Name(i.data_type), list(i.dims)) for i in cfg.input] == [
        ("x", "TYPE_FP32", [4])
    ]
    assert [(o.name, model_config_pb2.DataType.Name(o.data_type), list(o.dims)) for o in cfg.output] == [
        ("y", "TYPE_FP32", [3])
    ]
    assert not cfg.input[0].HasField("reshape")


def test_auto_complete_keeps_a_given_max_batch_size_and_batcher(tmp_path):
    source = write(tmp_path, "m", mlp())
    cfg = completed(source, "max_batch_size: 16")
    assert cfg.max_batch_size == 16 and cfg.HasField("dynamic_batching")
    cfg = completed(source, "max_batch_size: 8 dynamic_batching { max_queue_delay_microseconds: 100 }")
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 100
    cfg = completed(source, "max_batch_size: 1")
    assert cfg.max_batch_size == 1 and not cfg.HasField("dynamic_batching")


def test_default_max_batch_size_is_the_backends_setting(tmp_path):
    backend = OnnxBackend()
    backend.default_max_batch_size = 32
    cfg = completed(write(tmp_path, "m", mlp()), backend=backend)
    assert cfg.max_batch_size == 32


def test_auto_complete_is_skipped_when_inputs_and_outputs_are_given(tmp_path):
    text = (
        'input [{ name: "x" data_type: TYPE_FP32 dims: [ 4 ] }] output [{ name: "y" data_type: TYPE_FP32 dims: [3] }]'
    )
    cfg = completed(write(tmp_path, "m", mlp()), text)
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")


def test_auto_complete_fills_only_what_is_missing(tmp_path):
    cfg = completed(write(tmp_path, "m", mlp()), 'input [{ name: "x" data_type: TYPE_FP32 dims: [ 4 ] }]')
    assert [i.name for i in cfg.input] == ["x"] and [o.name for o in cfg.output] == ["y"]
    assert cfg.max_batch_size == 4


def test_fixed_shape_model_does_not_batch(tmp_path):
    source = write(tmp_path, "fixed", mlp(batch=2))
    cfg = completed(source)
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert list(cfg.input[0].dims) == [2, 4] and list(cfg.output[0].dims) == [2, 3]
    with pytest.raises(ModelLoadError, match="autofill failed for model 'fixed': model does not support batching"):
        completed(source, "max_batch_size: 8")


def test_scalars_get_dims_1_and_a_reshape_when_batching(tmp_path):
    cfg = completed(write(tmp_path, "vec", unary("Relu", TensorProto.FLOAT, ["b"])))
    assert cfg.max_batch_size == 4
    assert list(cfg.input[0].dims) == [1] and cfg.input[0].HasField("reshape") and not cfg.input[0].reshape.shape
    cfg = completed(write(tmp_path, "scalar", unary("Relu", TensorProto.FLOAT, [])))
    assert cfg.max_batch_size == 0
    assert list(cfg.input[0].dims) == [1] and not cfg.input[0].HasField("reshape")


def test_auto_complete_of_a_missing_or_broken_file(tmp_path):
    (tmp_path / "none" / "1").mkdir(parents=True)
    source = ModelSource("none", tmp_path, tmp_path / "none")
    with pytest.raises(ModelLoadError, match="unable to find '.*model.onnx' for model 'none'"):
        completed(source)
    (tmp_path / "none" / "1" / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="failed to load model 'none'"):
        completed(source)


# --- load and infer -------------------------------------------------------------------------------------


def test_mlp_batches_requests_along_dim_0_in_one_run(tmp_path):
    source = write(tmp_path, "mnist", mlp())
    loaded = load(source, completed(source))
    (infer,) = loaded.infer_funcs
    session = counting(infer)
    xs = [RNG.standard_normal((n, 4)).astype(np.float32) for n in (1, 2, 3)]
    results = infer([req(x=x) for x in xs])
    assert len(session.runs) == 1 and session.runs[0]["x"].shape == (6, 4)
    for x, result in zip(xs, results):
        assert result["y"].shape == (x.shape[0], 3)
        np.testing.assert_allclose(result["y"], mlp_reference(x), rtol=1e-5, atol=1e-5)
    loaded.finalize()


def test_one_request_runs_without_copies(tmp_path):
    source = write(tmp_path, "m", mlp())
    (infer,) = load(source, completed(source)).infer_funcs
    session = counting(infer)
    x = np.ones((2, 4), np.float32)
    (result,) = infer([req(x=x)])
    assert session.runs[0]["x"] is x
    np.testing.assert_allclose(result["y"], mlp_reference(x), rtol=1e-5)


def test_requests_of_other_shapes_run_apart(tmp_path):
    source = write(tmp_path, "two", two_outputs())
    (infer,) = load(source, completed(source)).infer_funcs
    session = counting(infer)
    a, b, c = (np.full((1, n), -1.0, np.float32) for n in (2, 3, 2))
    results = infer([req(x=a), req(x=b), req(x=c)])
    assert sorted(r["x"].shape for r in session.runs) == [(1, 3), (2, 2)]
    assert [r["neg"].shape for r in results] == [(1, 2), (1, 3), (1, 2)]
    np.testing.assert_array_equal(results[1]["relu"], np.zeros((1, 3), np.float32))


def test_only_requested_outputs_are_computed(tmp_path):
    source = write(tmp_path, "two", two_outputs())
    (infer,) = load(source, completed(source)).infer_funcs
    x = np.array([[-1.0, 2.0]], np.float32)
    results = infer([req(["neg"], x=x), req(["neg"], x=x)])
    assert [set(r) for r in results] == [{"neg"}, {"neg"}]
    results = infer([req(["neg"], x=x), req(["relu"], x=x)])
    assert [set(r) for r in results] == [{"neg", "relu"}] * 2  # the union; the core filters per request
    results = infer([req(None, x=x)])
    np.testing.assert_array_equal(results[0]["relu"], [[0.0, 2.0]])


def test_non_batching_model_runs_each_request(tmp_path):
    source = write(tmp_path, "fixed", mlp(batch=2))
    (infer,) = load(source, completed(source)).infer_funcs
    session = counting(infer)
    xs = [np.full((2, 4), v, np.float32) for v in (1.0, 2.0)]
    results = infer([req(x=x) for x in xs])
    assert len(session.runs) == 2
    for x, r in zip(xs, results):
        np.testing.assert_allclose(r["y"], mlp_reference(x), rtol=1e-5)


@pytest.mark.parametrize(
    ("op", "elem", "values", "expected"),
    [
        ("Not", TensorProto.BOOL, np.array([[True, False]]), np.array([[False, True]])),
        ("Neg", TensorProto.INT32, np.array([[1, -2]], np.int32), np.array([[-1, 2]], np.int32)),
        ("Neg", TensorProto.INT64, np.array([[7]], np.int64), np.array([[-7]], np.int64)),
        ("Neg", TensorProto.FLOAT16, np.array([[1.5]], np.float16), np.array([[-1.5]], np.float16)),
        ("Neg", TensorProto.DOUBLE, np.array([[0.25]], np.float64), np.array([[-0.25]], np.float64)),
        ("Identity", TensorProto.UINT8, np.array([[255]], np.uint8), np.array([[255]], np.uint8)),
        ("Identity", TensorProto.INT8, np.array([[-3]], np.int8), np.array([[-3]], np.int8)),
    ],
)
def test_data_types(tmp_path, op, elem, values, expected):
    source = write(tmp_path, "t", unary(op, elem, ["b", "n"]))
    cfg = completed(source)
    (infer,) = load(source, cfg).infer_funcs
    (result,) = infer([req(x=values)])
    assert result["y"].dtype == expected.dtype
    np.testing.assert_array_equal(result["y"], expected)


def test_strings_travel_as_utf8_bytes(tmp_path):
    source = write(tmp_path, "s", unary("Identity", TensorProto.STRING, ["b"]))
    cfg = completed(source)
    assert model_config_pb2.DataType.Name(cfg.input[0].data_type) == "TYPE_STRING"
    (infer,) = load(source, cfg).infer_funcs
    words = [np.array([b"caf\xc3\xa9"], dtype=object), np.array([b"a", b"bc"], dtype=object)]
    results = infer([req(x=w) for w in words])
    assert [list(r["y"]) for r in results] == [[b"caf\xc3\xa9"], [b"a", b"bc"]]
    with pytest.raises(InvalidArgumentError, match="not UTF-8"):
        infer([req(x=np.array([b"\xff"], dtype=object))])


def test_scalar_model_without_batching(tmp_path):
    source = write(tmp_path, "scalar", unary("Neg", TensorProto.FLOAT, []))
    (infer,) = load(source, completed(source)).infer_funcs
    (result,) = infer([req(x=np.array([2.0], np.float32))])
    assert result["y"].shape == (1,) and result["y"][0] == -2.0


def test_model_folder_and_default_model_filename(tmp_path):
    source = write(tmp_path, "folder", mlp(), filename="model.onnx/model.onnx")
    (infer,) = load(source, completed(source)).infer_funcs
    assert infer([req(x=np.zeros((1, 4), np.float32))])[0]["y"].shape == (1, 3)
    source = write(tmp_path, "named", mlp(), filename="mlp.onnx")
    cfg = completed(source, 'default_model_filename: "mlp.onnx"')
    (infer,) = load(source, cfg).infer_funcs
    assert infer([req(x=np.zeros((1, 4), np.float32))])[0]["y"].shape == (1, 3)
    with pytest.raises(ModelLoadError, match="unable to find"):
        load(source, config("max_batch_size: 4", "named"))


def test_runtime_errors(tmp_path):
    source = write(tmp_path, "m", mlp())
    (infer,) = load(source, completed(source)).infer_funcs
    with pytest.raises(InvalidArgumentError, match="onnx runtime error.*invalid dimensions"):
        infer.__self__.run({"x": np.zeros((1, 5), np.float32)}, None)
    reshape = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, -1])],
        [numpy_helper.from_array(np.array([2, -1], np.int64), "shape")],
    )
    source = write(tmp_path, "r", _model(reshape))
    cfg = config(
        'input [{name: "x" data_type: TYPE_FP32 dims: [-1]}] output [{name: "y" data_type: TYPE_FP32 dims: [2, -1]}]',
        "r",
    )
    (infer,) = load(source, cfg).infer_funcs
    np.testing.assert_array_equal(infer([req(x=np.arange(4, dtype=np.float32))])[0]["y"], [[0, 1], [2, 3]])
    with pytest.raises((ModelExecutionError, InvalidArgumentError), match="onnx runtime error"):
        infer([req(x=np.arange(3, dtype=np.float32))])


# --- validation at load ---------------------------------------------------------------------------------

IO = (
    'input [{{ name: "{i}" data_type: {t} dims: [ {d} ] }}] '
    'output [{{ name: "{o}" data_type: TYPE_FP32 dims: [ {od} ] }}]'
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            IO.format(i="z", t="TYPE_FP32", d="4", o="y", od="3"),
            "unexpected inference input 'z', allowed inputs are: x",
        ),
        (
            IO.format(i="x", t="TYPE_FP32", d="4", o="q", od="3"),
            "unexpected inference output 'q', allowed outputs are: y",
        ),
        (
            IO.format(i="x", t="TYPE_INT32", d="4", o="y", od="3"),
            "unable to load model 'm', configuration expects datatype TYPE_INT32 for input 'x', "
            "model provides TYPE_FP32",
        ),
        (
            IO.format(i="x", t="TYPE_FP32", d="5", o="y", od="3"),
            r"model 'm', tensor 'x': the model expects 2 dimensions \(shape \[-1,4\]\) but the model configuration "
            r"specifies 2 dimensions \(an initial batch dimension because max_batch_size > 0 followed by the explicit "
            r"tensor shape, making complete shape \[-1,5\]\)",
        ),
        (
            IO.format(i="x", t="TYPE_FP32", d="4", o="y", od="-1"),
            r"tensor 'y': the model expects 2 dimensions \(shape \[-1,3\]\)",
        ),
        (
            IO.format(i="x", t="TYPE_FP32", d="4", o="y", od="3")
            + ' input [{ name: "extra" data_type: TYPE_FP32 dims: [1] }]',
            "unable to load model 'm', configuration expects 2 inputs, model provides 1",
        ),
        (
            IO.format(i="x", t="TYPE_FP32", d="4", o="y", od="3")
            + ' input [{ name: "extra" data_type: TYPE_FP32 dims: [1] optional: true }]',
            "unable to load model 'm', optional input 'extra' is not supported for models that support batching",
        ),
    ],
)
def test_config_is_checked_against_the_graph(tmp_path, text, message):
    source = write(tmp_path, "m", mlp())
    with pytest.raises(ModelLoadError, match=message):
        load(source, config("max_batch_size: 8 " + text))


def test_non_batching_dims_and_batching_a_fixed_model(tmp_path):
    source = write(tmp_path, "m", mlp(batch=2))
    text = IO.format(i="x", t="TYPE_FP32", d="2, 4", o="y", od="2, 3")
    load(source, config(text))  # exact dims: fine
    with pytest.raises(ModelLoadError, match=r"specifies 2 dimensions \(shape \[-1,4\]\)"):
        load(source, config(IO.format(i="x", t="TYPE_FP32", d="-1, 4", o="y", od="2, 3")))
    with pytest.raises(ModelLoadError, match="the first dimension must be -1; but shape expected by the model is"):
        load(source, config("max_batch_size: 2 " + IO.format(i="x", t="TYPE_FP32", d="4", o="y", od="3")))
    scalar = write(tmp_path, "s", unary("Neg", TensorProto.FLOAT, []))
    with pytest.raises(ModelLoadError, match="scalar tensor 'x', should only provide 1"):
        load(scalar, config(IO.format(i="x", t="TYPE_FP32", d="2", o="y", od="1"), "s"))


# --- session options, sessions, providers ---------------------------------------------------------------


def _params(**values: str) -> str:
    return " ".join(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in values.items())


def test_session_options_from_parameters():
    text = _params(intra_op_thread_count="3", inter_op_thread_count="2", execution_mode="1")
    text += " " + _params(enable_mem_arena="false", enable_mem_pattern="0")
    text += " " + _params(**{"session.use_device_allocator_for_initializers": "1"})
    options = session_options(ort, config(text + " optimization { graph { level: 1 } }"))
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 2)
    assert options.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    assert not options.enable_cpu_mem_arena and not options.enable_mem_pattern
    assert options.get_session_config_entry("session.use_device_allocator_for_initializers") == "1"
    defaults = session_options(ort, config())
    assert defaults.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert defaults.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL and defaults.intra_op_num_threads == 0
    levels = {-1: "ORT_ENABLE_BASIC", 2: "ORT_DISABLE_ALL", 0: "ORT_ENABLE_ALL"}
    for level, name in levels.items():
        options = session_options(ort, config(f"optimization {{ graph {{ level: {level} }} }}"))
        assert options.graph_optimization_level == getattr(ort.GraphOptimizationLevel, name)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"execution_mode": "2"}, "Expected values for execution_mode are 0 or 1 but got 2"),
        ({"intra_op_thread_count": "many"}, "parameter 'intra_op_thread_count' of model 'm' to an integer: 'many'"),
        ({"inter_op_thread_count": "-1"}, "'inter_op_thread_count' of model 'm' must be >= 0"),
        ({"enable_mem_arena": "maybe"}, "parameter 'enable_mem_arena' of model 'm' to a boolean: 'maybe'"),
    ],
)
def test_bad_parameters_fail_the_load(params, message):
    with pytest.raises(ModelLoadError, match=message):
        session_options(ort, config(_params(**params)))


def test_arena_shrinkage_is_a_run_option(tmp_path):
    source = write(tmp_path, "m", mlp())
    cfg = completed(source, _params(**{"memory.enable_memory_arena_shrinkage": "cpu:0"}))
    (infer,) = load(source, cfg).infer_funcs
    assert infer.__self__.run_options.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"
    assert infer([req(x=np.zeros((1, 4), np.float32))])[0]["y"].shape == (1, 3)


def test_a_session_per_instance_or_shared(tmp_path):
    source = write(tmp_path, "m", mlp())
    loaded = load(source, completed(source), [cpu(0), cpu(1)])
    first, second = (f.__self__.session for f in loaded.infer_funcs)
    assert first is not second
    cfg = completed(source, _params(share_session_between_instances="true"))
    loaded = load(source, cfg, [cpu(0), cpu(1), cpu(2)])
    assert len({id(f.__self__.session) for f in loaded.infer_funcs}) == 1
    x = np.ones((1, 4), np.float32)
    assert all(f([req(x=x)])[0]["y"].shape == (1, 3) for f in loaded.infer_funcs)


def test_kind_gpu_without_a_cuda_provider_names_the_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    source = write(tmp_path, "gpu_only", mlp())
    cfg = completed(source, 'instance_group [{ name: "gpu_only_0" kind: KIND_GPU count: 1 gpus: [1] }]')
    gpu = InstancePlacement(name="gpu_only_0", kind="KIND_GPU", device_id=1, index=0)
    with pytest.raises(
        ModelLoadError,
        match="instance group gpu_only_0 of model gpu_only has kind KIND_GPU but onnxruntime has no CUDA execution "
        "provider for GPU 1.*onnxruntime-gpu",
    ):
        load(source, cfg, [gpu])


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="onnxruntime-gpu is installed")
def test_kind_gpu_when_the_cuda_provider_does_not_start(tmp_path, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    source = write(tmp_path, "g", mlp())
    cfg = completed(source)
    gpu = InstancePlacement(name="g_0", kind="KIND_GPU", device_id=0, index=0)
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):  # onnxruntime's own warning on a CPU build
        with pytest.raises(ModelLoadError, match="could not start its CUDA execution provider on GPU 0"):
            load(source, cfg, [gpu])


def test_cuda_provider_options():
    text = _params(cudnn_conv_algo_search="1", gpu_mem_limit="1024", arena_extend_strategy="1")
    text += (
        ' optimization { execution_accelerators { gpu_execution_accelerator : [ { name : "cuda" '
        'parameters { key: "use_ep_level_unified_stream" value: "1" } } ] } }'
    )
    assert cuda_options(config(text), 3) == {
        "device_id": "3",
        "gpu_mem_limit": "1024",
        "cudnn_conv_algo_search": "HEURISTIC",
        "arena_extend_strategy": "kSameAsRequested",
        "use_ep_level_unified_stream": "1",
    }


def test_other_accelerators_are_ignored_with_a_warning(tmp_path, caplog):
    source = write(tmp_path, "m", mlp())
    text = 'optimization { execution_accelerators { gpu_execution_accelerator : [ { name : "tensorrt" } ] } }'
    load(source, completed(source, text))
    assert "execution accelerator 'tensorrt' is not supported" in caplog.text


def test_missing_onnxruntime_names_the_extra(tmp_path, monkeypatch):
    source = write(tmp_path, "m", mlp())
    cfg = completed(source)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendUnavailableError, match=r'pip install "pytriton-lite\[onnx\]"'):
        load(source, cfg)
    with pytest.raises(BackendUnavailableError, match="model 'm'"):
        completed(source)


def test_no_placements_and_finalize(tmp_path):
    source = write(tmp_path, "m", mlp())
    loaded = load(source, completed(source), [cpu(0)])
    loaded.finalize()
    assert onnx_backend.BACKEND.load(VersionSource(source, 1, completed(source)), [], None).infer_funcs == []  # type: ignore[arg-type]
