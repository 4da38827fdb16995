"""``sequence_batching`` in a served config: Triton's checks, its defaults and the control tensors it asks for.

Shared by bound models (``ModelConfig(sequence_batcher=...)`` built into the served config) and repository
models (config.pbtxt). What is checked here is what the sequence batcher (``core.sequence``) relies on; a
field it cannot honour is refused by name, never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
from tritonclient.grpc import model_config_pb2
from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

SEQUENCE_IDLE_DEFAULT_MICROSECONDS = 1_000_000  # Triton's default when the field is 0 or absent

_KIND = model_config_pb2.ModelSequenceBatching.Control.Kind
START, READY, END, CORRID = (
    _KIND.Value(k)
    for k in ("CONTROL_SEQUENCE_START", "CONTROL_SEQUENCE_READY", "CONTROL_SEQUENCE_END", "CONTROL_SEQUENCE_CORRID")
)
_DT = model_config_pb2.DataType
# the data types Triton allows for a CORRID control, and their numpy dtype (None: BYTES)
_CORRID_DTYPES: Dict[int, Optional[np.dtype]] = {
    _DT.Value("TYPE_UINT64"): np.dtype(np.uint64),
    _DT.Value("TYPE_INT64"): np.dtype(np.int64),
    _DT.Value("TYPE_UINT32"): np.dtype(np.uint32),
    _DT.Value("TYPE_INT32"): np.dtype(np.int32),
    _DT.Value("TYPE_STRING"): None,
}

FLAG_START = 1  # TRITONSERVER_REQUEST_FLAG_SEQUENCE_START
FLAG_END = 2  # TRITONSERVER_REQUEST_FLAG_SEQUENCE_END


class SequenceConfigError(ValueError):
    """A ``sequence_batching`` section pytriton_lite cannot serve (the message names the field)."""


@dataclass(frozen=True)
class BoolControl:
    """START, END or READY: a one-element tensor holding ``false`` or ``true`` of the configured type."""

    name: str
    kind: int
    false: np.ndarray
    true: np.ndarray


@dataclass(frozen=True)
class CorridControl:
    """CORRID: the request's sequence id, as the configured type (``dtype`` None = TYPE_STRING)."""

    name: str
    dtype: Optional[np.dtype]
    type_name: str


@dataclass(frozen=True)
class Controls:
    """The control input tensors a sequence model is given beside its own inputs."""

    bools: Tuple[BoolControl, ...]
    corrid: Optional[CorridControl]
    shape: Tuple[int, ...]  # (1, 1) for a batching model (batch dim + [1]), (1,) otherwise

    def names(self) -> List[str]:
        return [c.name for c in self.bools] + ([self.corrid.name] if self.corrid else [])

    def corrid_value(self, correlation_id: Union[int, str], model: str) -> Any:
        """The CORRID tensor's value for ``correlation_id``; raises ValueError when it cannot be one."""
        assert self.corrid is not None
        if self.corrid.dtype is None:
            return str(correlation_id).encode()
        if isinstance(correlation_id, str):
            if not correlation_id.isdigit():
                raise ValueError(
                    f"sequence id '{correlation_id[:64]}' of model '{model}' is not an integer, as its "
                    f"CORRID control ({self.corrid.type_name}) requires"
                )
            correlation_id = int(correlation_id)
        info = np.iinfo(self.corrid.dtype)
        if not info.min <= correlation_id <= info.max:
            raise ValueError(
                f"sequence id {correlation_id} of model '{model}' does not fit its CORRID control "
                f"({self.corrid.type_name})"
            )
        return correlation_id

    def tensors(self, flags: int, corrid_value: Any) -> List[Tuple[str, np.ndarray]]:
        """Control tensors of one ready request with request ``flags``."""
        out: List[Tuple[str, np.ndarray]] = []
        for control in self.bools:
            if control.kind == START:
                on = bool(flags & FLAG_START)
            elif control.kind == END:
                on = bool(flags & FLAG_END)
            else:  # READY: the request is there
                on = True
            out.append((control.name, (control.true if on else control.false).reshape(self.shape).copy()))
        if self.corrid is not None:
            if self.corrid.dtype is None:
                value = np.array([corrid_value], dtype=object).reshape(self.shape)
            else:
                value = np.full(self.shape, corrid_value, dtype=self.corrid.dtype)
            out.append((self.corrid.name, value))
        return out


def _bool_control(model: str, name: str, control: Any) -> BoolControl:
    kind_name = _KIND.Name(control.kind)
    choices = [
        (field, values)
        for field, values in (
            ("int32_false_true", control.int32_false_true),
            ("fp32_false_true", control.fp32_false_true),
            ("bool_false_true", control.bool_false_true),
        )
        if len(values)
    ]
    if len(choices) != 1:
        raise SequenceConfigError(
            f"sequence batching control '{kind_name}' of model '{model}' must specify exactly one of "
            "'int32_false_true', 'fp32_false_true' or 'bool_false_true'"
        )
    field, values = choices[0]
    if len(values) != 2:
        raise SequenceConfigError(
            f"sequence batching control '{kind_name}' of model '{model}' must have two entries for '{field}'"
        )
    if control.data_type != _DT.Value("TYPE_INVALID"):
        raise SequenceConfigError(
            f"sequence batching control '{kind_name}' of model '{model}' must not specify 'data_type'"
        )
    dtype = {"int32_false_true": np.int32, "fp32_false_true": np.float32, "bool_false_true": np.bool_}[field]
    return BoolControl(name, int(control.kind), np.array([values[0]], dtype=dtype), np.array([values[1]], dtype=dtype))


def _corrid_control(model: str, name: str, control: Any) -> CorridControl:
    if len(control.int32_false_true) or len(control.fp32_false_true) or len(control.bool_false_true):
        raise SequenceConfigError(
            f"sequence batching control 'CONTROL_SEQUENCE_CORRID' of model '{model}' must not specify "
            "'int32_false_true', 'fp32_false_true' or 'bool_false_true'"
        )
    if control.data_type not in _CORRID_DTYPES:
        raise SequenceConfigError(
            "unexpected control data type, expected TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32, or "
            f"TYPE_STRING for CONTROL_SEQUENCE_CORRID for {model}"
        )
    return CorridControl(name, _CORRID_DTYPES[control.data_type], _DT.Name(control.data_type))


def controls_of(config: ModelConfigProto) -> Controls:
    """Parse and check ``sequence_batching.control_input``; raises SequenceConfigError."""
    model = config.name
    section = config.sequence_batching
    declared = {t.name for t in config.input}
    bools: List[BoolControl] = []
    corrid: Optional[CorridControl] = None
    seen_kinds: List[int] = []
    seen_names: List[str] = []
    for control_input in section.control_input:
        name = control_input.name
        if not name:
            raise SequenceConfigError(f"sequence batching control input of model '{model}' must have a name")
        if name in declared or name in seen_names:
            raise SequenceConfigError(
                f"sequence batching control input '{name}' of model '{model}' is also declared as a model input "
                "or another control input"
            )
        if len(control_input.control) != 1:
            raise SequenceConfigError(
                f"sequence batching control input '{name}' of model '{model}' must have exactly one control"
            )
        control = control_input.control[0]
        if control.kind in seen_kinds:
            raise SequenceConfigError(
                f"sequence batching specifies multiple {_KIND.Name(control.kind)} tensors for {model}"
            )
        seen_kinds.append(int(control.kind))
        seen_names.append(name)
        if control.kind == CORRID:
            corrid = _corrid_control(model, name, control)
        else:
            bools.append(_bool_control(model, name, control))
    shape = (1, 1) if config.max_batch_size > 0 else (1,)
    return Controls(tuple(bools), corrid, shape)


def check_sequence_batching(config: ModelConfigProto) -> None:
    """Refuse what the sequence batcher cannot honour (by field name) and check the controls."""
    if not config.HasField("sequence_batching"):
        return
    model = config.name
    section = config.sequence_batching
    if len(section.state):
        raise SequenceConfigError(
            f"model '{model}': implicit state ('sequence_batching.state') is not supported by pytriton_lite; "
            "keep the state in the model (per correlation id) instead"
        )
    if section.iterative_sequence:
        raise SequenceConfigError(
            f"model '{model}': 'sequence_batching.iterative_sequence' is not supported by pytriton_lite"
        )
    if config.response_cache.enable:
        raise SequenceConfigError(
            f"model '{model}': the response cache cannot serve a sequence model (its answers depend on the "
            "sequence's earlier requests)"
        )
    if section.HasField("oldest"):
        oldest = section.oldest
        if oldest.max_candidate_sequences < 0:
            raise SequenceConfigError(f"model '{model}': max_candidate_sequences must be >= 0")
        for size in oldest.preferred_batch_size:
            if size < 1 or (config.max_batch_size > 0 and size > config.max_batch_size):
                raise SequenceConfigError(
                    f"sequence batching preferred batch size must be <= max batch size for {model}"
                )
    elif section.HasField("direct"):
        utilization = section.direct.minimum_slot_utilization
        if not 0.0 <= utilization <= 1.0:
            raise SequenceConfigError(f"model '{model}': minimum_slot_utilization must be in [0, 1]")
    controls_of(config)


def complete_sequence_batching(config: ModelConfigProto) -> None:
    """Triton's defaults, so ``/config`` shows what is applied: the idle timeout, Oldest's preferred size and
    candidate count."""
    if not config.HasField("sequence_batching"):
        return
    section = config.sequence_batching
    if section.max_sequence_idle_microseconds == 0:
        section.max_sequence_idle_microseconds = SEQUENCE_IDLE_DEFAULT_MICROSECONDS
    if section.HasField("oldest"):
        if not len(section.oldest.preferred_batch_size) and config.max_batch_size > 0:
            section.oldest.preferred_batch_size.append(config.max_batch_size)
        if section.oldest.max_candidate_sequences == 0:
            section.oldest.max_candidate_sequences = max(1, config.max_batch_size)


__all__ = [
    "BoolControl",
    "Controls",
    "CorridControl",
    "FLAG_END",
    "FLAG_START",
    "SEQUENCE_IDLE_DEFAULT_MICROSECONDS",
    "SequenceConfigError",
    "check_sequence_batching",
    "complete_sequence_batching",
    "controls_of",
]
