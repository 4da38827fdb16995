"""Flag constants, Triton datatype codes and the byte-tensor helpers of ``triton_python_backend_utils``.

Datatype codes are ``TRITONSERVER_DataType`` values (what ``Tensor.triton_dtype()`` returns), which are also
the numbers of the model config's ``TYPE_*`` enum: BOOL 1, UINT8 2 ... FP64 12, BYTES/STRING 13, BF16 14.
"""

from __future__ import annotations

import struct
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from pytriton_lite.protocol.dtypes import serialize_bytes_tensor as _serialize

TRITONSERVER_REQUEST_FLAG_SEQUENCE_START = 1
TRITONSERVER_REQUEST_FLAG_SEQUENCE_END = 2
TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1
TRITONSERVER_REQUEST_RELEASE_ALL = 1
TRITONSERVER_REQUEST_RELEASE_RESCHEDULE = 2

BYTES_CODE = 13
BF16_CODE = 14

try:  # numpy has no bfloat16; ml_dtypes (a dependency of onnx and jax) gives one
    import ml_dtypes

    BFLOAT16: Optional[np.dtype[Any]] = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    BFLOAT16 = None

# (code, config name, numpy type): the one table every helper below reads
_TABLE: Tuple[Tuple[int, str, Any], ...] = (
    (1, "TYPE_BOOL", np.bool_),
    (2, "TYPE_UINT8", np.uint8),
    (3, "TYPE_UINT16", np.uint16),
    (4, "TYPE_UINT32", np.uint32),
    (5, "TYPE_UINT64", np.uint64),
    (6, "TYPE_INT8", np.int8),
    (7, "TYPE_INT16", np.int16),
    (8, "TYPE_INT32", np.int32),
    (9, "TYPE_INT64", np.int64),
    (10, "TYPE_FP16", np.float16),
    (11, "TYPE_FP32", np.float32),
    (12, "TYPE_FP64", np.float64),
    (BYTES_CODE, "TYPE_STRING", np.object_),
)
_NUMPY_OF_CODE: Dict[int, Any] = {code: np_type for code, _, np_type in _TABLE}
_CODE_OF_DTYPE: Dict[np.dtype[Any], int] = {np.dtype(np_type): code for code, _, np_type in _TABLE}
# Triton's own table says ``bool`` (the Python type) for TYPE_BOOL
_NUMPY_OF_CONFIG_NAME: Dict[str, Any] = {name: (bool if code == 1 else np_type) for code, name, np_type in _TABLE}
if BFLOAT16 is not None:
    _NUMPY_OF_CODE[BF16_CODE] = BFLOAT16.type
    _CODE_OF_DTYPE[BFLOAT16] = BF16_CODE
    _NUMPY_OF_CONFIG_NAME["TYPE_BF16"] = BFLOAT16.type


def dtype_code(dtype: np.dtype[Any]) -> Optional[int]:
    """The datatype code of a numpy dtype (object, bytes and str arrays are BYTES); None if it has none."""
    code = _CODE_OF_DTYPE.get(dtype)
    if code is None and dtype.kind in "OSU":
        return BYTES_CODE
    return code


def triton_to_numpy_type(data_type: int) -> Any:
    """Datatype code -> numpy type (``np.object_`` for BYTES); None for an unknown code."""
    return _NUMPY_OF_CODE.get(int(data_type))


def numpy_to_triton_type(data_type: Any) -> Optional[int]:
    """numpy type or dtype -> datatype code (``np.object_`` and ``np.bytes_`` are BYTES); None if unsupported."""
    try:
        return dtype_code(np.dtype(data_type))
    except TypeError:
        return None


def triton_string_to_numpy(triton_type_string: str) -> Any:
    """Model-config type name -> numpy type: ``"TYPE_FP32"`` -> ``np.float32``; a KeyError for an unknown name."""
    return _NUMPY_OF_CONFIG_NAME[triton_type_string]


def serialize_byte_tensor(input_tensor: np.ndarray) -> Any:
    """A BYTES tensor (object or ``np.bytes_`` array) -> its elements in C order, each as a little-endian uint32
    length and the bytes (str elements UTF-8 encoded). ``()`` for an empty tensor, None for another dtype."""
    if input_tensor.size == 0:
        return ()
    if input_tensor.dtype.kind not in "OS":
        return None
    return _serialize(np.ascontiguousarray(input_tensor))


def deserialize_bytes_tensor(encoded_tensor: Any) -> np.ndarray:
    """The inverse of ``serialize_byte_tensor``: a 1-D object array of ``bytes``."""
    view = memoryview(encoded_tensor).cast("B")
    items: List[bytes] = []
    offset = 0
    end = len(view)
    while offset < end:
        (length,) = struct.unpack_from("<I", view, offset)
        offset += 4
        items.append(bytes(view[offset : offset + length]))
        offset += length
    array = np.empty(len(items), dtype=np.object_)
    array[:] = items
    return array


__all__ = [
    "BFLOAT16",
    "BF16_CODE",
    "BYTES_CODE",
    "TRITONSERVER_REQUEST_FLAG_SEQUENCE_END",
    "TRITONSERVER_REQUEST_FLAG_SEQUENCE_START",
    "TRITONSERVER_REQUEST_RELEASE_ALL",
    "TRITONSERVER_REQUEST_RELEASE_RESCHEDULE",
    "TRITONSERVER_RESPONSE_COMPLETE_FINAL",
    "deserialize_bytes_tensor",
    "dtype_code",
    "numpy_to_triton_type",
    "serialize_byte_tensor",
    "triton_string_to_numpy",
    "triton_to_numpy_type",
]
