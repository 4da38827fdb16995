"""``sequence_batching`` checks, defaults and control tensors (core/sequence_config.py)."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

from pytriton_lite.core.sequence_config import (
    SequenceConfigError,
    check_sequence_batching,
    complete_sequence_batching,
    controls_of,
)

IO = (
    'input [{ name: "INPUT" data_type: TYPE_INT32 dims: [1] }] output [{ name: "OUT" data_type: TYPE_INT32 dims: [1] }]'
)


def _config(text: str, max_batch_size: int = 8) -> ModelConfigProto:
    return text_format.Parse(f'name: "m" max_batch_size: {max_batch_size} {IO} {text}', ModelConfigProto())


def test_control_tensors_of_every_kind_and_type():
    config = _config(
        """sequence_batching { control_input [
          { name: "S" control [{ kind: CONTROL_SEQUENCE_START int32_false_true: [0, 1] }] },
          { name: "E" control [{ kind: CONTROL_SEQUENCE_END fp32_false_true: [0.5, 2.5] }] },
          { name: "R" control [{ kind: CONTROL_SEQUENCE_READY bool_false_true: [false, true] }] },
          { name: "C" control [{ kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 }] }
        ] }"""
    )
    controls = controls_of(config)
    assert controls.names() == ["S", "E", "R", "C"]
    tensors = dict(controls.tensors(1, controls.corrid_value("77", "m")))
    assert tensors["S"].dtype == np.int32 and tensors["S"].tolist() == [[1]]
    assert tensors["E"].dtype == np.float32 and tensors["E"].tolist() == [[0.5]]
    assert tensors["R"].dtype == np.bool_ and tensors["R"].tolist() == [[True]]
    assert tensors["C"].dtype == np.uint64 and tensors["C"].tolist() == [[77]]
    ending = dict(controls.tensors(2, 5))
    assert ending["S"].tolist() == [[0]] and ending["E"].tolist() == [[2.5]]
    with pytest.raises(ValueError, match="is not an integer"):
        controls.corrid_value("abc", "m")
    with pytest.raises(ValueError, match="does not fit"):
        controls.corrid_value(-1, "m")


def test_string_corrid_and_no_batching_shapes():
    config = _config(
        'sequence_batching { control_input [{ name: "C" control [{ kind: CONTROL_SEQUENCE_CORRID '
        "data_type: TYPE_STRING }] }] }",
        max_batch_size=0,
    )
    controls = controls_of(config)
    ((name, tensor),) = controls.tensors(3, controls.corrid_value(12, "m"))
    assert name == "C" and tensor.shape == (1,) and tensor.dtype == object and tensor[0] == b"12"


def test_defaults_are_filled_in_as_triton_does():
    config = _config("sequence_batching { oldest { } }", max_batch_size=4)
    complete_sequence_batching(config)
    section = config.sequence_batching
    assert section.max_sequence_idle_microseconds == 1_000_000
    assert list(section.oldest.preferred_batch_size) == [4]
    assert section.oldest.max_candidate_sequences == 4


@pytest.mark.parametrize(
    "text, message",
    [
        ('sequence_batching { state [{ input_name: "A" output_name: "B" }] }', "implicit state"),
        ("sequence_batching { iterative_sequence: true }", "iterative_sequence"),
        ("sequence_batching { oldest { preferred_batch_size: [16] } }", "preferred batch size must be <="),
        ("sequence_batching { direct { minimum_slot_utilization: 2 } }", "minimum_slot_utilization"),
        (
            'sequence_batching { control_input [{ name: "S" control [{ kind: CONTROL_SEQUENCE_START }] }] }',
            "must specify exactly one of",
        ),
        (
            'sequence_batching { control_input [{ name: "S" control [{ kind: CONTROL_SEQUENCE_START '
            "int32_false_true: [1] }] }] }",
            "must have two entries",
        ),
        (
            'sequence_batching { control_input [{ name: "A" control [{ kind: CONTROL_SEQUENCE_READY '
            'int32_false_true: [0, 1] }] }, { name: "B" control [{ kind: CONTROL_SEQUENCE_READY '
            "int32_false_true: [0, 1] }] }] }",
            "multiple CONTROL_SEQUENCE_READY tensors",
        ),
        (
            'sequence_batching { control_input [{ name: "C" control [{ kind: CONTROL_SEQUENCE_CORRID '
            "data_type: TYPE_FP32 }] }] }",
            "unexpected control data type",
        ),
        (
            'sequence_batching { control_input [{ name: "INPUT" control [{ kind: CONTROL_SEQUENCE_READY '
            "int32_false_true: [0, 1] }] }] }",
            "also declared as a model input",
        ),
        ("sequence_batching { } response_cache { enable: true }", "response cache cannot serve a sequence model"),
    ],
)
def test_what_cannot_be_served_is_refused_by_name(text, message):
    with pytest.raises(SequenceConfigError, match=message):
        check_sequence_batching(_config(text))


def test_a_config_without_sequence_batching_is_left_alone():
    config = _config("dynamic_batching { }")
    check_sequence_batching(config)
    complete_sequence_batching(config)
    assert not config.HasField("sequence_batching")
