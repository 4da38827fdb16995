"""What the onnxruntime and pytorch backends share: batching along dim 0 and the parameter helpers."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from pytriton_lite.exceptions import ModelExecutionError
from pytriton_lite.repository.backend import InstancePlacement, ModelLoadError
from pytriton_lite.repository.backends._onnx_torch_common import (
    bool_parameter,
    group_name,
    infer_batched,
    int_parameter,
    parameter,
    require_inputs_outputs,
    shape_str,
)
from pytriton_lite.types import Request


class Recorder:
    def __init__(self, transform=lambda feeds: {"y": feeds["x"] * 2}) -> None:
        self.calls: List[Dict[str, np.ndarray]] = []
        self.wanted: List[Optional[Sequence[str]]] = []
        self.transform = transform

    def __call__(self, feeds: Dict[str, np.ndarray], wanted: Optional[Sequence[str]]) -> Dict[str, np.ndarray]:
        self.calls.append(feeds)
        self.wanted.append(wanted)
        return self.transform(feeds)


def r(x: np.ndarray, outputs: Optional[List[str]] = None) -> Request:
    return Request(data={"x": x}, requested_output_names=outputs)


def test_concatenates_equal_shapes_and_splits_in_order():
    run = Recorder()
    requests = [r(np.full((n, 2), n, np.float32)) for n in (2, 1, 3)]
    results = infer_batched(requests, 8, run, "m")
    assert len(run.calls) == 1 and run.calls[0]["x"].shape == (6, 2)
    assert [res["y"].tolist() for res in results] == [[[4, 4]] * 2, [[2, 2]], [[6, 6]] * 3]


def test_groups_by_shape_and_dtype_keeping_request_order():
    run = Recorder()
    requests = [r(np.ones((1, 2), np.float32)), r(np.ones((1, 3), np.float32)), r(np.ones((1, 2), np.float64))]
    requests.append(r(np.ones((1, 2), np.float32)))
    results = infer_batched(requests, 8, run, "m")
    assert sorted((c["x"].shape, c["x"].dtype.str) for c in run.calls) == [
        ((1, 2), "<f8"),
        ((1, 3), "<f4"),
        ((2, 2), "<f4"),
    ]
    assert [res["y"].shape for res in results] == [(1, 2), (1, 3), (1, 2), (1, 2)]
    assert results[2]["y"].dtype == np.float64


def test_without_batching_each_request_runs_alone_and_keeps_its_outputs_request():
    run = Recorder()
    infer_batched([r(np.ones(2), ["y"]), r(np.ones(2))], 0, run, "m")
    assert len(run.calls) == 2 and run.wanted == [["y"], None]


def test_requested_outputs_union():
    run = Recorder()
    infer_batched([r(np.ones((1, 1)), ["a"]), r(np.ones((1, 1)), ["b", "a"])], 4, run, "m")
    assert run.wanted == [["a", "b"]]
    infer_batched([r(np.ones((1, 1)), ["a"]), r(np.ones((1, 1)))], 4, run, "m")
    assert run.wanted[-1] is None


def test_requests_without_inputs_or_with_scalars_run_alone():
    run = Recorder(lambda feeds: {})
    empty = Request(data={})
    results = infer_batched([empty, Request(data={}), r(np.float32(1.0) * np.ones(()))], 4, run, "m")
    assert len(run.calls) == 3 and results == [{}, {}, {}]


def test_an_output_without_the_batch_dimension_fails_the_batch():
    run = Recorder(lambda feeds: {"y": feeds["x"].sum(axis=0)})
    with pytest.raises(ModelExecutionError, match=r"output 'y' of model 'm' has shape \[2\] for a batch of 3"):
        infer_batched([r(np.ones((1, 2))), r(np.ones((2, 2)))], 4, run, "m")
    run = Recorder(lambda feeds: {"y": np.float32(1.0) * np.ones(())})
    with pytest.raises(ModelExecutionError, match="has a scalar for a batch of 2"):
        infer_batched([r(np.ones((1, 2))), r(np.ones((1, 2)))], 4, run, "m")


def _cfg(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse('name: "m" ' + text, model_config_pb2.ModelConfig())


def test_parameters():
    cfg = _cfg(
        'parameters { key: "on" value: { string_value: " TRUE " } } '
        'parameters { key: "off" value: { string_value: "0" } } '
        'parameters { key: "n" value: { string_value: "12" } } '
        'parameters { key: "empty" value: { string_value: "" } }'
    )
    assert parameter(cfg, "on") == "TRUE" and parameter(cfg, "absent") is None
    assert "absent" not in cfg.parameters
    assert bool_parameter(cfg, "on", False) and not bool_parameter(cfg, "off", True)
    assert bool_parameter(cfg, "empty", True) and not bool_parameter(cfg, "absent", False)
    assert int_parameter(cfg, "n", 0) == 12 and int_parameter(cfg, "absent", 7) == 7
    with pytest.raises(ModelLoadError, match="to an integer"):
        int_parameter(cfg, "on", 0)
    with pytest.raises(ModelLoadError, match="to a boolean"):
        bool_parameter(cfg, "n", False)


def test_group_name_and_shapes():
    cfg = _cfg('instance_group [{ name: "m_0" count: 2 }, { name: "m_0_gpu" count: 1 }]')
    assert group_name(cfg, InstancePlacement("m_0_1", "KIND_CPU", 0, 1)) == "m_0"
    assert group_name(cfg, InstancePlacement("m_0_gpu", "KIND_GPU", 0, 2)) == "m_0_gpu"
    assert group_name(cfg, InstancePlacement("other", "KIND_CPU", 0, 0)) == "other"
    assert shape_str([-1, 4]) == "[-1,4]" and shape_str([]) == "[]"


def test_require_inputs_outputs():
    require_inputs_outputs("m", _cfg('input [{name: "a"}] output [{name: "b"}]'), "pytorch")
    with pytest.raises(ModelLoadError, match="must contain at least one input and one output"):
        require_inputs_outputs("m", _cfg(""), "pytorch")
    with pytest.raises(ModelLoadError, match="must contain at least one output, none were specified"):
        require_inputs_outputs("m", _cfg('input [{name: "a"}]'), "pytorch")
