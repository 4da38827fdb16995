"""Sequence batching for a bound model (Triton's ``sequence_batching``), asked for at ``Triton.bind``.

PyTriton has no such API; the names follow Triton's model configuration (and model_navigator's dataclasses of
the same names): ``ModelConfig(sequence_batcher=SequenceBatcher(...))``. The served config then carries a
``sequence_batching`` section, and the server's sequence batcher routes every request of a sequence id to one
instance, in order, with the control tensors given to the callable as extra inputs. See docs/sequences.md.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, List, Optional, Union

from pytriton_lite.exceptions import PyTritonBadParameterError


class SequenceBatcherControlKind(enum.Enum):
    """What a control input tells the model (Triton's ``ModelSequenceBatching.Control.Kind``)."""

    CONTROL_SEQUENCE_START = "CONTROL_SEQUENCE_START"
    CONTROL_SEQUENCE_READY = "CONTROL_SEQUENCE_READY"
    CONTROL_SEQUENCE_END = "CONTROL_SEQUENCE_END"
    CONTROL_SEQUENCE_CORRID = "CONTROL_SEQUENCE_CORRID"


@dataclasses.dataclass
class SequenceBatcherControl:
    """One control. START, READY and END give exactly one of the ``*_false_true`` pairs (the values for false
    and true); CORRID gives ``dtype`` (``np.uint64``, ``np.int64``, ``np.uint32``, ``np.int32`` or ``bytes``)."""

    kind: SequenceBatcherControlKind
    dtype: Optional[Any] = None
    int32_false_true: List[int] = dataclasses.field(default_factory=list)
    fp32_false_true: List[float] = dataclasses.field(default_factory=list)
    bool_false_true: List[bool] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SequenceBatcherControlInput:
    """A model input the server fills with a control value (not declared among the model's inputs)."""

    input_name: str
    controls: List[SequenceBatcherControl]


@dataclasses.dataclass
class SequenceBatcherStrategyDirect:
    """Direct: one slot per sequence, ``max_batch_size`` slots per instance, a batch = the ready slots."""

    max_queue_delay_microseconds: int = 0
    minimum_slot_utilization: float = 0.0


@dataclasses.dataclass
class SequenceBatcherStrategyOldest:
    """Oldest: up to ``max_candidate_sequences`` sequences per instance; each batch takes the next request of
    the oldest ones, with the dynamic batcher's preferred sizes and delay."""

    max_candidate_sequences: int = 0  # 0: max_batch_size
    preferred_batch_size: List[int] = dataclasses.field(default_factory=list)
    max_queue_delay_microseconds: int = 0
    preserve_ordering: bool = False


@dataclasses.dataclass
class SequenceBatcher:
    """Triton's ``sequence_batching`` section. ``strategy`` None = Direct; ``max_sequence_idle_microseconds``
    None = Triton's default (1 s)."""

    strategy: Optional[Union[SequenceBatcherStrategyDirect, SequenceBatcherStrategyOldest]] = None
    max_sequence_idle_microseconds: Optional[int] = None
    control_inputs: List[SequenceBatcherControlInput] = dataclasses.field(default_factory=list)


def validate_sequence_batcher(batcher: Any) -> None:
    """Type checks of a ``SequenceBatcher`` (the values are checked with the served config at ``bind``)."""
    if not isinstance(batcher, SequenceBatcher):
        raise PyTritonBadParameterError(f"sequence_batcher must be a SequenceBatcher, got {type(batcher).__name__}")
    strategy = batcher.strategy
    if strategy is not None and not isinstance(
        strategy, (SequenceBatcherStrategyDirect, SequenceBatcherStrategyOldest)
    ):
        raise PyTritonBadParameterError(
            "SequenceBatcher.strategy must be SequenceBatcherStrategyDirect or SequenceBatcherStrategyOldest"
        )
    idle = batcher.max_sequence_idle_microseconds
    if idle is not None and (not isinstance(idle, int) or idle < 0):
        raise PyTritonBadParameterError("max_sequence_idle_microseconds must be an int >= 0")
    if isinstance(strategy, SequenceBatcherStrategyDirect) and not 0.0 <= strategy.minimum_slot_utilization <= 1.0:
        raise PyTritonBadParameterError("minimum_slot_utilization must be in [0, 1]")
    if strategy is not None and strategy.max_queue_delay_microseconds < 0:
        raise PyTritonBadParameterError("max_queue_delay_microseconds must be >= 0")
    for control_input in batcher.control_inputs:
        if not isinstance(control_input, SequenceBatcherControlInput):
            raise PyTritonBadParameterError("SequenceBatcher.control_inputs must hold SequenceBatcherControlInput")
        for control in control_input.controls:
            if not isinstance(control, SequenceBatcherControl) or not isinstance(
                control.kind, SequenceBatcherControlKind
            ):
                raise PyTritonBadParameterError(
                    f"controls of control input {control_input.input_name!r} must be SequenceBatcherControl with a "
                    "SequenceBatcherControlKind"
                )


__all__ = [
    "SequenceBatcher",
    "SequenceBatcherControl",
    "SequenceBatcherControlInput",
    "SequenceBatcherControlKind",
    "SequenceBatcherStrategyDirect",
    "SequenceBatcherStrategyOldest",
    "validate_sequence_batcher",
]
