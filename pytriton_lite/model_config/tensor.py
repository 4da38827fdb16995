"""PyTriton's ``pytriton.model_config.tensor``: the ``Tensor`` spec given to ``Triton.bind``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Type, Union

import numpy as np

from pytriton_lite._dtypes import normalize_dtype, to_triton_dtype
from pytriton_lite.exceptions import PyTritonValidationError

# Triton's ModelInput.Format names; "NCHW" / "NHWC" / "NONE" are accepted as short forms
TENSOR_FORMATS = ("FORMAT_NONE", "FORMAT_NHWC", "FORMAT_NCHW")


def _format_name(value: str) -> str:
    name = str(value).upper()
    name = name if name.startswith("FORMAT_") else f"FORMAT_{name}"
    if name not in TENSOR_FORMATS:
        raise PyTritonValidationError(f"Tensor format must be one of {', '.join(TENSOR_FORMATS)}, got {value!r}")
    return name


@dataclass(frozen=True)
class Tensor:
    """Input or output tensor spec. ``shape`` excludes the batch dim when batching; -1 = dynamic.

    pytriton_lite extensions (PyTriton has neither): ``labels``, an output's class labels for Triton's
    classification extension (index ``i`` names class ``i``; served as ``label_filename``), and ``format``,
    an input's image layout (``"FORMAT_NCHW"``, ``"FORMAT_NHWC"`` or ``"FORMAT_NONE"``; served as ``format``).
    """

    shape: tuple
    dtype: Union[np.dtype, Type[np.dtype], Type[object], str]
    name: Optional[str] = None
    optional: Optional[bool] = False
    labels: Optional[Sequence[str]] = None
    format: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.labels is not None:
            if isinstance(self.labels, (str, bytes)):
                raise PyTritonValidationError("Tensor labels must be a sequence of strings, one per class")
            labels: Tuple[str, ...] = tuple(str(label) for label in self.labels)
            object.__setattr__(self, "labels", labels)
        if self.format is not None:
            object.__setattr__(self, "format", _format_name(self.format))

    @property
    def triton_dtype(self) -> str:
        return to_triton_dtype(self.dtype)


__all__ = ["TENSOR_FORMATS", "Tensor"]
