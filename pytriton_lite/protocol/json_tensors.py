"""JSON tensor data <-> numpy arrays, shared by the infer and generate codecs.

Leaf types are checked per datatype with TritonJson's wording (``attempt to access JSON non-X as X``);
``data`` may be flat or nested (row-major, nesting limited to Triton's 100 levels); element counts and
byte sizes are checked against the shape before anything is allocated.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np

from pytriton_lite._echo import echo
from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.protocol.dtypes import checked_element_count, wire_dtype

__all__ = [
    "MAX_DATA_DEPTH",
    "array_to_json",
    "flatten_data",
    "json_to_array",
    "size_message",
    "type_error",
]

MAX_DATA_DEPTH = 100  # Triton's JSON nesting limit, applied where nesting is legal: tensor `data`
_LEAF_RULES = {
    # datatype kind -> (allowed python leaf types, TritonJson accessor wording)
    "b": ((bool,), "non-boolean as boolean"),
    "i": ((int,), "non-signed-integer as signed-integer"),
    "u": ((int,), "non-unsigned-integer as unsigned-integer"),
    "f": ((int, float), "non-number as number"),
    "O": ((str,), "non-string as string"),
}


def type_error(field_name: str, accessor: str, where: str) -> InvalidArgumentError:
    """TritonJson's accessor wording: ``Unable to parse 'shape': attempt to access JSON non-X as X ...``."""
    return InvalidArgumentError(f"Unable to parse '{field_name}': attempt to access JSON {accessor} {where}")


def size_message(size: int, limit: int) -> str:
    return (
        f"request JSON size of {size} bytes exceeds the maximum allowed input size of {limit} bytes. "
        "Use --http-max-input-size to increase the limit."
    )


def json_to_array(
    data: Any,
    datatype: str,
    shape: Sequence[int],
    tensor: str,
    model: str,
    *,
    max_input_size: Optional[int] = None,
) -> np.ndarray:
    """JSON ``data`` (flat or nested, row-major) -> array of ``shape``; leaf types checked per datatype."""
    where = f"for input '{echo(tensor)}' for model '{echo(model)}'"
    if datatype in ("FP16", "BF16"):
        raise InvalidArgumentError(
            f"receiving {datatype} data via JSON is not supported. Please use the binary data format for input "
            f"{echo(tensor)} for model '{echo(model)}'"
        )
    dtype = wire_dtype(datatype, tensor, model)
    count = checked_element_count(shape, tensor, model, itemsize=dtype.itemsize if datatype != "BYTES" else 0)
    if max_input_size and datatype != "BYTES" and count * dtype.itemsize > max_input_size:
        raise InvalidArgumentError(size_message(count * dtype.itemsize, max_input_size) + f" ({where})")
    if not isinstance(data, list):
        raise type_error("data", "non-array as array", where)
    flat = flatten_data(data, tensor, model)
    if len(flat) < count:
        raise InvalidArgumentError(f"Failed to parse 'data' field: shape does not match true shape {where}")
    if len(flat) > count:
        raise InvalidArgumentError(f"Unable to parse 'data': Shape does not match true shape of 'data' field {where}")
    return _leaves_to_array(flat, dtype, where).reshape(tuple(shape))


def flatten_data(data: List[Any], tensor: str, model: str) -> List[Any]:
    if not data or not isinstance(data[0], list):
        if any(isinstance(item, list) for item in data):
            return _flatten_nested(data, tensor, model)
        return data  # the common flat case: no copy
    return _flatten_nested(data, tensor, model)


def _flatten_nested(data: List[Any], tensor: str, model: str) -> List[Any]:
    flat: List[Any] = []
    stack = [(iter(data), 1)]  # iterative: nesting depth is client-controlled
    while stack:
        items, depth = stack[-1]
        for item in items:
            if isinstance(item, list):
                if depth + 1 > MAX_DATA_DEPTH:
                    raise InvalidArgumentError(
                        f"JSON nesting depth exceeds maximum allowed limit ({MAX_DATA_DEPTH}) for input "
                        f"'{echo(tensor)}' for model '{echo(model)}'"
                    )
                stack.append((iter(item), depth + 1))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _leaves_to_array(flat: List[Any], dtype: np.dtype, where: str) -> np.ndarray:
    allowed, accessor = _LEAF_RULES[dtype.kind]
    leaf_types = set(map(type, flat))
    if not leaf_types.issubset(allowed):
        raise type_error("data", accessor, where)
    if dtype.kind == "O":
        array = np.empty(len(flat), dtype=object)
        try:
            array[:] = [item.encode("utf-8") for item in flat]
        except UnicodeEncodeError as exc:  # the exception's text holds the bad character: not echoed
            raise InvalidArgumentError(
                f"Unable to parse 'data': invalid UTF-8 string ({exc.reason} at position {exc.start}) {where}"
            ) from None
        return array
    if dtype.kind in "iu":
        if not flat:
            return np.empty(0, dtype=dtype)
        info = np.iinfo(dtype)
        wide = np.array(flat)  # int64 normally; uint64/object when values pass int64
        if wide.dtype.kind in "iu":
            low, high = int(wide.min()), int(wide.max())
        else:
            low, high = min(flat), max(flat)
        if low < info.min or high > info.max:
            raise InvalidArgumentError(f"Unable to parse 'data': value out of range for {dtype.name} {where}")
        return wide.astype(dtype) if wide.dtype.kind in "iu" else np.array(flat, dtype=dtype)
    try:
        return np.array(flat, dtype=dtype)
    except OverflowError:
        raise InvalidArgumentError(f"Unable to parse 'data': value out of range for {dtype.name} {where}") from None


def array_to_json(array: np.ndarray, tensor: str, model: str) -> List[Any]:
    """Array -> flat JSON list (BYTES as strings, which must be UTF-8)."""
    flat: List[Any] = array.reshape(-1).tolist()
    if array.dtype.kind in "OSU":
        return [_bytes_to_str(item, tensor, model) for item in flat]
    return flat


def _bytes_to_str(item: Any, tensor: str, model: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, (bytes, bytearray, memoryview)):
        try:
            return bytes(item).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgumentError(
                f"output '{tensor}' of model '{model}' holds bytes that are not valid UTF-8 and cannot be sent as "
                "JSON; request it with binary_data=true"
            ) from None
    return str(item)
