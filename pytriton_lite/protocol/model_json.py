"""Server metadata, model metadata, model config and repository index documents, built from ``ModelInfo``.

Pure functions over the data plane's frozen ``ModelInfo``. The served model config already is Triton's
``inference.ModelConfig`` proto (gRPC returns it as is); ``model_config_dict`` is its HTTP JSON form
(Triton's: proto field names, defaults printed, int64 fields as JSON numbers).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.types import ModelInfo, TensorInfo

__all__ = [
    "SERVER_VERSION",
    "MODEL_REPOSITORY_EXTENSIONS",
    "SERVER_EXTENSIONS",
    "load_files",
    "message_to_dict",
    "model_config_dict",
    "model_metadata",
    "repository_index",
    "server_metadata",
]

SERVER_VERSION = "2.73.0"  # the Triton protocol release this server follows
# Only what we implement, in Triton's order (core/src/server.cc).
SERVER_EXTENSIONS = (
    "classification",
    "schedule_policy",
    "model_configuration",
    "system_shared_memory",
    "binary_tensor_data",
    "parameters",
    "statistics",
    "trace",
    "logging",
)
#: listed (before ``schedule_policy``, Triton's order) when a model repository serves load/unload and the index
MODEL_REPOSITORY_EXTENSIONS = ("model_repository", "model_repository(unload_dependents)")

_INT64_TYPES = (
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT64,
)


def server_metadata(
    server_id: str = "triton",
    version: str = SERVER_VERSION,
    extensions: Sequence[str] = SERVER_EXTENSIONS,
    *,
    model_repository: bool = False,
) -> Dict[str, Any]:
    """``GET /v2``: ``{"name","version","extensions"}``; ``model_repository``: a model repository is served."""
    listed = list(MODEL_REPOSITORY_EXTENSIONS if model_repository else ()) + list(extensions)
    return {"name": server_id, "version": version, "extensions": listed}


def _tensor_metadata(spec: TensorInfo, batching: bool) -> Dict[str, Any]:
    shape = [int(d) for d in spec.shape]
    return {"name": spec.name, "datatype": spec.datatype, "shape": [-1, *shape] if batching else shape}


def model_metadata(model: ModelInfo, versions: Optional[Iterable[int]] = None) -> Dict[str, Any]:
    """``GET /v2/models/{m}[/versions/{v}]``, keys in Triton's order; versions are strings."""
    batching = model.max_batch_size > 0
    config = model.config
    return {
        "name": model.name,
        "versions": [str(v) for v in (versions if versions is not None else [model.version])],
        # Triton reports the platform, or the backend when the config names none
        "platform": config.platform or config.backend,
        "inputs": [_tensor_metadata(spec, batching) for spec in model.inputs],
        "outputs": [_tensor_metadata(spec, batching) for spec in model.outputs],
    }


def message_to_dict(message: Message) -> Dict[str, Any]:
    """Proto -> Triton's JSON form: field names, default scalars printed, int64/uint64 as numbers."""
    data: Dict[str, Any]
    try:
        data = json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    except TypeError:  # protobuf < 5.26 spells the option differently
        data = json_format.MessageToDict(message, preserving_proto_field_name=True, including_default_value_fields=True)
    _int64_to_numbers(message.DESCRIPTOR, data)
    return data


def _int64_to_numbers(descriptor: Any, data: Dict[str, Any]) -> None:
    for fd in descriptor.fields:
        if fd.name not in data:
            continue
        value = data[fd.name]
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            for key in list(value):
                if value_fd.message_type is not None:
                    _int64_to_numbers(value_fd.message_type, value[key])
                elif value_fd.cpp_type in _INT64_TYPES:
                    value[key] = int(value[key])
        elif fd.message_type is not None:
            for item in value if isinstance(value, list) else [value]:
                _int64_to_numbers(fd.message_type, item)
        elif fd.cpp_type in _INT64_TYPES:
            data[fd.name] = [int(v) for v in value] if isinstance(value, list) else int(value)


def model_config_dict(model: ModelInfo) -> Dict[str, Any]:
    """``GET /v2/models/{m}/config``: the served config proto as Triton's JSON (int64 fields as numbers)."""
    return message_to_dict(model.config)


def repository_index(models: Iterable[ModelInfo]) -> List[Dict[str, Any]]:
    """``POST /v2/repository/index``: ``[{"name","version","state"}]`` (``reason`` only when non-empty)."""
    entries = []
    for model in models:
        entry = {"name": model.name, "version": model.version_str, "state": model.state.value}
        if model.reason:
            entry["reason"] = model.reason
        entries.append(entry)
    return entries


FILE_PARAMETER_PREFIX = "file:"


def load_files(model: str, parameters: Mapping[str, Any], base64_text: bool) -> Dict[str, bytes]:
    """A load request's ``file:<path>`` parameters as ``{path: content}``: HTTP sends base64 text
    (``base64_text``), gRPC ``bytes_param`` values (already bytes)."""
    files: Dict[str, bytes] = {}
    for key, value in parameters.items():
        if not key.startswith(FILE_PARAMETER_PREFIX):
            continue
        if base64_text:
            try:
                if not isinstance(value, str):
                    raise TypeError(type(value).__name__)
                content = base64.b64decode(value, validate=True)
            except (TypeError, ValueError, binascii.Error):
                raise InvalidArgumentError(
                    f"failed to load '{model}': parameter '{key}' must be base64-encoded file content"
                ) from None
        elif isinstance(value, bytes):
            content = value
        else:
            raise InvalidArgumentError(f"failed to load '{model}': parameter '{key}' must be a bytes_param")
        files[key[len(FILE_PARAMETER_PREFIX) :]] = content
    return files
