"""The ensemble backend at run time, with a fake ``LoadContext`` whose ``infer_async`` calls plain functions:
the graph, concurrency of independent steps, error propagation naming the step, batches of requests."""

from __future__ import annotations

import asyncio
import gc
import inspect
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from pytriton_lite.exceptions import (
    DecoupledModelError,
    InferenceError,
    InvalidArgumentError,
    ModelExecutionError,
    ModelNotFoundError,
    UnavailableError,
)
from pytriton_lite.repository.backend import InstancePlacement, ModelLoadError, ModelSource, VersionSource
from pytriton_lite.repository.backends import backend_for
from pytriton_lite.repository.backends.ensemble import BACKEND, MIN_CONCURRENCY
from pytriton_lite.types import InferenceRequest, InferenceResponse, Request

StepFunc = Callable[[InferenceRequest], Any]  # returns (or awaits to) Dict[str, np.ndarray]


def _config(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def _model(name: str, inputs: List[str], outputs: List[str], *, dtype: str = "TYPE_FP32", mbs: int = 8) -> str:
    def tensors(names: List[str]) -> str:
        def one(n: str) -> str:
            optional = " optional: true" if n.endswith("?") else ""
            return f'{{ name: "{n.rstrip("?")}" data_type: {dtype} dims: [ -1 ]{optional} }}'

        return ", ".join(one(n) for n in names)

    ins = f"input [{tensors(inputs)}]" if inputs else ""
    return f'name: "{name}" backend: "python" max_batch_size: {mbs} {ins} output [{tensors(outputs)}]'


class FakeContext:
    """A LoadContext: configs by model name, ``infer_async`` dispatching to a function per model."""

    def __init__(self) -> None:
        self.configs: Dict[str, model_config_pb2.ModelConfig] = {}
        self.funcs: Dict[str, StepFunc] = {}
        self.calls: List[InferenceRequest] = []

    def add(self, text: str, func: StepFunc) -> None:
        config = _config(text)
        self.configs[config.name] = config
        self.funcs[config.name] = func

    async def infer_async(self, request: InferenceRequest) -> InferenceResponse:
        self.calls.append(request)
        result = self.funcs[request.model_name](request)
        if inspect.isawaitable(result):
            result = await result
        wanted = request.requested_outputs
        outputs = {k: v for k, v in result.items() if wanted is None or k in wanted}
        return InferenceResponse(request.model_name, request.model_version or "1", outputs)

    def model_config(self, name: str, version: str = "") -> model_config_pb2.ModelConfig:
        if name not in self.configs:
            raise ModelNotFoundError(f"Request for unknown model: '{name}' is not found")
        return self.configs[name]

    def infer(self, request: InferenceRequest, timeout_s: Optional[float] = None) -> InferenceResponse:
        raise AssertionError("an ensemble calls infer_async only")

    def infer_stream(self, request: InferenceRequest) -> List[InferenceResponse]:
        raise AssertionError("an ensemble calls infer_async only")

    def infer_stream_async(self, request: InferenceRequest) -> Any:
        raise AssertionError("an ensemble calls infer_async only")


def _ensemble(steps: str, inputs: List[str], outputs: List[str], *, mbs: int = 8) -> model_config_pb2.ModelConfig:
    text = _model("ens", inputs, outputs, mbs=mbs).replace('backend: "python"', 'platform: "ensemble"')
    return _config(f"{text} ensemble_scheduling {{ {steps} }}")


def _step(model: str, inputs: Dict[str, str], outputs: Dict[str, str], version: int = -1) -> str:
    ins = ", ".join(f'{{ key: "{k}" value: "{v}" }}' for k, v in inputs.items())
    outs = ", ".join(f'{{ key: "{k}" value: "{v}" }}' for k, v in outputs.items())
    maps = (f"input_map [{ins}] " if ins else "") + f"output_map [{outs}]"
    return f'step {{ model_name: "{model}" model_version: {version} {maps} }}'


def _load(config: model_config_pb2.ModelConfig, context: FakeContext, placements: int = 1) -> List[Any]:
    source = VersionSource(ModelSource("ens", _REPO, _REPO / "ens"), 1, config)
    places = [InstancePlacement(f"ens_0_{i}", "KIND_CPU", 0, i) for i in range(placements)]
    return BACKEND.load(source, places, context).infer_funcs


_REPO = __import__("pathlib").Path("/nonexistent-repository")


def _request(**data: Any) -> Request:
    return Request(data={k: np.asarray(v, dtype=np.float32) for k, v in data.items()}, parameters={"tenant": "acme"})


def _pipeline(context: FakeContext) -> model_config_pb2.ModelConfig:
    """IN -> pre (x2) -> f -> cls (+1) -> OUT."""
    context.add(_model("pre", ["RAW"], ["FEAT"]), lambda r: {"FEAT": r.inputs["RAW"] * 2})
    context.add(_model("cls", ["X"], ["Y", "UNUSED"]), lambda r: {"Y": r.inputs["X"] + 1, "UNUSED": r.inputs["X"]})
    steps = _step("pre", {"RAW": "IN"}, {"FEAT": "f"}) + _step("cls", {"X": "f"}, {"Y": "OUT"}, version=1)
    return _ensemble(steps, ["IN"], ["OUT"])


def test_the_backend_is_registered_under_its_triton_name():
    assert backend_for("ensemble") is BACKEND
    assert tuple(BACKEND.names) == ("ensemble",)
    assert BACKEND.default_model_filename == ""
    assert BACKEND.auto_complete(ModelSource("ens", _REPO, _REPO / "ens"), _config(""), _REPO) is None


def test_a_pipeline_runs_step_after_step():
    context = FakeContext()
    infer = _load(_pipeline(context), context)[0]
    assert inspect.iscoroutinefunction(infer)
    [out] = asyncio.run(infer([_request(IN=[[1.0, 2.0]])]))
    assert list(out) == ["OUT"]
    np.testing.assert_array_equal(out["OUT"], [[3.0, 5.0]])
    pre, cls = context.calls
    assert (pre.model_name, pre.model_version, pre.requested_outputs) == ("pre", "", ["FEAT"])
    assert (cls.model_name, cls.model_version, cls.requested_outputs) == ("cls", "1", ["Y"])
    assert pre.parameters == cls.parameters == {"tenant": "acme"}  # the client's parameters reach every step
    assert list(cls.inputs) == ["X"]


def test_enough_instances_for_concurrent_requests():
    context = FakeContext()
    config = _pipeline(context)
    assert len(_load(config, context, placements=1)) == MIN_CONCURRENCY
    assert len(_load(config, context, placements=MIN_CONCURRENCY + 3)) == MIN_CONCURRENCY + 3


def test_a_missing_step_model_fails_the_load_naming_it():
    context = FakeContext()
    config = _pipeline(context)
    del context.configs["cls"]
    with pytest.raises(ModelLoadError, match=r"ensemble 'ens' needs model 'cls' version 1 for step 1, which is not"):
        _load(config, context)


def _barrier(context: FakeContext, names: List[str]) -> Dict[str, asyncio.Event]:
    """Each named step waits until every named step has started: they can only finish if run concurrently."""
    started: Dict[str, asyncio.Event] = {}

    def make(name: str) -> StepFunc:
        async def step(request: InferenceRequest) -> Dict[str, np.ndarray]:
            started.setdefault(name, asyncio.Event()).set()
            for other in names:
                await asyncio.wait_for(started.setdefault(other, asyncio.Event()).wait(), 5)
            return {"Y": request.inputs["X"] + len(name)}

        return step

    for name in names:
        context.add(_model(name, ["X"], ["Y"]), make(name))
    return started


def test_independent_steps_run_concurrently():
    context = FakeContext()
    _barrier(context, ["a", "bb", "ccc"])
    steps = "".join(_step(n, {"X": "IN"}, {"Y": f"OUT_{n}"}) for n in ["a", "bb", "ccc"])
    infer = _load(_ensemble(steps, ["IN"], ["OUT_a", "OUT_bb", "OUT_ccc"]), context)[0]
    [out] = asyncio.run(asyncio.wait_for(infer([_request(IN=[[0.0]])]), 10))
    assert {k: float(v[0, 0]) for k, v in out.items()} == {"OUT_a": 1.0, "OUT_bb": 2.0, "OUT_ccc": 3.0}


def test_a_step_starts_as_soon_as_its_inputs_are_there():
    # IN -> slow -> OUT1 and IN -> fast -> f -> after -> OUT2: "slow" finishes only once "after" has run,
    # so "after" must not wait for the slow branch
    context = FakeContext()
    after_ran: Any = None  # an asyncio.Event made on the loop below (Python 3.9 binds it at construction)

    async def slow(request: InferenceRequest) -> Dict[str, np.ndarray]:
        await asyncio.wait_for(after_ran.wait(), 5)
        return {"Y": request.inputs["X"] - 1}

    def after(request: InferenceRequest) -> Dict[str, np.ndarray]:
        after_ran.set()
        return {"Y": request.inputs["X"] * 10}

    context.add(_model("slow", ["X"], ["Y"]), slow)
    context.add(_model("fast", ["X"], ["Y"]), lambda r: {"Y": r.inputs["X"] + 1})
    context.add(_model("after", ["X"], ["Y"]), after)
    steps = (
        _step("slow", {"X": "IN"}, {"Y": "OUT1"})
        + _step("fast", {"X": "IN"}, {"Y": "f"})
        + _step("after", {"X": "f"}, {"Y": "OUT2"})
    )
    infer = _load(_ensemble(steps, ["IN"], ["OUT1", "OUT2"]), context)[0]

    async def main() -> Any:
        nonlocal after_ran
        after_ran = asyncio.Event()  # bound to this loop (Python 3.9)
        return await asyncio.wait_for(infer([_request(IN=[[1.0]])]), 10)

    [out] = asyncio.run(main())
    assert float(out["OUT1"][0, 0]) == 0.0 and float(out["OUT2"][0, 0]) == 20.0


def test_a_diamond_joins_two_branches():
    context = FakeContext()
    context.add(_model("left", ["X"], ["Y"]), lambda r: {"Y": r.inputs["X"] + 1})
    context.add(_model("right", ["X"], ["Y"]), lambda r: {"Y": r.inputs["X"] * 3})
    context.add(_model("join", ["A", "B"], ["S"]), lambda r: {"S": r.inputs["A"] + r.inputs["B"]})
    steps = (
        _step("join", {"A": "l", "B": "r"}, {"S": "OUT"})
        + _step("left", {"X": "IN"}, {"Y": "l"})
        + _step("right", {"X": "IN"}, {"Y": "r"})
    )
    infer = _load(_ensemble(steps, ["IN"], ["OUT"]), context)[0]
    [out] = asyncio.run(infer([_request(IN=[[2.0]])]))
    assert float(out["OUT"][0, 0]) == 9.0
    assert [c.model_name for c in context.calls][-1] == "join"


def test_a_step_without_inputs_and_an_absent_optional_input():
    context = FakeContext()
    context.add(_model("const", [], ["C"]), lambda r: {"C": np.full((1, 1), 7.0, np.float32)})
    context.add(
        _model("use", ["X", "H?"], ["Y"]),
        lambda r: {"Y": r.inputs["X"] + (r.inputs["H"] if "H" in r.inputs else 100)},
    )
    steps = _step("const", {}, {"C": "c"}) + _step("use", {"X": "c", "H": "HINT"}, {"Y": "OUT"})
    config = _ensemble(steps, ["HINT?"], ["OUT"])
    infer = _load(config, context)[0]
    [with_hint] = asyncio.run(infer([_request(HINT=[[1.0]])]))
    [without] = asyncio.run(infer([Request(data={})]))
    assert float(with_hint["OUT"][0, 0]) == 8.0 and float(without["OUT"][0, 0]) == 107.0
    assert "H" not in context.calls[-1].inputs


def _failing(error: BaseException) -> FakeContext:
    context = FakeContext()
    _pipeline(context)

    def cls(request: InferenceRequest) -> Dict[str, np.ndarray]:
        raise error

    context.funcs["cls"] = cls
    return context


def _run(context: FakeContext, requests: Optional[List[Request]] = None) -> List[Dict[str, np.ndarray]]:
    infer = _load(_pipeline_config(), context)[0]
    result: List[Dict[str, np.ndarray]] = asyncio.run(infer(requests or [_request(IN=[[1.0]])]))
    return result


def _pipeline_config() -> model_config_pb2.ModelConfig:
    return _pipeline(FakeContext())


@pytest.mark.parametrize(
    "error, cls, status",
    [
        (InvalidArgumentError("X must be >= 0"), InvalidArgumentError, 400),
        (ModelNotFoundError("Request for unknown model: 'cls' version 1 is not found"), ModelNotFoundError, 404),
        (UnavailableError("Model 'cls' is not ready"), UnavailableError, 503),
        (InferenceError("teapot", http_status=418, headers=[("X-A", "b")]), InferenceError, 418),
        (DecoupledModelError("cls"), DecoupledModelError, 501),
    ],
)
def test_a_step_error_keeps_its_class_and_names_the_step(error: InferenceError, cls: type, status: int):
    with pytest.raises(cls) as info:
        _run(_failing(error))
    raised = info.value
    assert type(raised) is cls and raised.http_status == status and raised.grpc_code == error.grpc_code
    assert str(raised) == raised.message == f"in ensemble 'ens', model 'cls': {error.message}"
    assert raised.args == (raised.message,)
    assert raised.headers == error.headers and raised.__cause__ is error
    assert str(error) != str(raised)  # the step's own error is left as it was
    if isinstance(error, DecoupledModelError):
        assert raised.model == "cls"  # type: ignore[attr-defined]


def test_another_exception_from_a_step_is_a_500_naming_the_step():
    with pytest.raises(ModelExecutionError) as info:
        _run(_failing(ValueError("boom")))
    assert str(info.value) == "in ensemble 'ens', model 'cls': ValueError: boom"
    assert info.value.http_status == 500


def test_a_step_that_leaves_out_a_mapped_output_fails_the_request():
    context = FakeContext()
    _pipeline(context)
    context.funcs["pre"] = lambda r: {}
    with pytest.raises(ModelExecutionError, match=r"model 'pre': the model returned no output 'FEAT' \(ensemble"):
        _run(context)
    assert [c.model_name for c in context.calls] == ["pre"]  # cls never ran


def test_an_error_cancels_the_steps_still_running_and_leaves_no_unretrieved_error():
    context = FakeContext()
    events: List[str] = []

    async def hang(request: InferenceRequest) -> Dict[str, np.ndarray]:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return {}  # pragma: no cover

    async def fail(request: InferenceRequest) -> Dict[str, np.ndarray]:
        await asyncio.sleep(0)
        raise InvalidArgumentError(f"bad {request.model_name}")

    context.add(_model("hang", ["X"], ["Y"]), hang)
    context.add(_model("f1", ["X"], ["Y"]), fail)
    context.add(_model("f2", ["X"], ["Y"]), fail)
    steps = "".join(_step(n, {"X": "IN"}, {"Y": f"O_{n}"}) for n in ["hang", "f1", "f2"])
    infer = _load(_ensemble(steps, ["IN"], ["O_hang", "O_f1", "O_f2"]), context)[0]
    unretrieved: List[Any] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: unretrieved.append(ctx))
        with pytest.raises(InvalidArgumentError, match=r"^in ensemble 'ens', model 'f[12]': bad f[12]$"):
            await asyncio.wait_for(infer([_request(IN=[[1.0]])]), 10)
        gc.collect()
        await asyncio.sleep(0)

    asyncio.run(main())
    assert events == ["cancelled"]
    assert unretrieved == []


def test_each_request_of_a_batch_goes_through_the_graph_on_its_own():
    context = FakeContext()
    infer = _load(_pipeline(context), context)[0]
    requests = [_request(IN=[[float(i)]]) for i in range(3)]
    outs = asyncio.run(infer(requests))
    assert [float(o["OUT"][0, 0]) for o in outs] == [1.0, 3.0, 5.0]
    assert [c.model_name for c in context.calls].count("pre") == 3  # never concatenated


def test_an_error_in_one_request_of_a_batch_fails_only_that_request():
    context = FakeContext()
    config = _pipeline(context)
    seen: List[float] = []

    async def pre(request: InferenceRequest) -> Dict[str, np.ndarray]:
        value = float(request.inputs["RAW"][0, 0])
        seen.append(value)
        if value == 1.0:
            raise InvalidArgumentError("one is not allowed")
        return {"FEAT": request.inputs["RAW"]}

    context.funcs["pre"] = pre
    infer = _load(config, context)[0]
    outs = asyncio.run(infer([_request(IN=[[float(i)]]) for i in range(3)]))
    assert isinstance(outs[1], InvalidArgumentError)
    assert "in ensemble 'ens', model 'pre': one is not allowed" in str(outs[1])
    assert not isinstance(outs[0], BaseException) and not isinstance(outs[2], BaseException)
    assert sorted(seen) == [0.0, 1.0, 2.0]
