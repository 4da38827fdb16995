"""The library the GPU bench servers run on: pytriton_lite, or PyTriton 0.7 with ``BENCH_IMPL=pytriton``.

The API is the same, so bench/gpu_server.py and bench/gpu_workers_server.py run unchanged on either (PyTriton's own
``@batch`` and config classes for PyTriton's run): bench/workers_matrix.py's side by side.
"""

import os

if os.environ.get("BENCH_IMPL") == "pytriton":
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig
else:
    from pytriton_lite.decorators import batch
    from pytriton_lite.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton_lite.triton import Triton, TritonConfig, TritonSecurityConfig

__all__ = ["batch", "DynamicBatcher", "ModelConfig", "Tensor", "Triton", "TritonConfig", "TritonSecurityConfig"]
