"""The pytorch (TorchScript) backend called directly: Triton's naming rules, batching along dim 0, data types,
strings, parameters, devices and the load and run errors."""

from __future__ import annotations

import pathlib
import sys
import warnings
from typing import Any, Dict, List, Optional, Tuple

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

torch = pytest.importorskip("torch")

from pytriton_lite.repository.backends.torch import BACKEND, apply_process_options  # noqa: E402


class AddSub(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return a + b, a - b


class Cnn(torch.nn.Module):
    """mnist-cnn-like: [b, 1, 8, 8] -> [b, 3]."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.fc = torch.nn.Linear(2 * 6 * 6, 3)

    def forward(self, model_input: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(model_input)).flatten(1))


class DictIn(torch.nn.Module):
    def forward(self, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        return inputs["x"] * inputs["scale"]


class DictOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"double": x * 2, "neg": -x}


class Upper(torch.nn.Module):
    def forward(self, words: List[str]) -> List[str]:
        return [w.upper() for w in words]


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


class WithDefault(torch.nn.Module):
    def forward(self, x: torch.Tensor, scale: float = 3.0) -> torch.Tensor:
        return x * scale


class TakesInt(torch.nn.Module):
    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        return x * n


def save(tmp_path: pathlib.Path, name: str, module: Any, example: Optional[Any] = None) -> ModelSource:
    path = tmp_path / name / "1" / "model.pt"
    path.parent.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.x deprecates TorchScript
        scripted = torch.jit.trace(module, example) if example is not None else torch.jit.script(module)
        torch.jit.save(scripted, str(path))
    return ModelSource(name=name, repository=tmp_path, directory=tmp_path / name)


def tensor(name: str, dtype: str = "TYPE_FP32", dims: str = "-1") -> str:
    return f'{{ name: "{name}" data_type: {dtype} dims: [ {dims} ] }}'


def config(inputs: List[str], outputs: List[str], extra: str = "", name: str = "m") -> model_config_pb2.ModelConfig:
    text = f'name: "{name}" platform: "pytorch_libtorch" {extra} '
    text += f"input [{', '.join(inputs)}] output [{', '.join(outputs)}]"
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def cpu(index: int = 0) -> InstancePlacement:
    return InstancePlacement(name=f"m_0_{index}", kind="KIND_CPU", device_id=0, index=index)


def load(source: ModelSource, cfg: model_config_pb2.ModelConfig, placements: Optional[List[InstancePlacement]] = None):
    return BACKEND.load(VersionSource(source, 1, cfg), placements or [cpu()], context=None)  # type: ignore[arg-type]


def one(source: ModelSource, cfg: model_config_pb2.ModelConfig) -> Any:
    (infer,) = load(source, cfg).infer_funcs
    return infer


def req(outputs: Optional[List[str]] = None, **inputs: np.ndarray) -> Request:
    return Request(data=dict(inputs), requested_output_names=outputs)


def f32(*values: float) -> np.ndarray:
    return np.array([values], np.float32)


class Counting:
    def __init__(self, module: Any) -> None:
        self.module = module
        self.calls: List[Dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.module(**kwargs)


# --- registration, auto-complete ------------------------------------------------------------------------


def test_registered_under_both_triton_names():
    assert backend_for("pytorch_libtorch") is BACKEND and backend_for("pytorch") is BACKEND
    assert BACKEND.default_model_filename == "model.pt"


def test_can_use_gpus_when_torch_sees_cuda(monkeypatch):
    assert BACKEND.can_use_gpus() == torch.cuda.is_available()
    monkeypatch.setitem(sys.modules, "torch", None)
    assert not BACKEND.can_use_gpus()


def test_no_auto_complete_inputs_and_outputs_are_required(tmp_path):
    source = save(tmp_path, "m", Identity())
    cfg = text_format.Parse('name: "m" platform: "pytorch_libtorch"', model_config_pb2.ModelConfig())
    with pytest.raises(ModelLoadError, match="must contain at least one input and one output.*does not auto-complete"):
        BACKEND.auto_complete(source, cfg, source.directory / "1")
    with pytest.raises(ModelLoadError, match="must contain at least one input and one output"):
        load(source, cfg)
    cfg = config([tensor("x")], [tensor("y")])
    before = cfg.SerializeToString()
    BACKEND.auto_complete(source, cfg, source.directory / "1")
    assert cfg.SerializeToString() == before


# --- naming rules ---------------------------------------------------------------------------------------


def test_inputs_by_forward_argument_names_in_any_order(tmp_path):
    infer = one(save(tmp_path, "m", AddSub()), config([tensor("b"), tensor("a")], [tensor("sum"), tensor("diff")]))
    (result,) = infer([req(a=f32(5), b=f32(2))])
    assert result["sum"].tolist() == [[7]] and result["diff"].tolist() == [[3]]


def test_inputs_and_outputs_by_index_names(tmp_path):
    cfg = config([tensor("INPUT__1"), tensor("INPUT__0")], [tensor("OUTPUT__1"), tensor("OUTPUT__0")])
    infer = one(save(tmp_path, "m", AddSub()), cfg)
    (result,) = infer([req(INPUT__0=f32(5), INPUT__1=f32(2))])
    assert result["OUTPUT__0"].tolist() == [[7]] and result["OUTPUT__1"].tolist() == [[3]]


def test_config_order_otherwise(tmp_path, caplog):
    infer = one(save(tmp_path, "m", AddSub()), config([tensor("first"), tensor("second")], [tensor("s"), tensor("d")]))
    (result,) = infer([req(first=f32(5), second=f32(2))])
    assert result["s"].tolist() == [[7]] and result["d"].tolist() == [[3]]
    assert "Falling back to enforcing strict ordering" in caplog.text


def test_a_single_dict_argument_is_keyed_by_config_names(tmp_path):
    infer = one(save(tmp_path, "m", DictIn()), config([tensor("x"), tensor("scale")], [tensor("OUTPUT__0")]))
    (result,) = infer([req(x=f32(2, 3), scale=f32(10, 10))])
    assert result["OUTPUT__0"].tolist() == [[20, 30]]


def test_dict_outputs_by_key_or_by_position(tmp_path):
    source = save(tmp_path, "m", DictOut())
    (result,) = one(source, config([tensor("x")], [tensor("neg"), tensor("double")]))([req(x=f32(2))])
    assert result["neg"].tolist() == [[-2]] and result["double"].tolist() == [[4]]
    (result,) = one(source, config([tensor("x")], [tensor("OUTPUT__1")]))([req(x=f32(2))])
    assert result["OUTPUT__1"].tolist() == [[-2]]


def test_a_traced_module_and_arguments_with_defaults(tmp_path):
    cnn = Cnn()
    source = save(tmp_path, "cnn", cnn, torch.zeros(1, 1, 8, 8))
    cfg = config([tensor("input", dims="1, 8, 8")], [tensor("OUTPUT__0", dims="3")], "max_batch_size: 8")
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    (result,) = one(source, cfg)([req(input=x)])
    with torch.no_grad():
        np.testing.assert_allclose(result["OUTPUT__0"], cnn(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
    (result,) = one(save(tmp_path, "d", WithDefault()), config([tensor("x")], [tensor("y")]))([req(x=f32(2))])
    assert result["y"].tolist() == [[6]]


@pytest.mark.parametrize(
    ("module", "inputs", "outputs", "message"),
    [
        (
            AddSub(),
            [tensor("a")],
            [tensor("y")],
            "unable to load model 'm', configuration expects 1 inputs, model provides 2",
        ),
        (
            AddSub(),
            [tensor("a"), tensor("b"), tensor("c")],
            [tensor("y")],
            "configuration expects 3 inputs, model provides 2",
        ),
        (AddSub(), [tensor("INPUT__0"), tensor("INPUT__2")], [tensor("y")], "names index 2 but forward\\(\\) takes 2"),
        (
            AddSub(),
            [tensor("INPUT__0"), tensor("X__0")],
            [tensor("y")],
            "'INPUT__0' and 'X__0' of model 'm' both name index 0",
        ),
        (Identity(), [tensor("x")], [tensor("OUTPUT__0"), tensor("Y__0")], "both name index 0"),
        (TakesInt(), [tensor("x"), tensor("n")], [tensor("y")], "An input of type 'int' was detected in the model"),
        (Identity(), [tensor("x", "TYPE_UINT16")], [tensor("y")], "unsupported datatype TYPE_UINT16 for input 'x'"),
        (
            Upper(),
            [tensor("words", "TYPE_STRING")],
            [tensor("y", "TYPE_STRING", "2, 2")],
            "Triton only supports 1 dimensional List of String as output for 'y'",
        ),
    ],
)
def test_config_and_forward_must_agree(tmp_path, module, inputs, outputs, message):
    with pytest.raises(ModelLoadError, match=message):
        load(save(tmp_path, "m", module), config(inputs, outputs))


# --- batching, data types, strings ----------------------------------------------------------------------


def test_requests_are_concatenated_along_dim_0(tmp_path):
    source = save(tmp_path, "m", AddSub())
    infer = one(
        source,
        config(
            [tensor("a", dims="2"), tensor("b", dims="2")],
            [tensor("s", dims="2"), tensor("d", dims="2")],
            "max_batch_size: 8",
        ),
    )
    counting = infer.__self__.module = Counting(infer.__self__.module)
    rng = np.random.default_rng(1)
    pairs = [
        (rng.standard_normal((n, 2)).astype(np.float32), rng.standard_normal((n, 2)).astype(np.float32))
        for n in (1, 3, 2)
    ]
    results = infer([req(a=a, b=b) for a, b in pairs])
    assert len(counting.calls) == 1 and tuple(counting.calls[0]["a"].shape) == (6, 2)
    for (a, b), result in zip(pairs, results):
        np.testing.assert_allclose(result["s"], a + b, rtol=1e-6)
        np.testing.assert_allclose(result["d"], a - b, rtol=1e-6)
    results = infer([req(["d"], a=pairs[0][0], b=pairs[0][1])])
    assert set(results[0]) == {"d"}


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        ("TYPE_BOOL", np.array([[True, False]])),
        ("TYPE_UINT8", np.array([[0, 255]], np.uint8)),
        ("TYPE_INT8", np.array([[-128, 127]], np.int8)),
        ("TYPE_INT16", np.array([[-3, 3]], np.int16)),
        ("TYPE_INT32", np.array([[-(2**31), 7]], np.int32)),
        ("TYPE_INT64", np.array([[2**40]], np.int64)),
        ("TYPE_FP16", np.array([[1.5, -0.25]], np.float16)),
        ("TYPE_FP32", np.array([[3.25]], np.float32)),
        ("TYPE_FP64", np.array([[1e-300]], np.float64)),
    ],
)
def test_data_types_round_trip(tmp_path, dtype, values):
    infer = one(
        save(tmp_path, "m", Identity()), config([tensor("x", dtype)], [tensor("y", dtype)], "max_batch_size: 4")
    )
    (result,) = infer([req(x=values)])
    assert result["y"].dtype == values.dtype
    np.testing.assert_array_equal(result["y"], values)


def test_read_only_wire_buffers_are_accepted(tmp_path):
    infer = one(save(tmp_path, "m", Identity()), config([tensor("x")], [tensor("y")]))
    wire = np.frombuffer(np.array([1.0, 2.0], np.float32).tobytes(), np.float32)
    assert not wire.flags.writeable
    (result,) = infer([req(x=wire)])  # no "not writable" warning (warnings are errors here)
    assert result["y"].tolist() == [1.0, 2.0]
    (result,) = infer([req(x=np.arange(6, dtype=np.float32)[::2])])
    assert result["y"].tolist() == [0.0, 2.0, 4.0]


def test_strings_are_lists_of_str(tmp_path):
    source = save(tmp_path, "m", Upper())
    infer = one(source, config([tensor("words", "TYPE_STRING")], [tensor("upper", "TYPE_STRING")]))
    results = infer(
        [req(words=np.array([b"ab", b"caf\xc3\xa9"], dtype=object)), req(words=np.array([b"x"], dtype=object))]
    )
    assert [list(r["upper"]) for r in results] == [[b"AB", "CAFé".encode()], [b"X"]]  # TorchScript upper() is ASCII
    with pytest.raises(InvalidArgumentError, match="not UTF-8"):
        infer([req(words=np.array([b"\xff"], dtype=object))])
    batched = "dims: [ 1 ] reshape: { shape: [ ] }"
    out = f'{{ name: "upper" data_type: TYPE_STRING {batched} }}'
    infer = one(source, config([tensor("words", "TYPE_STRING", "1")], [out], "max_batch_size: 8"))
    words = [np.array([[b"a"], [b"b"]], dtype=object), np.array([[b"c"]], dtype=object)]
    assert [list(r["upper"]) for r in infer([req(words=w) for w in words])] == [[b"A", b"B"], [b"C"]]
    infer = one(save(tmp_path, "i", Identity()), config([tensor("x")], [tensor("y")]))
    with pytest.raises(InvalidArgumentError, match="holds strings but is not TYPE_STRING"):
        infer([req(x=np.array([b"a"], dtype=object))])


# --- run errors -----------------------------------------------------------------------------------------


def test_run_errors_are_500s_with_torchs_message(tmp_path):
    infer = one(save(tmp_path, "m", AddSub()), config([tensor("a"), tensor("b")], [tensor("s")]))
    with pytest.raises(
        ModelExecutionError, match=r"^PyTorch execute failure: RuntimeError: The size of tensor a \(2\) must match"
    ):
        infer([req(a=np.ones((1, 2), np.float32), b=np.ones((1, 3), np.float32))])
    infer = one(save(tmp_path, "i", Identity()), config([tensor("x")], [tensor("y"), tensor("z")]))
    with pytest.raises(
        ModelExecutionError, match="output 'z' of model 'i' is output 1 of forward\\(\\), which returned 1 output$"
    ):
        infer([req(x=f32(1))])


def test_a_batching_model_must_keep_the_batch_dimension(tmp_path):
    class Sum(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum(0)

    infer = one(save(tmp_path, "m", Sum()), config([tensor("x")], [tensor("y")], "max_batch_size: 4"))
    with pytest.raises(ModelExecutionError, match="must return its outputs with the batch dimension first"):
        infer([req(x=f32(1)), req(x=f32(2))])


# --- load errors, devices, parameters -------------------------------------------------------------------


def test_missing_and_broken_model_files(tmp_path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    source = ModelSource("m", tmp_path, tmp_path / "m")
    with pytest.raises(ModelLoadError, match="unable to find '.*model.pt' for model 'm'"):
        load(source, config([tensor("x")], [tensor("y")]))
    (tmp_path / "m" / "1" / "model.pt").write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="failed to load model 'm' from"):
        load(source, config([tensor("x")], [tensor("y")]))
    named = save(tmp_path, "n", Identity())
    (named.directory / "1" / "model.pt").rename(named.directory / "1" / "net.pt")
    infer = one(named, config([tensor("x")], [tensor("y")], 'default_model_filename: "net.pt"'))
    assert infer([req(x=f32(1))])[0]["y"].tolist() == [[1]]


def test_missing_torch_names_the_extra(tmp_path, monkeypatch):
    source = save(tmp_path, "m", Identity())
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(BackendUnavailableError, match=r'pip install "pytriton-lite\[torch\]"'):
        load(source, config([tensor("x")], [tensor("y")]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_kind_gpu_without_a_gpu_names_the_group_and_gpu(tmp_path):
    source = save(tmp_path, "gpu_only", Identity())
    cfg = config([tensor("x")], [tensor("y")], 'instance_group [{ name: "gpu_only_0" kind: KIND_GPU }]', "gpu_only")
    gpu = InstancePlacement(name="gpu_only_0", kind="KIND_GPU", device_id=0, index=0)
    with pytest.raises(
        ModelLoadError, match="instance group gpu_only_0 of model gpu_only has kind KIND_GPU but no GPUs are available"
    ):
        load(source, cfg, [gpu])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_kind_gpu_runs_on_the_instances_gpu_like_on_cpu(tmp_path):
    cnn = Cnn()
    source = save(tmp_path, "cnn", cnn, torch.zeros(1, 1, 8, 8))
    cfg = config([tensor("input", dims="1, 8, 8")], [tensor("OUTPUT__0", dims="3")], "max_batch_size: 8", "cnn")
    gpu = InstancePlacement(name="cnn_0", kind="KIND_GPU", device_id=0, index=0)
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    (on_gpu,) = load(source, cfg, [gpu]).infer_funcs
    assert next(on_gpu.__self__.module.parameters()).device.type == "cuda"
    (expected,) = one(source, cfg)([req(input=x)])
    results = on_gpu([req(input=x[:1]), req(input=x[1:])])
    np.testing.assert_allclose(
        np.concatenate([r["OUTPUT__0"] for r in results]), expected["OUTPUT__0"], rtol=1e-4, atol=1e-5
    )
    bad = InstancePlacement(name="cnn_0", kind="KIND_GPU", device_id=torch.cuda.device_count(), index=0)
    with pytest.raises(ModelLoadError, match="specifies invalid or unsupported gpu id"):
        load(source, cfg, [bad])


def test_kind_model_keeps_the_saved_devices(tmp_path):
    source = save(tmp_path, "m", Identity())
    model = InstancePlacement(name="m_0", kind="KIND_MODEL", device_id=0, index=0)
    (infer,) = load(source, config([tensor("x")], [tensor("y")]), [model]).infer_funcs
    assert infer.__self__.device is None and infer([req(x=f32(4))])[0]["y"].tolist() == [[4]]


def _params(**values: str) -> str:
    return " ".join(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in values.items())


def test_a_module_per_instance_or_shared_weights(tmp_path):
    source = save(tmp_path, "m", Identity())
    loaded = load(source, config([tensor("x")], [tensor("y")]), [cpu(0), cpu(1)])
    assert loaded.infer_funcs[0].__self__.module is not loaded.infer_funcs[1].__self__.module
    cfg = config([tensor("x")], [tensor("y")], _params(ENABLE_WEIGHT_SHARING="true"))
    loaded = load(source, cfg, [cpu(0), cpu(1)])
    assert loaded.infer_funcs[0].__self__.module is loaded.infer_funcs[1].__self__.module
    loaded.finalize()


def test_execution_parameters(tmp_path):
    source = save(tmp_path, "m", AddSub())
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    probe = save(tmp_path, "p", Probe())
    for params, grad_enabled, inference in (({}, False, True), ({"INFERENCE_MODE": "false"}, False, False)):
        infer = one(probe, config([tensor("x")], [tensor("y")], _params(**params)))
        instance = infer.__self__
        inner = instance.module

        def spy(inner: Any = inner, **kwargs: Any) -> Any:
            seen.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
            return inner(**kwargs)

        instance.module = spy
        infer([req(x=f32(1))])
        assert seen[-1] == (grad_enabled, inference)
    cfg = config(
        [tensor("a"), tensor("b")],
        [tensor("s")],
        _params(DISABLE_OPTIMIZED_EXECUTION="true", ENABLE_CACHE_CLEANING="1"),
    )
    assert one(source, cfg)([req(a=f32(1), b=f32(2))])[0]["s"].tolist() == [[3]]
    with pytest.raises(ModelLoadError, match="parameter 'INFERENCE_MODE' of model 'm' to a boolean"):
        load(source, config([tensor("a"), tensor("b")], [tensor("s")], _params(INFERENCE_MODE="sometimes")))


def test_process_wide_parameters_are_applied(caplog):
    threads = torch.get_num_threads()
    cudnn = torch.backends.cudnn.enabled
    executor = torch._C._jit_set_profiling_executor(True)
    profiling = torch._C._jit_set_profiling_mode(True)
    try:
        text = _params(INTRA_OP_THREAD_COUNT="2", DISABLE_CUDNN="true", ENABLE_JIT_EXECUTOR="false", ENABLE_NVFUSER="1")
        text += " " + _params(
            ENABLE_JIT_PROFILING="false", INTER_OP_THREAD_COUNT=str(torch.get_num_interop_threads() + 1)
        )
        apply_process_options(torch, config([tensor("x")], [tensor("y")], text), "m")
        assert torch.get_num_threads() == 2 and not torch.backends.cudnn.enabled
        assert torch._C._jit_set_profiling_executor(True) is False
        assert torch._C._jit_set_profiling_mode(True) is False
        assert "ENABLE_NVFUSER is not supported" in caplog.text
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.enabled = cudnn
        torch._C._jit_set_profiling_executor(executor)
        torch._C._jit_set_profiling_mode(profiling)
