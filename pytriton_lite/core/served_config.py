"""The served model configuration: Triton's own ``inference.ModelConfig`` protobuf, built once per model.

Bound models get theirs from PyTriton's dataclasses at ``bind``; repository models will bring theirs from
config.pbtxt. Everything downstream (the batcher's policy, ``/config`` over HTTP and gRPC, the metrics'
cache families) reads this one message, so every config field a user sets survives to the wire.
"""

from __future__ import annotations

from typing import Sequence

from tritonclient.grpc import model_config_pb2
from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto
from tritonclient.grpc.model_config_pb2 import ModelQueuePolicy

from pytriton_lite.core.sequence_config import SequenceConfigError, check_sequence_batching, complete_sequence_batching
from pytriton_lite.exceptions import PyTritonBadParameterError
from pytriton_lite.model_config import ModelConfig, ModelWarmup, QueuePolicy, Tensor, to_triton_dtype
from pytriton_lite.model_config.sequence import SequenceBatcher, SequenceBatcherStrategyOldest


def config_data_type(triton_dtype: str) -> int:
    """Wire datatype name (``"FP32"``, ``"BYTES"``) -> the config's ``DataType`` enum value."""
    name = "TYPE_STRING" if triton_dtype == "BYTES" else f"TYPE_{triton_dtype}"
    return int(model_config_pb2.DataType.Value(name))


def bound_label_filename(output: str) -> str:
    """The ``label_filename`` a bound output with ``Tensor(labels=...)`` is served with."""
    return f"{output}_labels.txt"


def _queue_policy(target: ModelQueuePolicy, policy: QueuePolicy) -> None:
    action = getattr(policy.timeout_action, "value", policy.timeout_action)
    target.timeout_action = model_config_pb2.ModelQueuePolicy.TimeoutAction.Value(str(action))
    target.default_timeout_microseconds = int(policy.default_timeout_microseconds)
    target.allow_timeout_override = bool(policy.allow_timeout_override)
    target.max_queue_size = int(policy.max_queue_size)


def _dynamic_batching(proto: ModelConfigProto, config: ModelConfig, max_batch_size: int) -> None:
    # dynamic_batching only when batching: perf_analyzer picks its scheduler mode by the key's presence
    batcher = config.batcher
    section = proto.dynamic_batching
    section.SetInParent()
    preferred = list(getattr(batcher, "preferred_batch_size", None) or []) or [max_batch_size]
    section.preferred_batch_size.extend(int(s) for s in preferred)
    if batcher is None:
        return
    section.max_queue_delay_microseconds = int(batcher.max_queue_delay_microseconds)
    section.preserve_ordering = bool(batcher.preserve_ordering)
    section.priority_levels = int(batcher.priority_levels)
    section.default_priority_level = int(batcher.default_priority_level)
    if batcher.default_queue_policy is not None:
        _queue_policy(section.default_queue_policy, batcher.default_queue_policy)
    for level, policy in (batcher.priority_queue_policy or {}).items():
        _queue_policy(section.priority_queue_policy[int(level)], policy)


def _sequence_batching(proto: ModelConfigProto, batcher: SequenceBatcher) -> None:
    section = proto.sequence_batching
    section.SetInParent()
    section.max_sequence_idle_microseconds = int(batcher.max_sequence_idle_microseconds or 0)
    strategy = batcher.strategy
    if isinstance(strategy, SequenceBatcherStrategyOldest):
        section.oldest.max_candidate_sequences = int(strategy.max_candidate_sequences)
        section.oldest.preferred_batch_size.extend(int(s) for s in strategy.preferred_batch_size)
        section.oldest.max_queue_delay_microseconds = int(strategy.max_queue_delay_microseconds)
        section.oldest.preserve_ordering = bool(strategy.preserve_ordering)
    elif strategy is not None:  # Direct (also Triton's default when no strategy is given)
        section.direct.SetInParent()
        section.direct.max_queue_delay_microseconds = int(strategy.max_queue_delay_microseconds)
        section.direct.minimum_slot_utilization = float(strategy.minimum_slot_utilization)
    for control_input in batcher.control_inputs:
        entry = section.control_input.add(name=str(control_input.input_name))
        for control in control_input.controls:
            target = entry.control.add()
            target.kind = model_config_pb2.ModelSequenceBatching.Control.Kind.Value(control.kind.value)
            target.int32_false_true.extend(int(v) for v in control.int32_false_true)
            target.fp32_false_true.extend(float(v) for v in control.fp32_false_true)
            target.bool_false_true.extend(bool(v) for v in control.bool_false_true)
            if control.dtype is not None:
                target.data_type = config_data_type(to_triton_dtype(control.dtype))
    complete_sequence_batching(proto)


def _add_warmup(proto: ModelConfigProto, warmup: ModelWarmup) -> None:
    entry = proto.model_warmup.add(name=warmup.name, batch_size=int(warmup.batch_size), count=int(warmup.count))
    for name, winput in warmup.inputs.items():
        target = entry.inputs[name]
        target.data_type = config_data_type(to_triton_dtype(winput.dtype))
        target.dims.extend(int(d) for d in winput.shape)
        if winput.zero_data:
            target.zero_data = True
        elif winput.random_data:
            target.random_data = True
        elif winput.input_data_file is not None:
            target.input_data_file = str(winput.input_data_file)


def bound_model_config(
    name: str, inputs: Sequence[Tensor], outputs: Sequence[Tensor], config: ModelConfig, instance_count: int
) -> ModelConfigProto:
    """The ``ModelConfig`` a model bound with ``Triton.bind`` is served with, normalised as Triton serves it.

    A bound model runs in this process's Python, one instance per callable: ``backend: "python"``,
    ``KIND_CPU`` instances; ``version_policy: all`` because every version bound is served.
    """
    max_batch_size = int(config.max_batch_size) if config.batching else 0
    proto = ModelConfigProto(name=name, platform="", backend="python", max_batch_size=max_batch_size)
    proto.version_policy.all.SetInParent()
    for spec in inputs:
        entry = proto.input.add(name=spec.name, dims=[int(d) for d in spec.shape], optional=bool(spec.optional))
        entry.data_type = config_data_type(spec.triton_dtype)
        if spec.format is not None:
            entry.format = model_config_pb2.ModelInput.Format.Value(spec.format)
    for spec in outputs:
        output = proto.output.add(name=spec.name, dims=[int(d) for d in spec.shape])
        output.data_type = config_data_type(spec.triton_dtype)
        if spec.labels:  # given at bind: there is no file, the name says where the labels came from
            output.label_filename = bound_label_filename(spec.name or "")
    if config.sequence_batcher is not None:
        _sequence_batching(proto, config.sequence_batcher)
    elif max_batch_size > 0:
        _dynamic_batching(proto, config, max_batch_size)
    group = proto.instance_group.add(name=f"{name}_0", count=int(instance_count))
    group.kind = model_config_pb2.ModelInstanceGroup.Kind.Value("KIND_CPU")
    proto.model_transaction_policy.decoupled = bool(config.decoupled)
    proto.model_transaction_policy.SetInParent()  # present even when decoupled is false
    if config.response_cache:
        proto.response_cache.enable = True
    for warmup in config.model_warmup or []:
        _add_warmup(proto, warmup)
    try:
        check_sequence_batching(proto)
    except SequenceConfigError as exc:
        raise PyTritonBadParameterError(str(exc)) from None
    return proto


__all__ = ["ModelConfigProto", "bound_label_filename", "bound_model_config", "config_data_type"]
