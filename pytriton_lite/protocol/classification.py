"""Triton's classification extension as pure functions on output arrays.

A requested output with ``parameters.classification = K`` is answered with a BYTES tensor of the K
highest-valued classes instead of the model's tensor: ``"<value>:<index>[:<label>]"`` strings, highest value
first. For a batching model the top K is taken per batch row (the output's first dimension) and the result has
shape ``[batch, k]``; otherwise over the whole tensor, shape ``[k]``. ``k`` is K clamped to the number of
classes, as Triton does. Values print like C++ ``std::to_string``: ``%f`` for floats, plain digits for integers.
Only integer and FP32/FP64 outputs can be classified (Triton's list); others are Triton's INVALID_ARG error,
followed by the output and model names.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from pytriton_lite._echo import echo
from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.types import InferenceResponse, ModelInfo

# numpy kinds Triton classifies: UINT8..UINT64, INT8..INT64, FP32, FP64 (not FP16, BF16, BOOL, BYTES)
_INTEGER_KINDS = ("i", "u")
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_WIRE_NAMES = {"f": "FP", "i": "INT", "u": "UINT", "b": "BOOL"}


def _wire_name(dtype: np.dtype) -> str:
    if dtype.kind in ("O", "S", "U"):
        return "BYTES"
    prefix = _WIRE_NAMES.get(dtype.kind)
    if prefix is None:
        return str(dtype)
    return prefix if prefix == "BOOL" else f"{prefix}{dtype.itemsize * 8}"


def parse_count(value: object, output: str, model: str) -> int:
    """The ``classification`` parameter of a requested output: an integer >= 0 (0 = no classification)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(
            f"unable to parse 'classification' for output '{echo(output)}' for model '{echo(model)}': "
            "expected an unsigned integer"
        )
    if value < 0:
        raise InvalidArgumentError(
            f"'classification' must be >= 0 for output '{echo(output)}' for model '{echo(model)}', got {value}"
        )
    return value


def top_k(
    array: np.ndarray, count: int, *, batched: bool, labels: Sequence[str] = (), output: str = "", model: str = ""
) -> np.ndarray:
    """The classification tensor of one output: an object array of ``bytes``, ``[batch, k]`` or ``[k]``."""
    dtype = array.dtype
    is_float = dtype in _FLOAT_DTYPES
    if not is_float and dtype.kind not in _INTEGER_KINDS:
        raise InvalidArgumentError(
            f"class result not available for output due to unsupported type '{_wire_name(dtype)}' "
            f"for output '{echo(output)}' for model '{echo(model)}'"
        )
    rows_first = batched and array.ndim > 0
    row_size = int(np.prod(array.shape[1:], dtype=np.int64)) if rows_first else int(array.size)
    flat = array.reshape(int(array.shape[0]) if rows_first else 1, row_size)
    classes = int(flat.shape[1])
    k = min(int(count), classes)
    # highest value first, ties by lower index: a stable ascending sort of the reversed rows, reversed back
    order = (classes - 1) - np.argsort(flat[:, ::-1], axis=1, kind="stable")[:, ::-1][:, :k]
    picked = np.take_along_axis(flat, order, axis=1)
    values = picked.astype(np.float64).tolist() if is_float else picked.tolist()
    named = len(labels)
    result = np.empty((flat.shape[0], k), dtype=object)
    for row, (row_values, row_order) in enumerate(zip(values, order.tolist())):
        for column, (value, index) in enumerate(zip(row_values, row_order)):
            text = f"{value:f}:{index}" if is_float else f"{value}:{index}"
            if index < named and labels[index]:
                text = f"{text}:{labels[index]}"
            result[row, column] = text.encode("utf-8")
    return result if rows_first else result.reshape(k)


def classify_response(
    response: InferenceResponse, counts: Mapping[str, int], model: Optional[ModelInfo]
) -> InferenceResponse:
    """``response`` with each output named in ``counts`` (K > 0) replaced by its classification tensor."""
    wanted = {name: k for name, k in counts.items() if k > 0 and name in response.outputs}
    if not wanted:
        return response
    batched = bool(model.max_batch_size > 0) if model is not None else False
    labels: Dict[str, Sequence[str]] = {}
    if model is not None:
        labels = {spec.name: spec.labels for spec in model.outputs}
    outputs = dict(response.outputs)
    for name, k in wanted.items():
        outputs[name] = top_k(
            np.asarray(outputs[name]),
            k,
            batched=batched,
            labels=labels.get(name, ()),
            output=name,
            model=response.model_name,
        )
    return InferenceResponse(
        response.model_name,
        response.model_version,
        outputs,
        id=response.id,
        parameters=response.parameters,
        final=response.final,
    )


__all__ = ["classify_response", "parse_count", "top_k"]
