"""PyTriton's ``pytriton.model_config.model_config``: ``ModelConfig`` (given to ``Triton.bind``) and its checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from pytriton_lite.exceptions import PyTritonBadParameterError
from pytriton_lite.model_config.common import DynamicBatcher, ModelWarmup
from pytriton_lite.model_config.sequence import SequenceBatcher, validate_sequence_batcher


@dataclass
class ModelConfig:
    """Model configuration given to ``Triton.bind``."""

    batching: bool = True
    max_batch_size: int = 4
    batcher: DynamicBatcher = field(default_factory=DynamicBatcher)
    response_cache: bool = False
    decoupled: bool = False
    model_warmup: Optional[List[ModelWarmup]] = None
    # Triton's sequence_batching (stateful models); not in PyTriton. Replaces the dynamic batcher.
    sequence_batcher: Optional[SequenceBatcher] = None


def validate_model_config(config: ModelConfig) -> None:
    """PyTriton's config checks, raised as ``PyTritonBadParameterError``."""
    if config.batching and config.max_batch_size < 1:
        raise PyTritonBadParameterError("Parameter max_batch_size for model with batching enabled must be >= 1.")
    if config.sequence_batcher is not None:
        validate_sequence_batcher(config.sequence_batcher)
        if config.batcher != DynamicBatcher():
            raise PyTritonBadParameterError(
                "ModelConfig.batcher (dynamic batching) and ModelConfig.sequence_batcher exclude each other: "
                "set one of them"
            )
    if not config.batching:
        return
    _validate_batcher(config.batcher, config.max_batch_size)
    for warmup in config.model_warmup or []:
        _validate_warmup(warmup)


def _validate_batcher(batcher: DynamicBatcher, max_batch_size: int) -> None:
    if batcher.max_queue_delay_microseconds < 0:
        raise PyTritonBadParameterError("max_queue_delay_microseconds must be >= 0.")
    if batcher.preferred_batch_size:
        for size in batcher.preferred_batch_size:
            if not 1 <= int(size) <= max_batch_size:
                raise PyTritonBadParameterError(
                    f"Preferred batch size {size} must be between 1 and max_batch_size ({max_batch_size})."
                )
    if batcher.default_priority_level > batcher.priority_levels:
        raise PyTritonBadParameterError(
            "Default priority level cannot be higher than the number of priority levels "
            f"({batcher.default_priority_level} > {batcher.priority_levels})."
        )
    if batcher.priority_queue_policy:
        if not batcher.priority_levels:
            raise PyTritonBadParameterError("Provide the priority_levels if you want to define priority_queue_policy.")
        for level in batcher.priority_queue_policy:
            if level < 0 or level > batcher.priority_levels:
                raise PyTritonBadParameterError(
                    f"Invalid priority level {level}: must be between 0 and {batcher.priority_levels}."
                )


def _validate_warmup(warmup: ModelWarmup) -> None:
    for name, winput in warmup.inputs.items():
        sources = [winput.zero_data, winput.random_data, winput.input_data_file is not None]
        if sum(bool(s) for s in sources) != 1:
            raise PyTritonBadParameterError(
                f"Warm-up input {name!r} must set exactly one of zero_data, random_data, input_data_file."
            )
        if not len(winput.shape):
            raise PyTritonBadParameterError(f"Warm-up input {name!r} must have a non-empty shape.")


__all__ = ["ModelConfig", "validate_model_config"]
