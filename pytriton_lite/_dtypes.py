"""The one table of tensor datatypes: numpy dtypes, Triton wire names and model-config ``TYPE_*`` names.

A bottom-layer module (numpy and ``pytriton_lite.exceptions`` only): ``model_config`` re-exports the
public helpers under PyTriton's names, and the protocol codecs build their wire lookups from it.

- wire names: ``"BOOL"``, ``"INT8"`` ... ``"FP64"``, ``"BYTES"`` (Triton's v2 ``datatype`` strings);
- config names: ``"TYPE_FP32"`` ..., with ``"TYPE_STRING"`` for BYTES (``inference.DataType``);
- wire dtypes: the little-endian numpy dtype a fixed-size wire name travels as.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple, Type, Union

import numpy as np

from pytriton_lite.exceptions import PyTritonBadParameterError, PyTritonModelConfigError

__all__ = [
    "BYTES",
    "FIXED_WIRE_NAMES",
    "LE_WIRE_DTYPES",
    "TRITON_DTYPES",
    "config_type_name",
    "from_triton_dtype",
    "is_bytes_dtype",
    "normalize_dtype",
    "to_triton_dtype",
    "wire_name_of_config_type",
]

BYTES = "BYTES"
_CONFIG_PREFIX = "TYPE_"
_CONFIG_BYTES = "TYPE_STRING"

_NP_TO_TRITON: Dict[np.dtype[Any], str] = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.int8): "INT8",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.uint16): "UINT16",
    np.dtype(np.uint32): "UINT32",
    np.dtype(np.uint64): "UINT64",
    np.dtype(np.float16): "FP16",
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
}
_TRITON_TO_NP: Dict[str, np.dtype[Any]] = {v: k for k, v in _NP_TO_TRITON.items()}
_TRITON_TO_NP[BYTES] = np.dtype(object)

TRITON_DTYPES: Tuple[str, ...] = tuple(_TRITON_TO_NP)

# fixed-size wire name -> the little-endian dtype its buffer travels as
LE_WIRE_DTYPES: Dict[str, np.dtype[Any]] = {
    name: dtype.newbyteorder("<") for name, dtype in _TRITON_TO_NP.items() if name != BYTES
}
# little-endian fixed-size dtype -> wire name: the buffers of these go on the wire as they are
FIXED_WIRE_NAMES: Dict[np.dtype[Any], str] = {dtype: name for name, dtype in LE_WIRE_DTYPES.items()}

_BYTES_ALIASES = {"bytes", "object", "str", "string", "bytes_", "object_", BYTES, _CONFIG_BYTES}
_BYTES_TYPES = (bytes, object, str, np.bytes_, np.object_, np.str_)


def config_type_name(wire_name: str) -> str:
    """Wire name -> model-config ``DataType`` name: ``"FP32"`` -> ``"TYPE_FP32"``, ``"BYTES"`` -> ``"TYPE_STRING"``."""
    return _CONFIG_BYTES if wire_name == BYTES else _CONFIG_PREFIX + wire_name


def wire_name_of_config_type(name: str) -> str:
    """The inverse of ``config_type_name`` (``"TYPE_STRING"`` -> ``"BYTES"``); names without ``TYPE_`` pass as they are.

    The result is not checked against the table (``from_triton_dtype`` does that).
    """
    if name == _CONFIG_BYTES:
        return BYTES
    return name[len(_CONFIG_PREFIX) :] if name.startswith(_CONFIG_PREFIX) else name


def is_bytes_dtype(dtype: Any) -> bool:
    """True for every spelling of a BYTES tensor dtype (bytes, object, np.bytes_, np.str_, "S", "U", "O")."""
    if dtype in _BYTES_TYPES:
        return True
    if isinstance(dtype, str):
        return dtype in _BYTES_ALIASES
    try:
        return np.dtype(dtype).kind in "OSU"
    except TypeError:
        return False


_NAME_CACHE: Dict[np.dtype[Any], str] = {}


def to_triton_dtype(dtype: Any) -> str:
    """numpy dtype (any spelling) -> Triton wire name such as ``"FP32"`` or ``"BYTES"``."""
    if isinstance(dtype, np.dtype):  # the per-request case: a dict hit instead of several conversions
        cached = _NAME_CACHE.get(dtype)
        if cached is None:
            cached = _NAME_CACHE[dtype] = _to_triton_dtype(dtype)
        return cached
    return _to_triton_dtype(dtype)


def _to_triton_dtype(dtype: Any) -> str:
    if is_bytes_dtype(dtype):
        return BYTES
    if isinstance(dtype, str) and dtype.upper() in _TRITON_TO_NP:
        return dtype.upper()
    if isinstance(dtype, str) and dtype.startswith(_CONFIG_PREFIX):
        return wire_name_of_config_type(dtype)
    try:
        return _NP_TO_TRITON[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise PyTritonBadParameterError(f"Unsupported tensor dtype: {dtype!r}") from None


def from_triton_dtype(name: str) -> np.dtype[Any]:
    """Triton wire name (``"FP32"`` or ``"TYPE_FP32"``; ``TYPE_STRING`` = BYTES) -> numpy dtype."""
    key = wire_name_of_config_type(name)
    if key == "STRING":
        key = BYTES
    try:
        return _TRITON_TO_NP[key]
    except KeyError:
        raise PyTritonModelConfigError(f"Unsupported Triton datatype: {name!r}") from None


def normalize_dtype(dtype: Any) -> Union[Type[Any], np.dtype[Any]]:
    """Normalise a user-given dtype to PyTriton's form: a numpy scalar type, or ``bytes``/``object``."""
    result: Union[Type[Any], np.dtype[Any]]
    if dtype in (bytes, object):  # also matches np.dtype(object) and np.dtype("S"), returned as they are
        result = dtype
        return result
    if isinstance(dtype, str):
        if dtype in _BYTES_ALIASES:
            return np.bytes_
        upper = dtype.upper()
        if upper.startswith(_CONFIG_PREFIX):
            upper = upper[len(_CONFIG_PREFIX) :]
        if upper in _TRITON_TO_NP:
            return _TRITON_TO_NP[upper].type if upper != BYTES else np.bytes_
    try:
        result = np.dtype(dtype).type
    except TypeError:
        raise PyTritonBadParameterError(f"Unsupported tensor dtype: {dtype!r}") from None
    return result
