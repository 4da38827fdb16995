"""PyTriton's ``pytriton.model_config.tensor``: the ``Tensor`` spec given to ``Triton.bind``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Type, Union

import numpy as np

from pytriton_lite._dtypes import normalize_dtype, to_triton_dtype


@dataclass(frozen=True)
class Tensor:
    """Input or output tensor spec. ``shape`` excludes the batch dim when batching; -1 = dynamic."""

    shape: tuple
    dtype: Union[np.dtype, Type[np.dtype], Type[object], str]
    name: Optional[str] = None
    optional: Optional[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    @property
    def triton_dtype(self) -> str:
        return to_triton_dtype(self.dtype)


__all__ = ["Tensor"]
