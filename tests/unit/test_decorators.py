"""Unit tests of pytriton_lite.decorators (PyTriton's decorators: semantics, errors, messages)."""

from __future__ import annotations

import asyncio
import inspect
import pathlib
import re
from typing import Any, List, Optional

import numpy as np
import pytest

from pytriton_lite.decorators import (
    ConstantPadder,
    ModelConfigDict,
    TritonContext,
    attach_triton_context,
    batch,
    convert_output,
    fill_optionals,
    first_value,
    get_inference_request_batch_size,
    get_model_config,
    get_triton_context,
    group_by_keys,
    group_by_values,
    pad_batch,
    sample,
    triton_context,
)
from pytriton_lite.exceptions import PyTritonBadParameterError, PyTritonRuntimeError, PyTritonValidationError
from pytriton_lite.model_config import DynamicBatcher, Tensor, TensorSpec, TritonModelConfig
from pytriton_lite.types import Request

DOCS_PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "decorators.md"


def _spec(tensor: Tensor) -> TensorSpec:
    return TensorSpec(name=tensor.name, shape=tensor.shape, dtype=tensor.dtype, optional=tensor.optional)


def make_config(
    inputs: Optional[List[Tensor]] = None,
    outputs: Optional[List[Tensor]] = None,
    batching: bool = True,
    max_batch_size: int = 16,
    preferred_batch_size: Optional[List[int]] = None,
) -> TritonModelConfig:
    """What the server builds at bind time (normalised dtypes, named tensors)."""
    inputs = inputs or [Tensor(name="a", shape=(-1,), dtype=np.float32)]
    outputs = outputs or [Tensor(name="out1", shape=(-1,), dtype=np.float32)]
    return TritonModelConfig(
        model_name="model",
        max_batch_size=max_batch_size if batching else 0,
        batching=batching,
        batcher=DynamicBatcher(preferred_batch_size=preferred_batch_size) if batching else None,
        inputs=[_spec(t) for t in inputs],
        outputs=[_spec(t) for t in outputs],
    )


def bind(infer_func: Any, config: Optional[TritonModelConfig] = None, **kwargs: Any) -> Any:
    attach_triton_context(infer_func, config or make_config(**kwargs))
    return infer_func


def _req(**inputs: Any) -> Request:
    return Request(data=dict(inputs))


def _lists(results: List[dict]) -> List[dict]:
    return [{name: np.asarray(value).tolist() for name, value in result.items()} for result in results]


# --- helpers -----------------------------------------------------------------------------------------


def test_get_inference_request_batch_size_uses_first_input():
    assert get_inference_request_batch_size({"a": np.zeros((3, 2)), "b": np.zeros((7,))}) == 3
    assert get_inference_request_batch_size(_req(x=np.zeros((5, 1)))) == 5


def test_convert_output_dict_passthrough_and_positional_mapping():
    config = make_config(
        outputs=[Tensor(name="o1", shape=(1,), dtype=np.int32), Tensor(name="o2", shape=(1,), dtype=bytes)]
    )
    result = {"x": np.ones(1)}
    assert convert_output(result, model_config=config) is result
    mapped = convert_output((np.ones(1), np.zeros(1)), model_config=config)
    assert list(mapped) == ["o1", "o2"]
    with pytest.raises(PyTritonValidationError, match="Outputs length different than config outputs length"):
        convert_output([np.ones(1)], model_config=config)
    with pytest.raises(PyTritonValidationError, match="Unsupported output type"):
        convert_output(np.ones(1), model_config=config)


def test_convert_output_positional_needs_binding():
    def infer(**inputs):
        return None

    with pytest.raises(PyTritonValidationError, match="must bound with triton"):
        convert_output([np.ones(1)], infer, None)


# --- @batch ------------------------------------------------------------------------------------------


def test_batch_concatenates_and_splits_per_request():
    seen = {}

    @batch
    def infer(**inputs):
        seen.update(inputs)
        return {"out1": inputs["a"] * 2, "out2": inputs["b"]}

    requests = [
        _req(a=np.array([[1.0], [2.0]]), b=np.array([[b"x"], [b"y"]], dtype=object)),
        {"a": np.array([[3.0]]), "b": np.array([[b"z"]], dtype=object)},
    ]
    results = infer(requests)
    np.testing.assert_array_equal(seen["a"], [[1.0], [2.0], [3.0]])
    assert seen["b"].dtype == object and seen["b"].shape == (3, 1)
    assert len(results) == 2
    np.testing.assert_array_equal(results[0]["out1"], [[2.0], [4.0]])
    np.testing.assert_array_equal(results[1]["out1"], [[6.0]])
    assert results[1]["out2"].tolist() == [[b"z"]]


def test_batch_passes_other_args_and_kwargs():
    @batch
    def infer(prefix, **inputs):
        assert prefix == "p" and inputs["extra"] == 5
        return {"out1": inputs["a"]}

    out = infer([_req(a=np.zeros((1, 1)))], "p", extra=5)
    assert out[0]["out1"].shape == (1, 1)


def test_batch_key_mismatch_raises_validation_error():
    @batch
    def infer(**inputs):
        raise AssertionError("must not be called")

    with pytest.raises(PyTritonValidationError, match="Cannot batch requests with different set of inputs keys"):
        infer([_req(a=np.zeros((1, 1))), _req(a=np.zeros((1, 1)), b=np.zeros((1, 1)))])


def test_batch_output_batch_size_mismatch_message():
    @batch
    def infer(**inputs):
        return {"good": np.zeros((3, 2)), "bad": np.zeros((2, 2))}

    with pytest.raises(ValueError) as info:
        infer([_req(a=np.zeros((1, 1))), _req(a=np.zeros((2, 1)))])
    assert (
        str(info.value) == "Received output tensors with different batch sizes: bad: (2, 2). Expected batch size: 3. "
    )


def test_batch_scalar_output_reported_as_batch_size_mismatch():
    @batch
    def infer(**inputs):
        return {"out1": np.float32(1.0)}

    with pytest.raises(ValueError, match="Received output tensors with different batch sizes: out1: ()"):
        infer([_req(a=np.zeros((1, 1)))])


def test_batch_positional_outputs_mapped_by_config():
    @batch
    def infer(**inputs):
        return inputs["a"] + 1, inputs["a"] - 1

    config = make_config(
        outputs=[Tensor(name="plus", shape=(1,), dtype=np.float32), Tensor(name="minus", shape=(1,), dtype=np.float32)]
    )
    bind(infer, config)
    out = infer([_req(a=np.array([[1.0]])), _req(a=np.array([[5.0]]))])
    assert _lists(out) == [{"plus": [[2.0]], "minus": [[0.0]]}, {"plus": [[6.0]], "minus": [[4.0]]}]


def test_batch_positional_outputs_wrong_length():
    @batch
    def infer(**inputs):
        return [inputs["a"]]

    bind(
        infer,
        outputs=[Tensor(name="o1", shape=(1,), dtype=np.float32), Tensor(name="o2", shape=(1,), dtype=np.float32)],
    )
    with pytest.raises(PyTritonValidationError, match="Outputs length different than config outputs length"):
        infer([_req(a=np.zeros((1, 1)))])


def test_batch_positional_outputs_unbound_function():
    @batch
    def infer(**inputs):
        return [inputs["a"]]

    with pytest.raises(PyTritonValidationError, match="Wrapped function or object must bound with triton"):
        infer([_req(a=np.zeros((1, 1)))])


def test_batch_on_method_and_callable_object_with_positional_outputs():
    class Model:
        def __init__(self, delta):
            self.delta = delta

        @batch
        def infer(self, **inputs):
            return [inputs["a"] + self.delta]

        @batch
        def __call__(self, **inputs):
            return (inputs["a"] * self.delta,)

    model = Model(10)
    bind(model.infer, outputs=[Tensor(name="added", shape=(1,), dtype=np.float32)])
    bind(model, outputs=[Tensor(name="scaled", shape=(1,), dtype=np.float32)])
    request = [_req(a=np.array([[2.0]]))]
    assert _lists(model.infer(request)) == [{"added": [[12.0]]}]
    assert _lists(model(request)) == [{"scaled": [[20.0]]}]
    # both configs live in one context on the instance
    assert len(model.__triton_context__.model_configs) == 2


def test_batch_generator_yields_split_results_and_closes_inner_generator():
    finished = []

    @batch
    def infer(**inputs):
        try:
            for step in range(3):
                yield {"out1": inputs["a"] + step}
        finally:
            finished.append(True)

    assert inspect.isgeneratorfunction(infer)
    stream = infer([_req(a=np.array([[0.0]])), _req(a=np.array([[10.0], [20.0]]))])
    assert inspect.isgenerator(stream)
    first = next(stream)
    assert [r["out1"].tolist() for r in first] == [[[0.0]], [[10.0], [20.0]]]
    second = next(stream)
    assert [r["out1"].tolist() for r in second] == [[[1.0]], [[11.0], [21.0]]]
    stream.close()
    assert finished == [True]


def test_batch_generator_full_iteration_and_error_midstream():
    @batch
    def infer(**inputs):
        yield {"out1": inputs["a"]}
        yield {"out1": inputs["a"][:1]}  # wrong batch size on the second item

    stream = infer([_req(a=np.zeros((2, 1)))])
    assert len(next(stream)) == 1
    with pytest.raises(ValueError, match="Expected batch size: 2"):
        next(stream)


def test_batch_coroutine_function():
    @batch
    async def infer(**inputs):
        await asyncio.sleep(0)
        return {"out1": inputs["a"] * 3}

    assert inspect.iscoroutinefunction(infer)
    result = infer([_req(a=np.array([[1.0]])), _req(a=np.array([[2.0]]))])
    assert inspect.isawaitable(result)
    out = asyncio.run(result)
    assert [r["out1"].tolist() for r in out] == [[[3.0]], [[6.0]]]


def test_batch_async_generator():
    @batch
    async def infer(**inputs):
        for step in range(2):
            yield {"out1": inputs["a"] + step}

    async def collect():
        return [item async for item in infer([_req(a=np.array([[1.0]])), _req(a=np.array([[2.0]]))])]

    assert inspect.isasyncgenfunction(infer)
    items = asyncio.run(collect())
    assert [[r["out1"].tolist() for r in item] for item in items] == [[[[1.0]], [[2.0]]], [[[2.0]], [[3.0]]]]


# --- @sample -----------------------------------------------------------------------------------------


def test_sample_uses_first_request_only():
    calls = []

    @sample
    def infer(**inputs):
        calls.append(inputs)
        return {"out1": inputs["a"] + 1}

    out = infer([_req(a=np.array([1.0])), _req(a=np.array([100.0]))])
    assert len(calls) == 1 and calls[0]["a"].tolist() == [1.0]
    assert _lists(out) == [{"out1": [2.0]}]


def test_sample_positional_outputs_and_generator():
    @sample
    def infer(**inputs):
        return [inputs["a"], inputs["a"] * 2]

    bind(
        infer,
        batching=False,
        outputs=[Tensor(name="x", shape=(1,), dtype=np.float32), Tensor(name="y", shape=(1,), dtype=np.float32)],
    )
    out = infer([_req(a=np.array([3.0]))])
    assert list(out[0]) == ["x", "y"] and out[0]["y"].tolist() == [6.0]

    @sample
    def stream(**inputs):
        for i in range(2):
            yield {"out1": inputs["a"] + i}

    items = list(stream([_req(a=np.array([1.0]))]))
    assert [item[0]["out1"].tolist() for item in items] == [[1.0], [2.0]]


# --- @group_by_keys ----------------------------------------------------------------------------------


def test_group_by_keys_groups_and_keeps_order():
    calls = []

    @group_by_keys
    def infer(requests):
        calls.append(sorted(requests[0].keys()))
        assert all(sorted(r.keys()) == sorted(requests[0].keys()) for r in requests)
        return [{"tag": np.array([sorted(r.keys()) == ["a", "b"]]), "id": r["a"]} for r in requests]

    requests = [
        _req(a=np.array([0])),
        _req(a=np.array([1]), b=np.array([1])),
        _req(a=np.array([2])),
        _req(b=np.array([3]), a=np.array([3])),
    ]
    out = infer(requests)
    assert calls == [["a"], ["a", "b"]]  # sorted key tuples, one call per group
    assert [r["id"].tolist() for r in out] == [[0], [1], [2], [3]]
    assert [bool(r["tag"][0]) for r in out] == [False, True, False, True]


def test_group_by_keys_with_batch_enables_optional_inputs():
    @group_by_keys
    @batch
    def infer(**inputs):
        offset = inputs.get("b", np.zeros_like(inputs["a"]))
        return {"out1": inputs["a"] + offset}

    out = infer([_req(a=np.array([[1.0]])), _req(a=np.array([[1.0]]), b=np.array([[5.0]])), _req(a=np.array([[2.0]]))])
    assert [r["out1"].tolist() for r in out] == [[[1.0]], [[6.0]], [[2.0]]]


def test_group_by_keys_async_and_generator_refused():
    @group_by_keys
    @batch
    async def infer(**inputs):
        return {"out1": inputs["a"] * 2}

    result = infer([_req(a=np.array([[1.0]])), _req(a=np.array([[2.0]]), b=np.array([[0.0]]))])
    out = asyncio.run(result)
    assert [r["out1"].tolist() for r in out] == [[[2.0]], [[4.0]]]

    @group_by_keys
    @batch
    def stream(**inputs):
        yield {"out1": inputs["a"]}

    with pytest.raises(PyTritonRuntimeError, match="does not support generator"):
        stream([_req(a=np.array([[1.0]]))])


# --- @group_by_values / ConstantPadder ---------------------------------------------------------------


def test_group_by_values_splits_and_scatters_back():
    calls = []

    @batch
    @group_by_values("p")
    def infer(**inputs):
        assert len(np.unique(inputs["p"])) == 1
        calls.append(inputs["x"].ravel().tolist())
        return {"out1": inputs["x"] * inputs["p"]}

    requests = [
        _req(x=np.array([[1.0], [2.0]]), p=np.array([[2], [3]])),
        _req(x=np.array([[3.0]]), p=np.array([[2]])),
    ]
    out = infer(requests)
    assert calls == [[1.0, 3.0], [2.0]]  # groups in sorted key order, rows in original order within a group
    assert [r["out1"].tolist() for r in out] == [[[2.0], [6.0]], [[6.0]]]


def test_group_by_values_multiple_keys_and_bytes_keys():
    groups = []

    @group_by_values("name", "flag")
    def infer(**inputs):
        groups.append(
            (inputs["name"].ravel().tolist(), inputs["flag"].ravel().tolist(), inputs["row"].ravel().tolist())
        )
        return {"row_out": inputs["row"] * 10}

    names = np.array([[b"a"], [b"a\x00"], [b"a"], [b"b"], [b"a"]], dtype=object)
    flags = np.array([[True], [True], [False], [True], [True]])
    rows = np.arange(5).reshape(5, 1)
    out = infer(name=names, flag=flags, row=rows)
    np.testing.assert_array_equal(out["row_out"], rows * 10)
    grouped_rows = sorted(g[2] for g in groups)
    assert grouped_rows == [[0, 4], [1], [2], [3]]  # b"a\x00" is not b"a"; flag splits b"a" rows


def test_group_by_values_on_1d_values_and_passes_triton_context_kwargs():
    @triton_context
    @batch
    @group_by_values("p")
    def infer(**inputs):
        assert isinstance(inputs["triton_context"], TritonContext)
        return {"out1": inputs["x"] + inputs["p"]}

    bind(infer)
    out = infer([_req(x=np.array([1.0, 2.0, 3.0]), p=np.array([1.0, 0.0, 1.0]))])
    assert out[0]["out1"].tolist() == [2.0, 2.0, 4.0]


def test_group_by_values_must_be_inside_batch():
    @group_by_values("p")
    @batch
    def infer(**inputs):
        return {"out1": inputs["p"]}

    with pytest.raises(PyTritonRuntimeError, match="must be used after the @batch decorator"):
        infer([_req(p=np.array([[1]]))])


def test_group_by_values_with_constant_padder():
    @batch
    @group_by_values("n", pad_fn=ConstantPadder(-1))
    def infer(**inputs):
        n = int(inputs["n"][0][0])
        rows = inputs["n"].shape[0]
        return {
            "seq": np.ones((rows, n), dtype=np.int32),
            "text": np.array([[b"t" * n]] * rows, dtype=np.bytes_),
        }

    out = infer([_req(n=np.array([[1], [3]])), _req(n=np.array([[2]]))])
    assert out[0]["seq"].tolist() == [[1, -1, -1], [1, 1, 1]]
    assert out[1]["seq"].tolist() == [[1, 1, -1]]
    assert out[0]["text"].tolist() == [[b"t"], [b"ttt"]] and out[0]["text"].dtype == np.dtype("S3")


def test_group_by_values_without_padder_fails_on_ragged_results():
    @batch
    @group_by_values("n")
    def infer(**inputs):
        n = int(inputs["n"][0][0])
        return {"seq": np.ones((inputs["n"].shape[0], n))}

    with pytest.raises(ValueError):
        infer([_req(n=np.array([[1], [3]]))])


def test_group_by_values_async_and_generator_refused():
    @batch
    @group_by_values("p")
    async def infer(**inputs):
        return {"out1": inputs["p"] * 2}

    out = asyncio.run(infer([_req(p=np.array([[1], [2], [1]]))]))
    assert out[0]["out1"].tolist() == [[2], [4], [2]]

    @group_by_values("p")
    def stream(**inputs):
        yield {"out1": inputs["p"]}

    with pytest.raises(PyTritonRuntimeError, match="does not support generator"):
        stream(p=np.array([[1]]))


def test_constant_padder_numeric_strings_and_missing_outputs():
    padder = ConstantPadder(pad_value=7)
    padded = padder(
        [
            {"a": np.zeros((1, 2), dtype=np.int64), "s": np.array([["ab"]]), "o": np.array([[b"x"]], dtype=object)},
            {"a": np.zeros((2, 3), dtype=np.int64), "s": np.array([["abcd", "e"]]), "only": np.ones((1,))},
        ]
    )
    assert padded[0]["a"].tolist() == [[0, 0, 7]]
    assert padded[1]["a"].shape == (2, 3)
    assert padded[0]["s"].tolist() == [["ab", ""]] and padded[0]["s"].dtype == np.dtype("<U4")
    assert padded[0]["o"].dtype == object
    assert "only" not in padded[0] and "o" not in padded[1]


def test_constant_padder_dtype_errors():
    with pytest.raises(PyTritonRuntimeError, match="must have the same dtype"):
        ConstantPadder()([{"a": np.zeros((1, 1), dtype=np.int32)}, {"a": np.zeros((1, 1), dtype=np.float32)}])
    with pytest.raises(PyTritonRuntimeError, match="must have the same dtype"):
        ConstantPadder()([{"a": np.zeros((1, 1), dtype=np.int32)}, {"a": np.zeros((1, 1), dtype=np.int64)}])
    widened = ConstantPadder()([{"a": np.array([[b"a"]])}, {"a": np.array([[b"abc"]])}])
    assert widened[0]["a"].dtype == np.dtype("S3")


# --- @fill_optionals ---------------------------------------------------------------------------------

OPTIONAL_INPUTS = [
    Tensor(name="a", shape=(-1,), dtype=np.float32),
    Tensor(name="b", shape=(2,), dtype=np.int32, optional=True),
    Tensor(name="s", shape=(1,), dtype=bytes, optional=True),
]


def test_fill_optionals_tiles_defaults_to_batch_size():
    received = []

    @fill_optionals(b=np.array([1, 2], dtype=np.int32), s=np.array([b"dflt"], dtype=object))
    def infer(requests):
        received.extend(requests)
        return [{"out1": r["a"]} for r in requests]

    bind(infer, inputs=OPTIONAL_INPUTS)
    given_b = np.array([[9, 9]], dtype=np.int32)
    infer([_req(a=np.zeros((3, 4), dtype=np.float32)), _req(a=np.zeros((1, 4), dtype=np.float32), b=given_b)])
    assert received[0]["b"].tolist() == [[1, 2]] * 3
    assert received[0]["s"].tolist() == [[b"dflt"]] * 3
    assert received[1]["b"] is given_b  # present inputs are untouched


def test_fill_optionals_without_batching_inserts_as_is():
    received = []

    @fill_optionals(b=np.array([1, 2], dtype=np.int32))
    def infer(requests):
        received.extend(requests)
        return [{} for _ in requests]

    bind(infer, inputs=OPTIONAL_INPUTS, batching=False)
    infer([_req(a=np.zeros((4,), dtype=np.float32))])
    assert received[0]["b"].tolist() == [1, 2]


def test_fill_optionals_accepts_wildcard_dims_and_works_before_batch():
    @fill_optionals(a=np.array([1.0, 2.0, 3.0], dtype=np.float32))
    @group_by_keys
    @batch
    def infer(**inputs):
        return {"out1": inputs["a"].sum(axis=1, keepdims=True)}

    bind(
        infer,
        inputs=[
            Tensor(name="a", shape=(-1,), dtype=np.float32, optional=True),
            Tensor(name="z", shape=(1,), dtype=np.int8),
        ],
    )
    out = infer(
        [
            _req(z=np.zeros((2, 1), dtype=np.int8)),
            _req(z=np.zeros((1, 1), dtype=np.int8), a=np.ones((1, 3), np.float32)),
        ]
    )
    assert out[0]["out1"].tolist() == [[6.0], [6.0]] and out[1]["out1"].tolist() == [[3.0]]


@pytest.mark.parametrize(
    "defaults, message",
    [
        ({"c": np.array([1])}, "Could not found c inputs"),
        ({"b": [1, 2]}, "Could not use b=[1, 2] defaults as they are not NumPy arrays"),
        (
            {"b": np.array([1, 2], dtype=np.int64)},
            "Could not use b: dtype=int64 expected_dtype=<class 'numpy.int32'> defaults as they have different "
            "than input signature dtypes",
        ),
        ({"s": np.array([1.0])}, "defaults as they have different than input signature dtypes"),
        (
            {"b": np.array([1, 2, 3], dtype=np.int32)},
            "Could not use b: shape=(3,) expected_shape=(2,) defaults as they have different than input signature "
            "shapes",
        ),
        ({"a": np.ones((1, 2), dtype=np.float32)}, "defaults as they have different than input signature shapes"),
    ],
)
def test_fill_optionals_validation_errors(defaults, message):
    @fill_optionals(**defaults)
    def infer(requests):
        raise AssertionError("must not be called")

    bind(infer, inputs=OPTIONAL_INPUTS)
    with pytest.raises(PyTritonBadParameterError) as info:
        infer([_req(a=np.zeros((1, 1), dtype=np.float32))])
    assert message in str(info.value)


def test_fill_optionals_needs_binding():
    @fill_optionals(b=np.array([1, 2], dtype=np.int32))
    def infer(requests):
        return []

    with pytest.raises(PyTritonValidationError, match="must bound with triton"):
        infer([])


# --- @first_value ------------------------------------------------------------------------------------


def test_first_value_after_batch_squeezes_to_scalar():
    seen = {}

    @batch
    @first_value("temperature", "missing")
    def infer(**inputs):
        seen.update(inputs)
        return {"out1": inputs["x"]}

    bind(infer)
    infer([_req(x=np.zeros((2, 1)), temperature=np.array([[0.5], [0.5]], dtype=np.float32))])
    assert seen["temperature"] == np.float32(0.5) and np.ndim(seen["temperature"]) == 0
    assert isinstance(seen["temperature"], np.float32)
    assert "missing" not in seen


def test_first_value_strict_error_message():
    @batch
    @first_value("t")
    def infer(**inputs):
        raise AssertionError("must not be called")

    bind(infer)
    with pytest.raises(PyTritonRuntimeError) as info:
        infer([_req(t=np.array([[1], [2]]))])
    message = str(info.value)
    assert message.startswith("The values on the 't' input are not equal. To proceed, either disable strict mode")
    assert "The current values of 't' are array([[1],\n       [2]])." in message


def test_first_value_non_strict_and_no_squeeze():
    seen = {}

    @batch
    @first_value("t", strict=False, squeeze_single_values=False)
    def infer(**inputs):
        seen.update(inputs)
        return {"out1": inputs["x"]}

    bind(infer)
    infer([_req(x=np.zeros((2, 1)), t=np.array([[1], [2]]))])
    assert isinstance(seen["t"], np.ndarray) and seen["t"].tolist() == [1]


def test_first_value_object_arrays_and_multi_element_rows():
    seen = {}

    @batch
    @first_value("name", "vec")
    def infer(**inputs):
        seen.update(inputs)
        return {"out1": inputs["x"]}

    bind(infer)
    infer([_req(x=np.zeros((2, 1)), name=np.array([[b"n"], [b"n"]], dtype=object), vec=np.array([[1, 2], [1, 2]]))])
    assert seen["name"] == b"n"
    assert seen["vec"].tolist() == [1, 2]  # not all-ones shape: kept as array

    with pytest.raises(PyTritonRuntimeError, match="'name' input are not equal"):
        infer([_req(x=np.zeros((2, 1)), name=np.array([[b"n"], [b"m"]], dtype=object), vec=np.zeros((2, 2)))])


def test_first_value_on_request_lists():
    @first_value("t")
    def infer(requests):
        return [{"t": np.array([r["t"]])} for r in requests]

    bind(infer)
    out = infer([_req(t=np.array([[3]])), _req(t=np.array([[4], [4]]))])
    assert [r["t"].tolist() for r in out] == [[3], [4]]


def test_first_value_errors_for_special_keys_and_non_batching():
    with pytest.raises(PyTritonBadParameterError, match="The keys __triton_context__ are not allowed"):
        first_value("t", "__triton_context__")

    @first_value("t")
    def infer(requests):
        return []

    bind(infer, batching=False)
    with pytest.raises(PyTritonRuntimeError, match="can only be used with models that support batching"):
        infer([_req(t=np.array([1]))])


# --- @pad_batch --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "batch_size, preferred, expected", [(3, [2, 4, 8], 4), (4, [2, 4, 8], 4), (9, [2, 4, 8], 16), (5, None, 16)]
)
def test_pad_batch_repeats_last_row(batch_size, preferred, expected):
    seen = {}

    @batch
    @pad_batch
    def infer(**inputs):
        seen.update(inputs)
        return {"out1": inputs["a"]}

    bind(infer, max_batch_size=16, preferred_batch_size=preferred)
    rows = np.arange(batch_size, dtype=np.float32).reshape(batch_size, 1)
    out = infer([_req(a=rows)])
    assert seen["a"].shape == (expected, 1)
    np.testing.assert_array_equal(seen["a"][:batch_size], rows)
    assert (seen["a"][batch_size:] == rows[-1]).all()
    np.testing.assert_array_equal(out[0]["out1"], rows)  # trimmed back, so @batch can split


def test_pad_batch_oversized_batch_and_binding():
    @pad_batch
    def infer(**inputs):
        return inputs

    bind(infer, max_batch_size=2)
    with pytest.raises(PyTritonRuntimeError, match="larger than max_batch_size 2"):
        infer(a=np.zeros((3, 1)))

    @pad_batch
    def unbound(**inputs):
        return inputs

    with pytest.raises(PyTritonValidationError):
        unbound(a=np.zeros((1, 1)))


# --- @triton_context / context plumbing --------------------------------------------------------------


def test_triton_context_on_function_method_and_callable_object():
    @triton_context
    def fn(requests, **kwargs):
        return kwargs["triton_context"].model_configs[fn].model_name

    class Model:
        @triton_context
        def infer(self, requests, **kwargs):
            return kwargs["triton_context"].model_configs[self.infer].model_name

        @triton_context
        def __call__(self, requests, **kwargs):
            return kwargs["triton_context"].model_configs[self].model_name

    model = Model()
    attach_triton_context(fn, make_config())
    attach_triton_context(model.infer, TritonModelConfig(model_name="by_method"))
    attach_triton_context(model, TritonModelConfig(model_name="by_object"))
    assert fn([]) == "model"
    assert model.infer([]) == "by_method"
    assert model([]) == "by_object"


def test_triton_context_unbound_raises():
    @triton_context
    def fn(requests, **kwargs):
        return None

    with pytest.raises(PyTritonValidationError) as info:
        fn([])
    assert str(info.value) == "Wrapped function or object must bound with triton to get  __triton_context__"


def test_get_model_config_through_stacked_wrappers_is_a_copy():
    @batch
    @first_value("t")
    def infer(**inputs):
        return {"out1": inputs["t"]}

    config = make_config()
    attach_triton_context(infer, config)
    found = get_model_config(infer, None)
    assert found == config and found is not config
    assert isinstance(get_triton_context(infer, None), TritonContext)


def test_attach_triton_context_tolerates_slotted_callables():
    class Slotted:
        __slots__ = ()

        def __call__(self, requests):
            return []

    attach_triton_context(Slotted(), make_config())  # no error; decorators needing the config would fail
    with pytest.raises(PyTritonValidationError):
        get_triton_context(Slotted(), None)


def test_model_config_dict_mapping_protocol():
    def f():
        return None

    class C:
        def __call__(self):
            return None

    obj = C()
    configs = ModelConfigDict()
    configs[f] = TritonModelConfig(model_name="f")
    configs[obj] = TritonModelConfig(model_name="obj")
    configs[f] = TritonModelConfig(model_name="f2")
    assert configs[obj.__call__].model_name == "obj"  # bound __call__ keyed by its instance
    assert len(configs) == 2 and list(configs) == [f, obj]
    del configs[f]
    assert list(configs) == [obj]
    with pytest.raises(KeyError):
        configs[f]


# --- the docs page stays runnable ----------------------------------------------------------------------


def _doc_blocks() -> List[str]:
    text = DOCS_PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [block for block in blocks if not block.lstrip().startswith("# bind() snippet")]


def test_docs_page_examples_run():
    blocks = _doc_blocks()
    assert len(blocks) >= 9
    for block in blocks:
        exec(compile(block, str(DOCS_PAGE), "exec"), {"__name__": "docs_example"})
