"""The ensemble backend's graph: ``ensemble_scheduling.step`` checked at load and turned into a ``Plan``.

``build_plan`` runs every check Triton makes on an ensemble before it serves it, with the reason in words a
user can act on (it becomes the model's reason in the repository index):

- the config is an ensemble (``ensemble_scheduling`` with at least one step, not decoupled);
- the wiring: every ensemble tensor is produced once (by one step output, or it is an ensemble input), every
  step input comes from an ensemble input or an earlier step, every ensemble input is consumed and every
  ensemble output produced, and the steps form no cycle;
- the step models: each is loaded (``step_config`` raises ``ModelNotFoundError`` otherwise), not decoupled,
  batches at least as much as the ensemble (``max_batch_size``), has the inputs and outputs the maps name
  (and every required input mapped), and agrees with the other ends of each tensor on data type and, where no
  ``reshape`` is involved, on shape (``-1`` matches any size).

Nothing here runs requests: ``ensemble.py`` does, from the ``Plan``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

from tritonclient.grpc import model_config_pb2

from pytriton_lite.exceptions import ModelNotFoundError
from pytriton_lite.repository.backend import ModelLoadError

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

#: (step model name, version "" = latest) -> the step model's served config; raises ModelNotFoundError
StepConfigLookup = Callable[[str, str], "ModelConfigProto"]


@dataclass(frozen=True)
class Step:
    """One ``ensemble_scheduling.step``: which model, and how its tensors map onto the ensemble's."""

    index: int
    model_name: str
    model_version: str  # "" = the latest served version (Triton's model_version -1)
    inputs: Tuple[Tuple[str, str], ...]  # (step model input, ensemble tensor)
    outputs: Tuple[Tuple[str, str], ...]  # (step model output, ensemble tensor)

    @property
    def needs(self) -> FrozenSet[str]:
        """The ensemble tensors this step waits for."""
        return frozenset(tensor for _, tensor in self.inputs)

    @property
    def label(self) -> str:
        return f"step {self.index} (model '{self.model_name}')"


@dataclass(frozen=True)
class Plan:
    """A checked ensemble: its steps and, for each ensemble tensor, the steps that consume it."""

    name: str
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]
    steps: Tuple[Step, ...]
    consumers: Dict[str, Tuple[int, ...]]  # ensemble tensor -> indices of the steps reading it


def build_plan(config: ModelConfigProto, step_config: StepConfigLookup) -> Plan:
    """Check the ensemble ``config`` against its step models; ``ModelLoadError`` names what is wrong."""
    name = config.name
    steps = _parse_steps(config)
    inputs = tuple(str(t.name) for t in config.input)
    outputs = tuple(str(t.name) for t in config.output)
    producers = _producers(name, steps, inputs)
    _check_wiring(name, steps, inputs, outputs, producers)
    _check_acyclic(name, steps, producers)
    step_configs = [_step_model(config, step, step_config) for step in steps]
    _check_tensor_types(config, steps, step_configs)
    consumers: Dict[str, List[int]] = {}
    for step in steps:
        for tensor in sorted(step.needs):
            consumers.setdefault(tensor, []).append(step.index)
    return Plan(
        name=name,
        inputs=inputs,
        outputs=outputs,
        steps=tuple(steps),
        consumers={tensor: tuple(indices) for tensor, indices in consumers.items()},
    )


# --- the config itself --------------------------------------------------------------------------------


def _parse_steps(config: ModelConfigProto) -> List[Step]:
    name = config.name
    if config.WhichOneof("scheduling_choice") != "ensemble_scheduling" or not config.ensemble_scheduling.step:
        raise ModelLoadError(f"ensemble '{name}' must specify ensemble_scheduling with at least one step")
    if config.model_transaction_policy.decoupled:
        raise ModelLoadError(f"ensemble '{name}' is decoupled: pytriton_lite serves ensembles of one response only")
    steps = []
    for index, proto in enumerate(config.ensemble_scheduling.step):
        if not proto.model_name:
            raise ModelLoadError(f"step {index} of ensemble '{name}' does not name a model (model_name)")
        version = int(proto.model_version)
        if version == 0 or version < -1:
            raise ModelLoadError(
                f"step {index} (model '{proto.model_name}') of ensemble '{name}' has model_version {version}"
                f"{' (not set)' if version == 0 else ''}: use -1 for the latest version or a version number >= 1"
            )
        step = Step(
            index=index,
            model_name=str(proto.model_name),
            model_version="" if version == -1 else str(version),
            inputs=tuple(sorted((str(k), str(v)) for k, v in proto.input_map.items())),
            outputs=tuple(sorted((str(k), str(v)) for k, v in proto.output_map.items())),
        )
        if not step.outputs:
            raise ModelLoadError(f"{step.label} of ensemble '{name}' maps no output (output_map is empty)")
        steps.append(step)
    return steps


def _producers(name: str, steps: Sequence[Step], inputs: Sequence[str]) -> Dict[str, Step]:
    """Ensemble tensor -> the step producing it; each tensor has exactly one source."""
    producers: Dict[str, Step] = {}
    for step in steps:
        for _, tensor in step.outputs:
            if tensor in inputs:
                raise ModelLoadError(
                    f"in ensemble '{name}', ensemble tensor '{tensor}' is an input of the ensemble and also an "
                    f"output of {step.label}: a tensor must have one source"
                )
            first = producers.get(tensor)
            if first is not None:
                raise ModelLoadError(
                    f"in ensemble '{name}', ensemble tensor '{tensor}' is produced by more than one step: "
                    f"{first.label} and {step.label}"
                )
            producers[tensor] = step
    return producers


def _check_wiring(
    name: str, steps: Sequence[Step], inputs: Sequence[str], outputs: Sequence[str], producers: Dict[str, Step]
) -> None:
    consumed = set()
    for step in steps:
        for model_input, tensor in step.inputs:
            if tensor not in producers and tensor not in inputs:
                raise ModelLoadError(
                    f"in ensemble '{name}', input '{model_input}' of {step.label} is mapped from ensemble tensor "
                    f"'{tensor}', which is neither an ensemble input nor an output of any step"
                )
            consumed.add(tensor)
    for tensor in inputs:
        if tensor not in consumed:
            raise ModelLoadError(f"in ensemble '{name}', ensemble input '{tensor}' is not used by any step")
    for tensor in outputs:
        if tensor not in producers:
            raise ModelLoadError(f"in ensemble '{name}', ensemble output '{tensor}' is not produced by any step")


def _check_acyclic(name: str, steps: Sequence[Step], producers: Dict[str, Step]) -> None:
    """Kahn's algorithm over the steps; what is left over lies on (or behind) a cycle."""
    depends_on = {step.index: {producers[t].index for t in step.needs if t in producers} for step in steps}
    done: Set[int] = set()
    progress = True
    while progress:  # at most len(steps) rounds: each round finishes at least one step or stops
        progress = False
        for index, deps in depends_on.items():
            if index not in done and deps <= done:
                done.add(index)
                progress = True
    left = [step.label for step in steps if step.index not in done]
    if left:
        raise ModelLoadError(
            f"in ensemble '{name}', the steps form a cycle (each waits for another's output): {', '.join(left)}"
        )


# --- the step models ------------------------------------------------------------------------------------


def _step_model(config: ModelConfigProto, step: Step, step_config: StepConfigLookup) -> ModelConfigProto:
    name = config.name
    version = f" version {step.model_version}" if step.model_version else ""
    try:
        model = step_config(step.model_name, step.model_version)
    except ModelNotFoundError as e:
        raise ModelLoadError(
            f"ensemble '{name}' needs model '{step.model_name}'{version} for step {step.index}, which is not "
            f"loaded: {e}"
        ) from None
    if model.model_transaction_policy.decoupled:
        raise ModelLoadError(
            f"ensemble '{name}' has a decoupled model in {step.label}: pytriton_lite's ensembles do not support "
            "decoupled steps (call the model on its streaming endpoint, or make it non-decoupled)"
        )
    if config.max_batch_size > model.max_batch_size:
        raise ModelLoadError(
            f"ensemble '{name}' allows maximum batch size {config.max_batch_size}, but it contains model "
            f"'{step.model_name}' which only allows maximum batch size to be {model.max_batch_size}"
        )
    _check_step_names(name, step, model)
    return model


def _check_step_names(name: str, step: Step, model: ModelConfigProto) -> None:
    declared_inputs = {str(t.name): t for t in model.input}
    declared_outputs = {str(t.name) for t in model.output}
    mapped = {model_input for model_input, _ in step.inputs}
    for model_input in sorted(mapped):
        if model_input not in declared_inputs:
            raise ModelLoadError(
                f"in ensemble '{name}', input_map of {step.label} names input '{model_input}', which the model "
                f"does not have (its inputs: {', '.join(sorted(declared_inputs)) or 'none'})"
            )
    for model_output, _ in step.outputs:
        if model_output not in declared_outputs:
            raise ModelLoadError(
                f"in ensemble '{name}', output_map of {step.label} names output '{model_output}', which the model "
                f"does not have (its outputs: {', '.join(sorted(declared_outputs)) or 'none'})"
            )
    for input_name, tensor in declared_inputs.items():
        if input_name not in mapped and not tensor.optional:
            raise ModelLoadError(
                f"in ensemble '{name}', required input '{input_name}' of {step.label} is not mapped (input_map)"
            )


@dataclass(frozen=True)
class _End:
    """One end of an ensemble tensor: who declares it, with which data type and full shape."""

    who: str
    data_type: int
    shape: Optional[Tuple[int, ...]]  # None when a reshape is involved (not compared)


def _end(who: str, tensor: Any, max_batch_size: int) -> _End:
    """``tensor``: a ModelInput or ModelOutput message."""
    dims = tuple(int(d) for d in tensor.dims)
    shape = None if tensor.HasField("reshape") else ((-1,) if max_batch_size > 0 else ()) + dims
    return _End(who, int(tensor.data_type), shape)


def _check_tensor_types(config: ModelConfigProto, steps: Sequence[Step], models: Sequence[ModelConfigProto]) -> None:
    """Every ensemble tensor has one data type and compatible shapes at all its ends."""
    ends: Dict[str, List[_End]] = {}
    ensemble_who = f"ensemble '{config.name}'"
    for tensor in list(config.input) + list(config.output):
        ends.setdefault(str(tensor.name), []).append(_end(ensemble_who, tensor, config.max_batch_size))
    for step, model in zip(steps, models):
        who = f"model '{step.model_name}'"
        by_input = {str(t.name): t for t in model.input}
        by_output = {str(t.name): t for t in model.output}
        for model_input, tensor in step.inputs:
            ends.setdefault(tensor, []).append(_end(who, by_input[model_input], model.max_batch_size))
        for model_output, tensor in step.outputs:
            ends.setdefault(tensor, []).append(_end(who, by_output[model_output], model.max_batch_size))
    for tensor, tensor_ends in ends.items():
        _check_ends(config.name, tensor, tensor_ends)


def _check_ends(name: str, tensor: str, ends: Sequence[_End]) -> None:
    first = ends[0]
    shaped = next((end for end in ends if end.shape is not None), first)  # the first end with a shape
    for end in ends[1:]:
        if end.data_type != first.data_type:
            raise ModelLoadError(
                f"in ensemble '{name}', ensemble tensor '{tensor}': inconsistent data type: "
                f"{_type_name(first.data_type)} is inferred from {first.who} while "
                f"{_type_name(end.data_type)} is inferred from {end.who}"
            )
        if shaped.shape is not None and end.shape is not None and not _shapes_match(shaped.shape, end.shape):
            raise ModelLoadError(
                f"in ensemble '{name}', ensemble tensor '{tensor}': inconsistent shape: "
                f"{_fmt(shaped.shape)} is inferred from {shaped.who} while {_fmt(end.shape)} is inferred from "
                f"{end.who}"
            )


def _shapes_match(a: Tuple[int, ...], b: Tuple[int, ...]) -> bool:
    return len(a) == len(b) and all(x == y or x == -1 or y == -1 for x, y in zip(a, b))


def _fmt(shape: Optional[Tuple[int, ...]]) -> str:
    return "[" + ",".join(str(d) for d in shape or ()) + "]"


def _type_name(data_type: int) -> str:
    try:
        return str(model_config_pb2.DataType.Name(data_type))
    except ValueError:
        return str(data_type)


__all__ = ["Plan", "Step", "StepConfigLookup", "build_plan"]
