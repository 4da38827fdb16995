"""Server metadata, model metadata, model config and repository index documents, built from core models.

Pure functions over duck-typed core ``Model`` objects (``name``, ``version``, ``config``, ``inputs``,
``outputs``, ``instance_count``, ``max_batch_size``, ``decoupled``, ``ready``). The model config is built
as Triton's ``inference.ModelConfig`` proto, so gRPC can return it as is; ``model_config_dict`` is its
HTTP JSON form (Triton's: proto field names, defaults printed, int64 fields as JSON numbers).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from tritonclient.grpc import model_config_pb2

from pytriton_lite.model_config import to_triton_dtype

__all__ = [
    "SERVER_VERSION",
    "SERVER_EXTENSIONS",
    "message_to_dict",
    "model_config_dict",
    "model_config_proto",
    "model_metadata",
    "repository_index",
    "server_metadata",
]

SERVER_VERSION = "2.73.0"  # the Triton protocol release this server follows
# Only what we implement, in Triton's order (core/src/server.cc).
SERVER_EXTENSIONS = ("schedule_policy", "model_configuration", "binary_tensor_data", "parameters", "statistics")

_INT64_TYPES = (
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT64,
)


def server_metadata(
    server_id: str = "triton", version: str = SERVER_VERSION, extensions: Sequence[str] = SERVER_EXTENSIONS
) -> Dict[str, Any]:
    """``GET /v2``: ``{"name","version","extensions"}``."""
    return {"name": server_id, "version": version, "extensions": list(extensions)}


def _config_type(spec: Any) -> str:
    datatype = spec.triton_dtype if hasattr(spec, "triton_dtype") else to_triton_dtype(spec.dtype)
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


def _tensor_metadata(spec: Any, batching: bool) -> Dict[str, Any]:
    datatype = spec.triton_dtype if hasattr(spec, "triton_dtype") else to_triton_dtype(spec.dtype)
    shape = [int(d) for d in spec.shape]
    return {"name": spec.name, "datatype": datatype, "shape": [-1, *shape] if batching else shape}


def model_metadata(model: Any, versions: Optional[Iterable[Any]] = None) -> Dict[str, Any]:
    """``GET /v2/models/{m}[/versions/{v}]``, keys in Triton's order; versions are strings."""
    batching = model.max_batch_size > 0
    return {
        "name": model.name,
        "versions": [str(v) for v in (versions if versions is not None else [model.version])],
        "platform": "python",  # config platform is "", so Triton reports the backend
        "inputs": [_tensor_metadata(spec, batching) for spec in model.inputs],
        "outputs": [_tensor_metadata(spec, batching) for spec in model.outputs],
    }


def _queue_policy(target: Any, policy: Any) -> None:
    action = getattr(policy.timeout_action, "value", policy.timeout_action)
    target.timeout_action = model_config_pb2.ModelQueuePolicy.TimeoutAction.Value(str(action))
    target.default_timeout_microseconds = int(policy.default_timeout_microseconds)
    target.allow_timeout_override = bool(policy.allow_timeout_override)
    target.max_queue_size = int(policy.max_queue_size)


def model_config_proto(model: Any) -> model_config_pb2.ModelConfig:
    """The model's ``inference.ModelConfig``, normalised the way Triton serves it."""
    config = model.config
    max_batch_size = int(model.max_batch_size)
    proto = model_config_pb2.ModelConfig(name=model.name, platform="", backend="python", max_batch_size=max_batch_size)
    proto.version_policy.latest.num_versions = 1
    for spec in model.inputs:
        entry = proto.input.add(name=spec.name, dims=[int(d) for d in spec.shape], optional=bool(spec.optional))
        entry.data_type = model_config_pb2.DataType.Value(_config_type(spec))
    for spec in model.outputs:
        entry = proto.output.add(name=spec.name, dims=[int(d) for d in spec.shape])
        entry.data_type = model_config_pb2.DataType.Value(_config_type(spec))
    if max_batch_size > 0:
        # dynamic_batching only when batching: perf_analyzer picks its scheduler mode by key presence.
        batcher = getattr(config, "batcher", None)
        section = proto.dynamic_batching
        section.SetInParent()
        preferred = list(getattr(batcher, "preferred_batch_size", None) or []) or [max_batch_size]
        section.preferred_batch_size.extend(int(s) for s in preferred)
        if batcher is not None:
            section.max_queue_delay_microseconds = int(batcher.max_queue_delay_microseconds)
            section.preserve_ordering = bool(batcher.preserve_ordering)
            section.priority_levels = int(batcher.priority_levels)
            section.default_priority_level = int(batcher.default_priority_level)
            if batcher.default_queue_policy is not None:
                _queue_policy(section.default_queue_policy, batcher.default_queue_policy)
            for level, policy in (batcher.priority_queue_policy or {}).items():
                _queue_policy(section.priority_queue_policy[int(level)], policy)
    group = proto.instance_group.add(name=f"{model.name}_0", count=int(model.instance_count))
    group.kind = model_config_pb2.ModelInstanceGroup.Kind.Value("KIND_CPU")
    proto.model_transaction_policy.decoupled = bool(model.decoupled)
    proto.model_transaction_policy.SetInParent()  # present even when decoupled is false
    if getattr(config, "response_cache", False):
        proto.response_cache.enable = True
    for warmup in getattr(config, "model_warmup", None) or []:
        _add_warmup(proto, warmup)
    return proto


def _add_warmup(proto: model_config_pb2.ModelConfig, warmup: Any) -> None:
    entry = proto.model_warmup.add(name=warmup.name, batch_size=int(warmup.batch_size), count=int(warmup.count))
    for name, winput in warmup.inputs.items():
        target = entry.inputs[name]
        datatype = to_triton_dtype(winput.dtype)
        target.data_type = model_config_pb2.DataType.Value("TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}")
        target.dims.extend(int(d) for d in winput.shape)
        if winput.zero_data:
            target.zero_data = True
        elif winput.random_data:
            target.random_data = True
        elif winput.input_data_file is not None:
            target.input_data_file = str(winput.input_data_file)


def message_to_dict(message: Message) -> Dict[str, Any]:
    """Proto -> Triton's JSON form: field names, default scalars printed, int64/uint64 as numbers."""
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


def model_config_dict(model: Any) -> Dict[str, Any]:
    """``GET /v2/models/{m}/config``: the config proto as Triton's JSON (int64 fields as numbers)."""
    return message_to_dict(model_config_proto(model))


def repository_index(models: Iterable[Any]) -> List[Dict[str, Any]]:
    """``POST /v2/repository/index``: ``[{"name","version","state"}]`` (``reason`` only when non-empty)."""
    entries = []
    for model in models:
        state = getattr(model, "state", None)
        if not isinstance(state, str):
            state = "READY" if model.ready else "UNAVAILABLE"
        entry = {"name": model.name, "version": str(model.version), "state": state}
        reason = getattr(model, "reason", "")
        if isinstance(reason, str) and reason:
            entry["reason"] = reason
        entries.append(entry)
    return entries
