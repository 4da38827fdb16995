"""core.dataplane / core.registry: Triton's lookup rules, version policies, states and statistics selection."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Iterator

import numpy as np
import pytest

from pytriton_lite.core.dataplane import InProcessDataPlane
from pytriton_lite.core.model import Model
from pytriton_lite.core.registry import selected_versions
from pytriton_lite.exceptions import DecoupledModelError, InvalidArgumentError, ModelNotFoundError, UnavailableError
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.types import InferenceRequest, ModelInfo, ModelState, StatsSnapshot

IN = [Tensor(name="x", shape=(-1,), dtype=np.float32)]
OUT = [Tensor(name="y", shape=(-1,), dtype=np.float32)]


def _echo(requests):
    return [{"y": r["x"]} for r in requests]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _model(name: str, version: int = 1, config: ModelConfig | None = None) -> Model:
    return Model(name, version, [_echo], IN, OUT, config or ModelConfig(max_batch_size=4))


def _plane(loop, *specs) -> InProcessDataPlane:
    plane = InProcessDataPlane(loop)
    for name, version, ready in specs:
        plane.add_model(_model(name, version), ready=ready)
    return plane


def _stop(plane: InProcessDataPlane) -> None:
    plane.stop_models()
    plane.join_instances(5.0)


def test_models_are_frozen_infos_with_states(loop):
    plane = _plane(loop, ("a", 1, True), ("a", 2, False))
    try:
        infos = plane.models()
        assert [(m.name, m.version, m.state) for m in infos] == [
            ("a", 1, ModelState.READY),
            ("a", 2, ModelState.LOADING),
        ]
        info = infos[0]
        assert isinstance(info, ModelInfo) and info.ready and not infos[1].ready
        with pytest.raises(dataclasses.FrozenInstanceError):
            info.name = "b"  # type: ignore[misc]
        assert [(t.name, t.datatype, t.shape) for t in info.inputs] == [("x", "FP32", (-1,))]
        assert info.config.max_batch_size == 4 and info.config.backend == "python"
        assert not plane.ready()  # a LOADING version keeps the server not ready
        plane.set_state("a", 2, ModelState.READY)
        assert plane.ready()
    finally:
        _stop(plane)


def test_no_version_goes_to_the_highest_served_version(loop):
    plane = _plane(loop, ("a", 1, True), ("a", 3, False), ("a", 2, True))
    try:
        assert plane.model("a").version == 2  # 3 is still loading
        assert plane.served_versions("a") == (1, 2)
        assert plane.model("a", "3").state is ModelState.LOADING
        assert not plane.model_ready("a", "3") and plane.model_ready("a")
    finally:
        _stop(plane)


def test_lookup_errors_keep_tritons_wording(loop):
    plane = _plane(loop, ("a", 1, True))
    try:
        with pytest.raises(ModelNotFoundError, match="Request for unknown model: 'b' is not found"):
            plane.model("b")
        with pytest.raises(ModelNotFoundError, match="'a' version 9 is not found"):
            plane.model("a", "9")
        with pytest.raises(InvalidArgumentError, match="version string 'v1'"):
            plane.model("a", "v1")
    finally:
        _stop(plane)


def test_version_policies_select_like_triton():
    from tritonclient.grpc import model_config_pb2

    versions = [3, 1, 2, 10]
    latest2 = model_config_pb2.ModelVersionPolicy()
    latest2.latest.num_versions = 2
    assert selected_versions(latest2, versions) == [3, 10]
    everything = model_config_pb2.ModelVersionPolicy()
    everything.all.SetInParent()
    assert selected_versions(everything, versions) == [1, 2, 3, 10]
    specific = model_config_pb2.ModelVersionPolicy()
    specific.specific.versions.extend([1, 3, 7])
    assert selected_versions(specific, versions) == [1, 3]
    assert selected_versions(model_config_pb2.ModelVersionPolicy(), versions) == [10]  # unset = latest 1


def test_latest_one_policy_hides_older_versions(loop):
    from tritonclient.grpc import model_config_pb2

    plane = InProcessDataPlane(loop)
    try:
        for version in (1, 2):
            model = _model("p", version)
            model.served.version_policy.CopyFrom(model_config_pb2.ModelVersionPolicy())  # latest 1 (Triton default)
            plane.add_model(model)
        assert plane.served_versions("p") == (2,)
        with pytest.raises(ModelNotFoundError, match="'p' version 1 is not found"):
            plane.model("p", "1")
    finally:
        _stop(plane)


def _inference_counts(snapshots):
    return [(s.name, s.version) for s in snapshots]


def test_statistics_select_like_triton(loop):
    plane = _plane(loop, ("a", 1, True), ("a", 2, True), ("b", 1, True), ("c", 1, False))
    try:
        assert all(isinstance(s, StatsSnapshot) for s in plane.statistics())
        assert _inference_counts(plane.statistics()) == [("a", 1), ("a", 2), ("b", 1)]
        assert _inference_counts(plane.statistics("a")) == [("a", 1), ("a", 2)]
        assert _inference_counts(plane.statistics("a", "2")) == [("a", 2)]
        assert _inference_counts(plane.statistics("b", "")) == [("b", 1)]
        assert _inference_counts(plane.all_statistics()) == [("a", 1), ("a", 2), ("b", 1), ("c", 1)]
    finally:
        _stop(plane)


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("x", "", "requested model 'x' is not available"),
        ("x", "1", "requested model 'x' is not available"),
        ("c", "", "requested model 'c' is not available"),  # not ready = not available
        ("a", "7", "requested model version is not available for model 'a'"),
    ],
)
def test_statistics_errors_are_invalid_argument_not_404(loop, name, version, message):
    plane = _plane(loop, ("a", 1, True), ("c", 1, False))
    try:
        with pytest.raises(InvalidArgumentError) as info:
            plane.statistics(name, version)
        assert str(info.value) == message
        assert info.value.http_status == 400 and info.value.grpc_code == "INVALID_ARGUMENT"
        with pytest.raises(InvalidArgumentError, match="version string 'v1'"):
            plane.statistics("a", "v1")
    finally:
        _stop(plane)


def test_decoupled_model_on_plain_infer_is_one_typed_error(loop):
    plane = InProcessDataPlane(loop)
    plane.add_model(_model("d", 1, ModelConfig(decoupled=True, batching=False)))
    try:
        request = InferenceRequest("d", inputs={"x": np.zeros(2, np.float32)})
        with pytest.raises(DecoupledModelError) as info:
            loop.run_until_complete(plane.infer(request))
        assert info.value.model == "d" and info.value.grpc_code == "UNIMPLEMENTED"
    finally:
        _stop(plane)


def test_remove_model_drains_then_forgets_it(loop):
    plane = _plane(loop, ("a", 1, True), ("b", 1, True))
    try:

        async def scenario():
            request = InferenceRequest("a", inputs={"x": np.ones((1, 2), np.float32)})
            running = asyncio.ensure_future(plane.infer(request))
            await asyncio.sleep(0)  # queued before the unload starts
            removal = asyncio.ensure_future(plane.remove_model("a", 1, timeout=5.0))
            await asyncio.sleep(0)
            with pytest.raises(UnavailableError):  # UNLOADING: new requests are refused
                await plane.infer(request)
            response = await running  # the queued one still finishes
            assert await removal is True
            return response

        response = loop.run_until_complete(scenario())
        assert response.outputs["y"].tolist() == [[1.0, 1.0]]
        assert [m.name for m in plane.models()] == ["b"]
        with pytest.raises(ModelNotFoundError):
            plane.model("a")
        assert plane.instances_alive()  # b's instances are untouched; a's are gone from the set
    finally:
        _stop(plane)


def test_in_process_data_plane_has_every_method_of_the_protocol_with_its_signature():
    import inspect

    from pytriton_lite.core.api import DataPlane

    members = [n for n in vars(DataPlane) if not n.startswith("_")]
    assert {"model", "models", "statistics", "infer", "infer_stream", "remove_model"} <= set(members)
    for name in members:
        declared = getattr(DataPlane, name)
        implemented = getattr(InProcessDataPlane, name)
        if isinstance(declared, property):
            assert isinstance(implemented, property), name
            continue
        assert inspect.signature(implemented) == inspect.signature(declared), name


# --- submit: front-end workers' requests, answered through a reply callback ---------------------------


def _failing(requests):
    raise ValueError("boom")


def _request(rows: int = 1, **kwargs) -> InferenceRequest:
    return InferenceRequest("m", "", {"x": np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)}, **kwargs)


def test_submit_hands_each_outcome_to_its_reply_once(loop):
    plane = InProcessDataPlane(loop)
    plane.add_model(_model("m", config=ModelConfig(max_batch_size=8)))
    got: list = []

    async def scenario():
        items = [plane.submit(_request(id=str(i)), got.append) for i in range(5)]
        assert all(item is not None for item in items)
        while len(got) < 5:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)  # nothing more arrives

    loop.run_until_complete(asyncio.wait_for(scenario(), 10))
    assert sorted(r.id for r in got) == ["0", "1", "2", "3", "4"]
    assert all(r.outputs["y"].tolist() == [[0.0, 1.0]] for r in got)
    assert plane.statistics("m")[0].inference_count == 5
    plane.stop_models()


def test_submit_replies_with_the_models_error_and_refuses_at_admission(loop):
    plane = InProcessDataPlane(loop)
    plane.add_model(Model("m", 1, [_failing], IN, OUT, ModelConfig(max_batch_size=8)))
    got: list = []

    async def scenario():
        plane.submit(_request(), got.append)
        while not got:
            await asyncio.sleep(0.001)

    loop.run_until_complete(asyncio.wait_for(scenario(), 10))
    assert len(got) == 1 and "boom" in str(got[0])
    with pytest.raises(InvalidArgumentError, match="missing required input"):
        plane.submit(InferenceRequest("m", "", {"z": np.zeros((1, 2), np.float32)}), got.append)
    with pytest.raises(ModelNotFoundError):
        plane.submit(InferenceRequest("nope", "", {}), got.append)
    assert len(got) == 1  # refused requests raise; they are never replied to
    plane.stop_models()


def test_a_cancelled_submit_is_dropped_unreplied_and_counted_as_cancelled(loop):
    gate, entered = threading.Event(), threading.Event()

    def held(requests):
        entered.set()
        assert gate.wait(10)
        return [{"y": r["x"]} for r in requests]

    plane = InProcessDataPlane(loop)
    plane.add_model(Model("m", 1, [held], IN, OUT, ModelConfig(max_batch_size=1)))
    got: list = []

    async def scenario():
        plane.submit(_request(id="running"), got.append)
        while not entered.is_set():
            await asyncio.sleep(0.001)
        doomed = plane.submit(_request(id="doomed"), got.append)
        kept = plane.submit(_request(id="kept"), got.append)
        assert doomed is not None and kept is not None
        doomed.cancel()
        gate.set()
        while len(got) < 2:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)

    loop.run_until_complete(asyncio.wait_for(scenario(), 10))
    assert [r.id for r in got] == ["running", "kept"]
    stats = plane.statistics("m")[0]
    assert stats.inference_count == 2 and dict(stats.failures).get("CANCELED") == 1
    plane.stop_models()


def test_submit_leaves_traced_requests_to_infer(loop):
    plane = InProcessDataPlane(loop)
    plane.add_model(_model("m"))
    plane.trace.update("", {"trace_level": ["TIMESTAMPS"], "trace_rate": "1"})
    assert plane.trace.active
    assert plane.submit(_request(), lambda outcome: None) is None
    plane.stop_models()


def test_answered_requests_leave_no_reference_cycles(loop):
    """Every request is freed by reference counting: a cycle per request (item <-> its batch) made the garbage
    collector scan what was in flight, a sixth of the serving process's CPU with front-end workers."""
    import gc

    plane = InProcessDataPlane(loop)
    plane.add_model(_model("m", config=ModelConfig(max_batch_size=8)))
    got: list = []

    async def scenario(n: int) -> None:
        for i in range(n):
            plane.submit(_request(id=str(i)), got.append)
        while len(got) < n:
            await asyncio.sleep(0.001)
        await asyncio.gather(*(plane.infer(_request()) for _ in range(n)))

    loop.run_until_complete(asyncio.wait_for(scenario(20), 10))  # warm: lazily made objects exist now
    got.clear()
    gc.collect()
    gc.disable()
    try:
        loop.run_until_complete(asyncio.wait_for(scenario(200), 10))
        got.clear()
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert unreachable == 0
    plane.stop_models()
