"""``pb_utils.Tensor``: a named numpy array, with DLPack both ways.

Tensors always live in host memory here (``is_cpu()`` is True): ``from_dlpack`` copies a GPU tensor to the
host (through torch when the producer is one), so a model written for Triton's GPU tensors still runs.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

from pytriton_lite.pb_utils._errors import TritonModelException
from pytriton_lite.pb_utils._types import BFLOAT16, BYTES_CODE, dtype_code

_DLPACK_CPU: Tuple[int, int] = (1, 0)  # (kDLCPU, device 0)
_DLPACK_ERRORS = (AttributeError, BufferError, RuntimeError, TypeError, ValueError)


class Tensor:
    """``Tensor(name, numpy_array)``: an input a model receives, or an output it returns."""

    __slots__ = ("_name", "_array", "_code")

    def __init__(self, name: str, numpy_array: Any) -> None:
        if not isinstance(name, str):
            raise TypeError(f"Tensor name must be a str, got {type(name).__name__}")
        array = numpy_array if isinstance(numpy_array, np.ndarray) else np.asarray(numpy_array)
        code = dtype_code(array.dtype)
        if code is None:
            raise TritonModelException(f"tensor '{name}': unsupported numpy dtype {array.dtype}")
        self._name = name
        self._array = array
        self._code = code

    @classmethod
    def _wrap(cls, name: str, array: np.ndarray) -> Tensor:
        """A tensor around an array the server already validated (no checks: the request path)."""
        tensor = cls.__new__(cls)
        tensor._name = name
        tensor._array = array
        tensor._code = 0  # computed when asked for
        return tensor

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        """The data (BYTES tensors: an object array of ``bytes``)."""
        return self._array

    def shape(self) -> List[int]:
        return [int(d) for d in self._array.shape]

    def triton_dtype(self) -> int:
        """The ``TRITONSERVER_DataType`` code: 11 for FP32, 13 for BYTES (see ``triton_to_numpy_type``)."""
        if not self._code:
            self._code = dtype_code(self._array.dtype) or 0
        return self._code

    def is_cpu(self) -> bool:
        return True

    def to_dlpack(self) -> Any:
        """A DLPack capsule sharing the data (for ``torch.utils.dlpack.from_dlpack`` and the like)."""
        return self.__dlpack__()

    def __dlpack__(self, stream: Optional[Any] = None, **kwargs: Any) -> Any:
        if self.triton_dtype() == BYTES_CODE:
            raise TritonModelException(f"tensor '{self._name}': a BYTES tensor cannot be exported with DLPack")
        return self._array.__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self) -> Tuple[int, int]:
        return _DLPACK_CPU

    @staticmethod
    def from_dlpack(name: str, capsule: Any) -> Tensor:
        """A tensor from a DLPack capsule or from any object with ``__dlpack__`` (a torch tensor, a CuPy or JAX
        array). GPU data is copied to the host."""
        return Tensor(name, _array_from_dlpack(capsule))

    def __repr__(self) -> str:
        return f"Tensor(name={self._name!r}, shape={self.shape()}, dtype={self._array.dtype})"


class _Capsule:
    """Gives a bare DLPack capsule the ``__dlpack__`` protocol ``np.from_dlpack`` reads."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        return self._capsule

    def __dlpack_device__(self) -> Tuple[int, int]:
        return _DLPACK_CPU


def _array_from_dlpack(source: Any) -> np.ndarray:
    producer = source if hasattr(source, "__dlpack__") else _Capsule(source)
    try:
        return np.from_dlpack(producer)
    except _DLPACK_ERRORS as exc:
        try:
            fallback = _from_torch(source)
        except _DLPACK_ERRORS:
            fallback = None
        if fallback is None:
            raise TritonModelException(f"cannot read the DLPack tensor: {exc}") from exc
        return fallback


def _from_torch(source: Any) -> Optional[np.ndarray]:
    """A GPU or bfloat16 tensor numpy cannot read directly: through torch, copied to the host."""
    try:
        import torch
        from torch.utils import dlpack as torch_dlpack
    except ImportError:  # pragma: no cover - torch is optional
        return None
    tensor = source if isinstance(source, torch.Tensor) else torch_dlpack.from_dlpack(source)
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16 and BFLOAT16 is not None:
        return tensor.view(torch.int16).numpy().view(BFLOAT16)
    return tensor.numpy()


__all__ = ["Tensor"]
