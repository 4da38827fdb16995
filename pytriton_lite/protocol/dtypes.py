"""numpy <-> Triton datatype names and the raw tensor encodings shared by HTTP binary and gRPC raw contents.

Fixed-size dtypes are little-endian, row-major. BYTES elements are a 4-byte little-endian length followed
by the bytes, with no terminator (NUL bytes preserved).
"""

from __future__ import annotations

import struct
from typing import Any, Sequence, Tuple

import numpy as np

from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.model_config import TRITON_DTYPES, from_triton_dtype, to_triton_dtype

__all__ = [
    "TRITON_DTYPES",
    "FIXED_WIRE_NAMES",
    "from_triton_dtype",
    "to_triton_dtype",
    "wire_dtype",
    "element_count",
    "serialize_bytes_tensor",
    "deserialize_bytes_tensor",
    "array_from_raw",
    "array_to_raw",
]

_LE_NUMPY = {name: from_triton_dtype(name).newbyteorder("<") for name in TRITON_DTYPES if name != "BYTES"}
# little-endian fixed-size dtype -> wire name: the buffers of these go on the wire as they are
FIXED_WIRE_NAMES = {dtype: name for name, dtype in _LE_NUMPY.items()}


def wire_dtype(name: str, tensor: str, model: str) -> np.dtype:
    """Wire datatype string -> numpy dtype (little-endian); unknown names are a client error."""
    if name == "BYTES":
        return np.dtype(object)
    try:
        return _LE_NUMPY[name]
    except (KeyError, TypeError):
        raise InvalidArgumentError(f"invalid datatype for input {tensor} for model '{model}'") from None


def element_count(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= int(dim)
    return count


def serialize_bytes_tensor(array: np.ndarray) -> bytes:
    """Object/S/U array -> concatenated (uint32 LE length + bytes) in row-major order."""
    parts = []
    pack = struct.Struct("<I").pack
    for item in array.reshape(-1):
        if isinstance(item, bytes):
            data = item
        elif isinstance(item, str):
            data = item.encode("utf-8")
        elif isinstance(item, (bytearray, memoryview)):
            data = bytes(item)
        else:
            data = str(item).encode("utf-8")
        parts.append(pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def deserialize_bytes_tensor(buffer: Any, shape: Sequence[int], tensor: str, model: str) -> np.ndarray:
    """Length-prefixed BYTES payload -> ``dtype=object`` array of ``bytes`` with ``shape``."""
    view = memoryview(buffer).cast("B")
    expected = element_count(shape)
    items = []
    offset = 0
    total = len(view)
    while offset < total:
        if offset + 4 > total:
            raise InvalidArgumentError(
                f"incomplete string length indicator for inference input '{tensor}' for model '{model}', "
                f"expecting 4 bytes but only {total - offset} bytes available"
            )
        (length,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + length > total:
            raise InvalidArgumentError(
                f"incomplete string data for inference input '{tensor}' for model '{model}', "
                f"expecting string of length {length} but only {total - offset} bytes available"
            )
        items.append(bytes(view[offset : offset + length]))
        offset += length
        if len(items) > expected:
            raise InvalidArgumentError(
                f"unexpected number of string elements {len(items)} for inference input '{tensor}' "
                f"for model '{model}', expecting {expected}"
            )
    if len(items) != expected:
        raise InvalidArgumentError(
            f"expected {expected} string elements for inference input '{tensor}' for model '{model}', got {len(items)}"
        )
    array = np.empty(expected, dtype=object)
    array[:] = items
    return array.reshape(tuple(shape))


def array_from_raw(buffer: Any, datatype: str, shape: Sequence[int], tensor: str, model: str) -> np.ndarray:
    """Raw little-endian bytes -> array of ``shape``; zero-copy (a view) for fixed-size dtypes."""
    shape = tuple(int(d) for d in shape)
    if datatype == "BYTES":
        return deserialize_bytes_tensor(buffer, shape, tensor, model)
    dtype = wire_dtype(datatype, tensor, model)
    expected = element_count(shape) * dtype.itemsize
    got = memoryview(buffer).nbytes
    if got != expected:
        raise InvalidArgumentError(
            f"input byte size mismatch for input '{tensor}' for model '{model}'. Expected {expected}, got {got}"
        )
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def array_to_raw(array: np.ndarray) -> Tuple[str, Any]:
    """Array -> (wire datatype, buffer). Fixed-size dtypes come back as a memoryview, not a copy."""
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    datatype = to_triton_dtype(array.dtype)
    if datatype == "BYTES":
        return datatype, serialize_bytes_tensor(array)
    if array.size == 0:  # memoryview.cast refuses zeros in the shape
        return datatype, b""
    array = np.ascontiguousarray(array)
    return datatype, memoryview(array).cast("B")
