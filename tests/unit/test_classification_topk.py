"""protocol/classification.py: Triton's top-K "value:index[:label]" strings, shapes, clamping and errors."""

from __future__ import annotations

import numpy as np
import pytest
from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol.classification import classify_response, parse_count, top_k
from pytriton_lite.types import InferenceResponse, ModelInfo, ModelState, TensorInfo


def _strings(array):
    return [[item.decode() for item in row] for row in array] if array.ndim == 2 else [x.decode() for x in array]


def test_the_protocol_docs_example():
    # [1, 5, 10, 4]: top 2 by index is [2, 1]
    result = top_k(np.array([1, 5, 10, 4], dtype=np.int32), 2, batched=False)
    assert result.dtype == object and result.shape == (2,)
    assert _strings(result) == ["10:2", "5:1"]


def test_floats_print_like_std_to_string():
    result = top_k(np.array([0.25, 15.34623, -1.0], dtype=np.float32), 3, batched=False)
    assert _strings(result) == ["15.346230:1", "0.250000:0", "-1.000000:2"]
    result = top_k(np.array([1e-9, 2.5], dtype=np.float64), 2, batched=False)
    assert _strings(result) == ["2.500000:1", "0.000000:0"]


def test_batched_rows_are_classified_apart_with_labels():
    scores = np.array([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]], dtype=np.float32)
    result = top_k(scores, 2, batched=True, labels=("cat", "dog", "bird"))
    assert result.shape == (2, 2)
    assert _strings(result) == [["0.700000:1:dog", "0.200000:2:bird"], ["0.900000:0:cat", "0.050000:1:dog"]]


def test_batched_rows_flatten_their_trailing_dims():
    scores = np.arange(12, dtype=np.int64).reshape(2, 2, 3)  # each row has 6 classes
    result = top_k(scores, 2, batched=True)
    assert _strings(result) == [["5:5", "4:4"], ["11:5", "10:4"]]


def test_non_batching_model_classifies_the_whole_tensor():
    result = top_k(np.array([[3, 1], [4, 2]], dtype=np.uint8), 3, batched=False)
    assert result.shape == (3,)
    assert _strings(result) == ["4:2", "3:0", "2:3"]


def test_count_is_clamped_to_the_class_count():
    result = top_k(np.array([[1.0, 2.0]], dtype=np.float32), 10, batched=True)
    assert result.shape == (1, 2)
    assert _strings(result) == [["2.000000:1", "1.000000:0"]]


def test_ties_keep_the_lower_index_first():
    result = top_k(np.array([2, 7, 2, 7, 1], dtype=np.int16), 5, batched=False)
    assert _strings(result) == ["7:1", "7:3", "2:0", "2:2", "1:4"]


def test_unsigned_extremes_sort_correctly():
    values = np.array([0, np.iinfo(np.uint64).max, 5], dtype=np.uint64)
    assert _strings(top_k(values, 3, batched=False)) == ["18446744073709551615:1", "5:2", "0:0"]


def test_missing_or_empty_labels_leave_the_label_out():
    result = top_k(np.array([1, 2, 3], dtype=np.int32), 3, batched=False, labels=("a", ""))
    assert _strings(result) == ["3:2", "2:1", "1:0:a"]


def test_empty_batch():
    result = top_k(np.zeros((0, 4), dtype=np.float32), 2, batched=True)
    assert result.shape == (0, 2)


@pytest.mark.parametrize(
    ("array", "name"),
    [
        (np.array([b"a", b"b"], dtype=object), "BYTES"),
        (np.array([1.0, 2.0], dtype=np.float16), "FP16"),
        (np.array([True, False]), "BOOL"),
    ],
)
def test_unsupported_types_are_tritons_error(array, name):
    with pytest.raises(InvalidArgumentError) as info:
        top_k(array, 1, batched=False, output="OUT", model="m")
    assert str(info.value) == (
        f"class result not available for output due to unsupported type '{name}' for output 'OUT' for model 'm'"
    )


@pytest.mark.parametrize("value", ["3", 1.5, True, None, -1])
def test_parse_count_refuses_non_unsigned_integers(value):
    with pytest.raises(InvalidArgumentError, match="'classification'.*output 'O' for model 'm'"):
        parse_count(value, "O", "m")


def test_parse_count_accepts_zero_and_positive():
    assert parse_count(0, "O", "m") == 0 and parse_count(5, "O", "m") == 5


def _info(max_batch_size, labels=()):
    return ModelInfo(
        name="m",
        version=1,
        state=ModelState.READY,
        reason="",
        decoupled=False,
        max_batch_size=max_batch_size,
        inputs=(),
        outputs=(TensorInfo("P", "FP32", (3,), labels=labels), TensorInfo("Q", "INT32", (2,))),
        config=ModelConfigProto(name="m"),
    )


def test_classify_response_replaces_only_the_asked_outputs():
    response = InferenceResponse(
        "m",
        "1",
        {"P": np.array([[0.1, 0.5, 0.4]], dtype=np.float32), "Q": np.array([[1, 2]], dtype=np.int32)},
        id="r1",
        parameters={"x": 1},
    )
    result = classify_response(response, {"P": 1, "Q": 0}, _info(4, labels=("a", "b", "c")))
    assert _strings(result.outputs["P"]) == [["0.500000:1:b"]]
    assert result.outputs["Q"] is response.outputs["Q"]
    assert (result.id, result.parameters, result.model_version) == ("r1", {"x": 1}, "1")
    assert classify_response(response, {}, _info(4)) is response


def test_classify_response_non_batching_model():
    response = InferenceResponse("m", "1", {"P": np.array([0.1, 0.5, 0.4], dtype=np.float32)})
    result = classify_response(response, {"P": 2}, _info(0))
    assert _strings(result.outputs["P"]) == ["0.500000:1", "0.400000:2"]
