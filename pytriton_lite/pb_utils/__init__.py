"""Triton's python-backend utilities, in-process: what ``import triton_python_backend_utils as pb_utils``
gives a ``model.py`` served by pytriton_lite's python backend (the top-level ``triton_python_backend_utils``
package re-exports this one).

Written from Triton's documentation: ``Tensor``, ``InferenceRequest`` (received, and BLS with ``exec()`` /
``async_exec()``), ``InferenceResponse``, ``InferenceResponseSender``, ``TritonError`` and its codes,
``TritonModelException``, ``ModelConfig`` for ``auto_complete_config``, ``Logger``, ``MetricFamily`` /
``Metric`` (custom metrics on ``/metrics``), the flag constants and the helper functions. See
docs/model_repository.md for what differs from Triton (tensors are always in host memory; request
rescheduling and the model-loading API are not served).
"""

from __future__ import annotations

from pytriton_lite.pb_utils._config import (
    ModelConfig,
    get_input_config_by_name,
    get_output_config_by_name,
    using_decoupled_model_transaction_policy,
)
from pytriton_lite.pb_utils._control import is_model_ready, load_model, unload_model
from pytriton_lite.pb_utils._errors import TritonError, TritonModelException
from pytriton_lite.pb_utils._logger import Logger
from pytriton_lite.pb_utils._metrics import Metric, MetricFamily
from pytriton_lite.pb_utils._request import (
    TRITONSERVER_MEMORY_CPU,
    TRITONSERVER_MEMORY_GPU,
    InferenceRequest,
    InferenceResponseSender,
    PreferredMemory,
    get_input_tensor_by_name,
)
from pytriton_lite.pb_utils._response import InferenceResponse, ResponseIterator, get_output_tensor_by_name
from pytriton_lite.pb_utils._tensor import Tensor
from pytriton_lite.pb_utils._types import (
    TRITONSERVER_REQUEST_FLAG_SEQUENCE_END,
    TRITONSERVER_REQUEST_FLAG_SEQUENCE_START,
    TRITONSERVER_REQUEST_RELEASE_ALL,
    TRITONSERVER_REQUEST_RELEASE_RESCHEDULE,
    TRITONSERVER_RESPONSE_COMPLETE_FINAL,
    deserialize_bytes_tensor,
    numpy_to_triton_type,
    serialize_byte_tensor,
    triton_string_to_numpy,
    triton_to_numpy_type,
)

__all__ = [
    "InferenceRequest",
    "InferenceResponse",
    "InferenceResponseSender",
    "Logger",
    "Metric",
    "MetricFamily",
    "ModelConfig",
    "PreferredMemory",
    "ResponseIterator",
    "TRITONSERVER_MEMORY_CPU",
    "TRITONSERVER_MEMORY_GPU",
    "TRITONSERVER_REQUEST_FLAG_SEQUENCE_END",
    "TRITONSERVER_REQUEST_FLAG_SEQUENCE_START",
    "TRITONSERVER_REQUEST_RELEASE_ALL",
    "TRITONSERVER_REQUEST_RELEASE_RESCHEDULE",
    "TRITONSERVER_RESPONSE_COMPLETE_FINAL",
    "Tensor",
    "TritonError",
    "TritonModelException",
    "deserialize_bytes_tensor",
    "get_input_config_by_name",
    "get_input_tensor_by_name",
    "get_output_config_by_name",
    "get_output_tensor_by_name",
    "is_model_ready",
    "load_model",
    "numpy_to_triton_type",
    "serialize_byte_tensor",
    "triton_string_to_numpy",
    "triton_to_numpy_type",
    "unload_model",
    "using_decoupled_model_transaction_policy",
]
