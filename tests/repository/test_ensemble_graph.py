"""The ensemble backend's load-time checks (``_ensemble_graph.build_plan``): every refusal names the problem."""

from __future__ import annotations

from typing import Dict

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from pytriton_lite.exceptions import ModelNotFoundError
from pytriton_lite.repository.backend import ModelLoadError
from pytriton_lite.repository.backends._ensemble_graph import build_plan


def _config(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


PRE = """
name: "pre" backend: "python" max_batch_size: 8
input [{ name: "RAW" data_type: TYPE_FP32 dims: [ 4 ] }]
output [{ name: "FEAT" data_type: TYPE_FP32 dims: [ 4 ] }]
"""
CLS = """
name: "cls" backend: "python" max_batch_size: 8
input [{ name: "X" data_type: TYPE_FP32 dims: [ -1 ] },
       { name: "HINT" data_type: TYPE_INT32 dims: [ 1 ] optional: true }]
output [{ name: "Y" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "AUX" data_type: TYPE_INT64 dims: [ 1 ] }]
"""

STEPS: Dict[str, model_config_pb2.ModelConfig] = {"pre": _config(PRE), "cls": _config(CLS)}


def _lookup(name: str, version: str = "") -> model_config_pb2.ModelConfig:
    if name not in STEPS or version not in ("", "1"):
        suffix = f" version {version}" if version else ""
        raise ModelNotFoundError(f"Request for unknown model: '{name}'{suffix} is not found")
    return STEPS[name]


def _ensemble(steps: str, *, max_batch_size: int = 8, extra: str = "", io: str = "") -> model_config_pb2.ModelConfig:
    io = (
        io
        or """
    input [{ name: "IN" data_type: TYPE_FP32 dims: [ 4 ] }]
    output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] }]
    """
    )
    return _config(
        f'name: "ens" platform: "ensemble" max_batch_size: {max_batch_size} {io} {extra} '
        f"ensemble_scheduling {{ {steps} }}"
    )


PIPELINE = """
step [
  { model_name: "pre" model_version: -1 input_map { key: "RAW" value: "IN" } output_map { key: "FEAT" value: "f" } },
  { model_name: "cls" model_version: 1 input_map { key: "X" value: "f" } output_map { key: "Y" value: "OUT" } }
]
"""


def test_a_pipeline_becomes_a_plan():
    plan = build_plan(_ensemble(PIPELINE), _lookup)
    assert plan.name == "ens"
    assert plan.inputs == ("IN",) and plan.outputs == ("OUT",)
    assert [(s.model_name, s.model_version) for s in plan.steps] == [("pre", ""), ("cls", "1")]
    assert plan.steps[0].inputs == (("RAW", "IN"),) and plan.steps[1].outputs == (("Y", "OUT"),)
    assert plan.consumers == {"IN": (0,), "f": (1,)}
    assert plan.steps[1].label == "step 1 (model 'cls')"


def test_steps_are_checked_whatever_their_order_in_the_config():
    reversed_steps = """
    step [
      { model_name: "cls" model_version: -1 input_map { key: "X" value: "f" } output_map { key: "Y" value: "OUT" } },
      { model_name: "pre" model_version: -1 input_map { key: "RAW" value: "IN" } output_map { key: "FEAT" value: "f" } }
    ]
    """
    plan = build_plan(_ensemble(reversed_steps), _lookup)
    assert plan.consumers == {"f": (0,), "IN": (1,)}


def _refused(config: model_config_pb2.ModelConfig) -> str:
    with pytest.raises(ModelLoadError) as info:
        build_plan(config, _lookup)
    return str(info.value)


def test_no_steps_is_refused():
    assert "must specify ensemble_scheduling with at least one step" in _refused(_ensemble(""))
    assert "must specify ensemble_scheduling" in _refused(_config('name: "ens" platform: "ensemble"'))


def test_a_decoupled_ensemble_is_refused():
    config = _ensemble(PIPELINE, extra="model_transaction_policy { decoupled: true }")
    assert "ensemble 'ens' is decoupled" in _refused(config)


def test_a_step_without_model_name_or_with_a_bad_version_is_refused():
    no_name = 'step [{ input_map { key: "RAW" value: "IN" } output_map { key: "FEAT" value: "OUT" } }]'
    assert "step 0 of ensemble 'ens' does not name a model" in _refused(_ensemble(no_name))
    zero = PIPELINE.replace("model_version: 1", "model_version: 0")
    assert "step 1 (model 'cls') of ensemble 'ens' has model_version 0 (not set): use -1" in _refused(_ensemble(zero))
    unset = PIPELINE.replace("model_version: 1", "")
    assert "has model_version 0 (not set)" in _refused(_ensemble(unset))
    negative = PIPELINE.replace("model_version: 1", "model_version: -2")
    assert "has model_version -2: use -1" in _refused(_ensemble(negative))


def test_a_step_without_outputs_is_refused():
    steps = PIPELINE.replace('output_map { key: "FEAT" value: "f" }', "")
    assert "step 0 (model 'pre') of ensemble 'ens' maps no output" in _refused(_ensemble(steps))


def test_a_tensor_produced_twice_is_refused():
    steps = PIPELINE.replace('output_map { key: "FEAT" value: "f" }', 'output_map { key: "FEAT" value: "OUT" }')
    message = _refused(_ensemble(steps))
    assert "ensemble tensor 'OUT' is produced by more than one step" in message
    assert "step 0 (model 'pre') and step 1 (model 'cls')" in message


def test_a_step_writing_an_ensemble_input_is_refused():
    steps = PIPELINE.replace('output_map { key: "FEAT" value: "f" }', 'output_map { key: "FEAT" value: "IN" }')
    assert "ensemble tensor 'IN' is an input of the ensemble and also an output of step 0" in _refused(_ensemble(steps))


def test_a_step_input_from_nowhere_is_refused():
    steps = PIPELINE.replace('input_map { key: "X" value: "f" }', 'input_map { key: "X" value: "nowhere" }')
    message = _refused(_ensemble(steps))
    assert "input 'X' of step 1 (model 'cls') is mapped from ensemble tensor 'nowhere'" in message
    assert "neither an ensemble input nor an output of any step" in message


def test_an_unused_ensemble_input_is_refused():
    io = """
    input [{ name: "IN" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "SPARE" data_type: TYPE_FP32 dims: [ 4 ] }]
    output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] }]
    """
    assert "ensemble input 'SPARE' is not used by any step" in _refused(_ensemble(PIPELINE, io=io))


def test_an_ensemble_output_nobody_produces_is_refused():
    io = """
    input [{ name: "IN" data_type: TYPE_FP32 dims: [ 4 ] }]
    output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "MORE" data_type: TYPE_FP32 dims: [ 4 ] }]
    """
    assert "ensemble output 'MORE' is not produced by any step" in _refused(_ensemble(PIPELINE, io=io))


def test_a_cycle_is_refused():
    # pre reads g (written by cls), cls reads f (written by pre): neither can start
    steps = """
    step [
      { model_name: "pre" model_version: -1 input_map { key: "RAW" value: "g" } output_map { key: "FEAT" value: "f" } },
      { model_name: "cls" model_version: -1 input_map [{ key: "X" value: "f" }, { key: "HINT" value: "IN" }]
        output_map [{ key: "Y" value: "OUT" }, { key: "AUX" value: "g" }] }
    ]
    """
    io = """
    input [{ name: "IN" data_type: TYPE_INT32 dims: [ 1 ] }]
    output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] }]
    """
    message = _refused(_ensemble(steps, io=io))
    assert "the steps form a cycle" in message
    assert "step 0 (model 'pre'), step 1 (model 'cls')" in message


def test_a_missing_step_model_is_refused_naming_it():
    steps = PIPELINE.replace('model_name: "cls"', 'model_name: "absent"')
    message = _refused(_ensemble(steps))
    assert "ensemble 'ens' needs model 'absent' version 1 for step 1, which is not loaded" in message
    assert "Request for unknown model: 'absent' version 1 is not found" in message
    wrong_version = PIPELINE.replace("model_version: 1", "model_version: 3")
    assert "needs model 'cls' version 3 for step 1" in _refused(_ensemble(wrong_version))


def test_a_decoupled_step_is_refused():
    STEPS["dec"] = _config(PRE.replace('name: "pre"', 'name: "dec"') + "model_transaction_policy { decoupled: true }")
    try:
        steps = PIPELINE.replace('model_name: "pre"', 'model_name: "dec"')
        assert "decoupled model in step 0 (model 'dec')" in _refused(_ensemble(steps))
    finally:
        del STEPS["dec"]


def test_the_ensemble_may_not_batch_more_than_a_step():
    message = _refused(_ensemble(PIPELINE, max_batch_size=16))
    assert "ensemble 'ens' allows maximum batch size 16, but it contains model 'pre'" in message
    assert "only allows maximum batch size to be 8" in message


def test_map_names_must_exist_in_the_step_model():
    bad_input = PIPELINE.replace('key: "RAW"', 'key: "RAWW"')
    message = _refused(_ensemble(bad_input))
    assert "input_map of step 0 (model 'pre') names input 'RAWW', which the model does not have" in message
    assert "(its inputs: RAW)" in message
    bad_output = PIPELINE.replace('key: "Y"', 'key: "Z"')
    assert "output_map of step 1 (model 'cls') names output 'Z'" in _refused(_ensemble(bad_output))


def test_a_required_step_input_must_be_mapped_but_an_optional_one_need_not():
    build_plan(_ensemble(PIPELINE), _lookup)  # cls's optional HINT is not mapped: fine
    STEPS["two"] = _config(CLS.replace('name: "cls"', 'name: "two"').replace("optional: true", ""))  # HINT required now
    try:
        steps = PIPELINE.replace('model_name: "cls"', 'model_name: "two"')
        assert "required input 'HINT' of step 1 (model 'two') is not mapped" in _refused(_ensemble(steps))
    finally:
        del STEPS["two"]


def test_data_types_must_agree_along_a_tensor():
    io = """
    input [{ name: "IN" data_type: TYPE_INT32 dims: [ 4 ] }]
    output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] }]
    """
    message = _refused(_ensemble(PIPELINE, io=io))
    assert "ensemble tensor 'IN': inconsistent data type: TYPE_INT32 is inferred from ensemble 'ens'" in message
    assert "while TYPE_FP32 is inferred from model 'pre'" in message


def test_shapes_must_agree_along_a_tensor_with_wildcards():
    io = """
    input [{ name: "IN" data_type: TYPE_FP32 dims: [ 4 ] }]
    output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 5 ] }]
    """
    message = _refused(_ensemble(PIPELINE, io=io))
    assert "ensemble tensor 'OUT': inconsistent shape: [-1,5] is inferred from ensemble 'ens'" in message
    assert "while [-1,4] is inferred from model 'cls'" in message
    # cls reads f as [-1,-1]: pre writes [-1,4]; the wildcard matches
    build_plan(_ensemble(PIPELINE), _lookup)


def test_an_unbatched_ensemble_feeds_a_batching_step_its_first_dim_as_batch():
    io = """
    input [{ name: "IN" data_type: TYPE_FP32 dims: [ -1, 4 ] }]
    output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 2, 4 ] }]
    """
    plan = build_plan(_ensemble(PIPELINE, max_batch_size=0, io=io), _lookup)
    assert len(plan.steps) == 2
    bad = io.replace("[ -1, 4 ]", "[ 4 ]")
    assert "inconsistent shape: [4] is inferred from ensemble 'ens' while [-1,4]" in _refused(
        _ensemble(PIPELINE, max_batch_size=0, io=bad)
    )


def test_a_reshaped_end_is_not_shape_checked():
    io = """
    input [{ name: "IN" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape { shape: [ 4 ] } }]
    output [{ name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] }]
    """
    build_plan(_ensemble(PIPELINE, io=io), _lookup)


def test_an_unknown_data_type_number_is_printed_as_a_number():
    from pytriton_lite.repository.backends import _ensemble_graph

    assert _ensemble_graph._type_name(999) == "999"
    assert _ensemble_graph._type_name(model_config_pb2.TYPE_FP16) == "TYPE_FP16"
