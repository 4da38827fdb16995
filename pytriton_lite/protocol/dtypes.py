"""numpy <-> Triton datatype names and the raw tensor encodings shared by HTTP binary and gRPC raw contents.

Fixed-size dtypes are little-endian, row-major. BYTES elements are a 4-byte little-endian length followed
by the bytes, with no terminator (NUL bytes preserved). The dtype table itself is ``pytriton_lite._dtypes``;
this module adds what both codecs check and encode the same way: the wire dtype of an input, the element
count of a shape (with Triton's overflow checks) and the raw buffer of an output.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Sequence, Tuple

import numpy as np

from pytriton_lite._dtypes import BYTES, FIXED_WIRE_NAMES, LE_WIRE_DTYPES, TRITON_DTYPES
from pytriton_lite._dtypes import from_triton_dtype as from_triton_dtype
from pytriton_lite._dtypes import to_triton_dtype as to_triton_dtype
from pytriton_lite._echo import echo
from pytriton_lite.exceptions import InvalidArgumentError

__all__ = [
    "TRITON_DTYPES",
    "FIXED_WIRE_NAMES",
    "INT64_MAX",
    "MAX_NDIM",
    "shape_text",
    "from_triton_dtype",
    "to_triton_dtype",
    "wire_dtype",
    "checked_element_count",
    "serialize_bytes_tensor",
    "deserialize_bytes_tensor",
    "array_from_raw",
    "bytes_array",
    "array_to_raw",
    "output_to_raw",
]

INT64_MAX = (1 << 63) - 1  # Triton's limit on a tensor's element count and byte size
MAX_NDIM = 64 if int(np.__version__.split(".", 1)[0]) >= 2 else 32  # numpy's limit on dimensions
_MAX_ITEMSIZE = 8  # largest wire itemsize (INT64/FP64; BYTES are object pointers): numpy sizes empty arrays by it


def wire_dtype(name: str, tensor: str, model: str) -> np.dtype[Any]:
    """Wire datatype string -> numpy dtype (little-endian); unknown names are a client error."""
    if name == BYTES:
        return np.dtype(object)
    try:
        return LE_WIRE_DTYPES[name]
    except (KeyError, TypeError):
        raise InvalidArgumentError(f"invalid datatype for input {echo(tensor)} for model '{echo(model)}'") from None


def checked_element_count(shape: Sequence[int], tensor: str, model: str, itemsize: int = 0) -> int:
    """Element count of an input's ``shape``, refusing what Triton refuses (both codecs call this).

    A negative dim, a count over int64 and (with ``itemsize``; 0 skips it) a byte size over int64 are
    client errors, worded as Triton words them. So are shapes numpy cannot hold even when empty: more
    than ``MAX_NDIM`` dims, a dim over int64, or non-zero dims whose product overflows (``[2**62, 2**62, 0]``).
    """
    if len(shape) > MAX_NDIM:
        raise InvalidArgumentError(
            f"input '{echo(tensor)}' for model '{echo(model)}' has {len(shape)} dimensions, more than the "
            f"{MAX_NDIM} supported"
        )
    count = 1
    nonzero = 1  # product of the non-zero dims: what numpy must be able to index, even for an empty array
    for dim in shape:
        if dim < 0:
            raise InvalidArgumentError(
                f"All input dimensions should be specified for input '{echo(tensor)}' for model '{echo(model)}', "
                f"got {shape_text(shape)}"
            )
        if dim > INT64_MAX:
            raise InvalidArgumentError(
                f"The shape {shape_text(shape)} of input '{echo(tensor)}' for model '{echo(model)}' has a "
                f"dimension over the maximum of {INT64_MAX}"
            )
        count *= int(dim)
        if dim:
            nonzero *= int(dim)
    if count > INT64_MAX:
        raise InvalidArgumentError(
            f"The shape {shape_text(shape, ', ')} of input '{echo(tensor)}' for model '{echo(model)}' causes total "
            f"element count to exceed maximum size of {INT64_MAX}"
        )
    if count * itemsize > INT64_MAX:
        raise InvalidArgumentError(f"byte size overflow for input '{echo(tensor)}' for model '{echo(model)}'")
    if count == 0 and nonzero * _MAX_ITEMSIZE > INT64_MAX:
        raise InvalidArgumentError(
            f"The shape {shape_text(shape, ', ')} of input '{echo(tensor)}' for model '{echo(model)}' has "
            "non-zero dimensions whose product is too large for an empty tensor"
        )
    return count


def shape_text(shape: Sequence[int], sep: str = ",") -> str:
    """A client's shape in an error message: ``[a,b,...]``, bounded like every echo of client input."""
    shown = sep.join(str(int(d)) for d in shape[:MAX_NDIM])
    more = f"{sep}... ({len(shape) - MAX_NDIM} more)" if len(shape) > MAX_NDIM else ""
    return f"[{shown}{more}]"


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
    expected = math.prod(shape)
    items = []
    offset = 0
    total = len(view)
    while offset < total:
        if offset + 4 > total:
            raise InvalidArgumentError(
                f"incomplete string length indicator for inference input '{echo(tensor)}' for model '{echo(model)}', "
                f"expecting 4 bytes but only {total - offset} bytes available"
            )
        (length,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + length > total:
            raise InvalidArgumentError(
                f"incomplete string data for inference input '{echo(tensor)}' for model '{echo(model)}', "
                f"expecting string of length {length} but only {total - offset} bytes available"
            )
        items.append(bytes(view[offset : offset + length]))
        offset += length
        if len(items) > expected:
            raise InvalidArgumentError(
                f"unexpected number of string elements {len(items)} for inference input '{echo(tensor)}' "
                f"for model '{echo(model)}', expecting {expected}"
            )
    return bytes_array(items, shape, tensor, model)


def bytes_array(items: Sequence[Any], shape: Sequence[int], tensor: str, model: str) -> np.ndarray:
    """BYTES elements -> ``dtype=object`` array of ``shape``; the element count must match the shape's."""
    expected = math.prod(shape)
    if len(items) != expected:
        raise InvalidArgumentError(
            f"expected {expected} string elements for inference input '{echo(tensor)}' for model '{echo(model)}', "
            f"got {len(items)}"
        )
    array = np.empty(expected, dtype=object)
    array[:] = list(items)
    return array.reshape(tuple(shape))


def array_from_raw(buffer: Any, datatype: str, shape: Sequence[int], tensor: str, model: str) -> np.ndarray:
    """Raw little-endian bytes -> array of ``shape``; zero-copy (a view) for fixed-size dtypes."""
    shape = tuple(int(d) for d in shape)
    if datatype == BYTES:
        return deserialize_bytes_tensor(buffer, shape, tensor, model)
    dtype = wire_dtype(datatype, tensor, model)
    expected = math.prod(shape) * dtype.itemsize
    got = memoryview(buffer).nbytes
    if got != expected:
        raise InvalidArgumentError(
            f"input byte size mismatch for input '{echo(tensor)}' for model '{echo(model)}'. "
            f"Expected {expected}, got {got}"
        )
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def array_to_raw(array: np.ndarray) -> Tuple[str, Any]:
    """Array -> (wire datatype, buffer). Fixed-size dtypes come back as a memoryview, not a copy.

    Raises ``PyTritonBadParameterError`` for a dtype with no wire name.
    """
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    datatype = to_triton_dtype(array.dtype)
    if datatype == BYTES:
        return datatype, serialize_bytes_tensor(array)
    if array.size == 0:  # memoryview.cast refuses zeros in the shape
        return datatype, b""
    return datatype, np.ascontiguousarray(array).data.cast("B")


def output_to_raw(array: np.ndarray) -> Tuple[str, Any]:
    """An output array -> (wire datatype, buffer): HTTP's binary outputs and gRPC's ``raw_output_contents``.

    Little-endian fixed-size arrays (the common case) skip the generic dtype dispatch; ``ml_dtypes.bfloat16``
    goes as BF16. Raises ``PyTritonBadParameterError`` for a dtype with no wire name.
    """
    dtype = array.dtype
    datatype = FIXED_WIRE_NAMES.get(dtype)
    if datatype is not None and array.size:
        return datatype, np.ascontiguousarray(array).data.cast("B")
    if dtype.kind == "V" and dtype.name == "bfloat16":
        # ml_dtypes.bfloat16 exports no buffer format; send its 2-byte words
        if not array.size:
            return "BF16", b""
        return "BF16", np.ascontiguousarray(array).view(np.uint16).data.cast("B")
    return array_to_raw(array)
