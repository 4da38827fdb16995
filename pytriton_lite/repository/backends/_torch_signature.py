"""How config.pbtxt's tensors meet a TorchScript ``forward()``: Triton's pytorch backend naming rules.

Inputs (config names against ``forward``'s arguments, ``self`` left out):

1. ``forward(self, inputs: Dict[str, Tensor])``, a single dict argument: the inputs are passed as one dict keyed
   by their config names;
2. every config name is an argument name (a tutorial's ``model_input``): passed by name;
3. every config name follows ``<name>__<index>`` (``INPUT__0``, ``INPUT__1``): the index is the argument's
   position;
4. otherwise config order is argument order (with a warning, as Triton logs).

Outputs: ``<name>__<index>`` (``OUTPUT__0``) picks that element of the returned tuple (or the dict's values in
order); otherwise config order is the tuple's order. A returned ``Dict[str, Tensor]`` also answers outputs named
by its keys. Triton checks the input count against ``forward``; arguments with default values may be left out
here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from pytriton_lite.exceptions import ModelExecutionError
from pytriton_lite.repository.backend import ModelLoadError
from pytriton_lite.repository.backends._onnx_torch_common import LOGGER, data_type_name

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

#: the config data types the pytorch backend serves (Triton's list); TYPE_STRING travels as List[str]
TORCH_TYPES = frozenset(
    (
        "TYPE_BOOL",
        "TYPE_UINT8",
        "TYPE_INT8",
        "TYPE_INT16",
        "TYPE_INT32",
        "TYPE_INT64",
        "TYPE_FP16",
        "TYPE_FP32",
        "TYPE_FP64",
        "TYPE_BF16",
        "TYPE_STRING",
    )
)
_TENSOR_KINDS = ("TensorType", "ListType")


@dataclass(frozen=True)
class Argument:
    """One ``forward`` argument: name, TorchScript type kind (``"TensorType"``, ``"DictType"`` ...), default."""

    name: str
    kind: str
    has_default: bool = False
    type_str: str = ""


@dataclass(frozen=True)
class InputBinding:
    """Config input name -> ``forward`` argument name; ``dict_argument`` set when forward takes one dict."""

    arguments: Dict[str, str]
    dict_argument: Optional[str] = None
    convention: str = "forward argument"


def forward_arguments(module: Any) -> List[Argument]:
    """The arguments of a loaded ScriptModule's ``forward``, ``self`` left out."""
    arguments: List[Argument] = []
    for arg in module.forward.schema.arguments:
        kind = arg.type.kind()
        if kind == "ClassType" and not arguments and arg.name == "self":
            continue
        arguments.append(Argument(arg.name, kind, bool(arg.has_default_value()), str(arg.type)))
    return arguments


def check_data_types(model: str, config: ModelConfigProto, max_batch_size: int) -> None:
    """Triton's data type checks: supported types only; string outputs one-dimensional."""
    for kind, tensors in (("input", config.input), ("output", config.output)):
        for io in tensors:
            name = data_type_name(io.data_type)
            if name not in TORCH_TYPES:
                raise ModelLoadError(f"unsupported datatype {name} for {kind} '{io.name}' for model '{model}'")
            dims = list(io.reshape.shape) if io.HasField("reshape") else list(io.dims)
            if kind == "output" and name == "TYPE_STRING" and len(dims) + (1 if max_batch_size > 0 else 0) > 1:
                raise ModelLoadError(
                    f"Triton only supports 1 dimensional List of String as output for '{io.name}' for model '{model}'"
                )


def bind_inputs(model: str, names: Sequence[str], arguments: Sequence[Argument]) -> InputBinding:
    """Map the config's input names onto ``forward``'s arguments (the module docstring's rules)."""
    if not names:
        raise ModelLoadError("model configuration must contain at least one input, none were specified.")
    dicts = [a for a in arguments if a.kind == "DictType"]
    if len(arguments) == 1 and dicts:
        return InputBinding({n: n for n in names}, dict_argument=arguments[0].name, convention="dictionary")
    if dicts:
        raise ModelLoadError(
            "Multiple inputs of kind DictType were detected. Only a single input of type Dict(str, Tensor) is "
            f"supported (model '{model}')."
        )
    for a in arguments:
        if a.kind not in _TENSOR_KINDS and not a.has_default:
            raise ModelLoadError(
                f"An input of type '{a.type_str or a.kind}' was detected in the model. Only a single input of type "
                f"Dict(str, Tensor) or input(s) of type Tensor are supported (model '{model}')."
            )
    required = sum(1 for a in arguments if not a.has_default)
    if not required <= len(names) <= len(arguments):
        raise ModelLoadError(
            f"unable to load model '{model}', configuration expects {len(names)} inputs, model provides "
            f"{len(arguments)}"
        )
    by_name = [a.name for a in arguments]
    if all(n in by_name for n in names):
        binding = InputBinding({n: n for n in names}, convention="forward argument")
    else:
        indices = _named_indices(names)
        if indices is not None:
            binding = InputBinding(_by_index(model, names, indices, by_name, "input"), convention="<name>__<index>")
        else:
            LOGGER.warning(
                "input names of model '%s' are neither input arguments to the model nor do they follow the "
                "<name>__<index> naming convention. Falling back to enforcing strict ordering from model "
                "configuration.",
                model,
            )
            binding = InputBinding(dict(zip(names, by_name)), convention="config order")
    _check_required(model, binding, arguments)
    return binding


def _check_required(model: str, binding: InputBinding, arguments: Sequence[Argument]) -> None:
    bound = set(binding.arguments.values())
    missing = [a.name for a in arguments if not a.has_default and a.name not in bound]
    if missing:
        raise ModelLoadError(
            f"unable to load model '{model}': forward() argument(s) {', '.join(missing)} get no input from the "
            "model configuration"
        )


def bind_outputs(model: str, names: Sequence[str]) -> Dict[str, int]:
    """Config output name -> index into what ``forward`` returns (``OUTPUT__k``, else config order)."""
    if not names:
        raise ModelLoadError("model configuration must contain at least one output, none were specified.")
    indices = _named_indices(names)
    if indices is None:
        if any("__" in n for n in names):
            LOGGER.warning(
                "output names of model '%s' do not follow the <name>__<index> naming convention. Falling back to "
                "enforcing strict ordering from model configuration.",
                model,
            )
        return {n: i for i, n in enumerate(names)}
    seen: Dict[int, str] = {}
    for name, index in zip(names, indices):
        if index in seen:
            raise ModelLoadError(f"outputs '{seen[index]}' and '{name}' of model '{model}' both name index {index}")
        seen[index] = name
    return dict(zip(names, indices))


def _named_indices(names: Sequence[str]) -> Optional[List[int]]:
    """The ``<index>`` of every ``<name>__<index>`` name, or None when one name does not follow that rule."""
    indices = []
    for name in names:
        head, sep, tail = name.partition("__")
        if not sep or not tail.isdigit():
            return None
        indices.append(int(tail))
    return indices


def _by_index(
    model: str, names: Sequence[str], indices: Sequence[int], args: Sequence[str], kind: str
) -> Dict[str, str]:
    mapping: Dict[str, str] = {}
    taken: Dict[int, str] = {}
    for name, index in zip(names, indices):
        if index >= len(args):
            raise ModelLoadError(
                f"{kind} '{name}' of model '{model}' names index {index} but forward() takes {len(args)} inputs"
            )
        if index in taken:
            raise ModelLoadError(f"{kind}s '{taken[index]}' and '{name}' of model '{model}' both name index {index}")
        taken[index] = name
        mapping[name] = args[index]
    return mapping


def pick_outputs(model: str, result: Any, wanted: Sequence[Tuple[str, int]]) -> Dict[str, Any]:
    """The wanted outputs (config name, index) out of what ``forward`` returned: a tensor, a tuple/list of
    tensors (or of string lists), or a dict."""
    if isinstance(result, dict):
        values = list(result.values())
        return {name: result[name] if name in result else _at(model, values, name, index) for name, index in wanted}
    if isinstance(result, tuple) or (isinstance(result, list) and result and not isinstance(result[0], str)):
        return {name: _at(model, list(result), name, index) for name, index in wanted}
    return {name: _at(model, [result], name, index) for name, index in wanted}


def _at(model: str, values: List[Any], name: str, index: int) -> Any:
    if index >= len(values):
        raise ModelExecutionError(
            f"output '{name}' of model '{model}' is output {index} of forward(), which returned {len(values)} "
            f"output{'s' if len(values) != 1 else ''}"
        )
    return values[index]


__all__ = [
    "Argument",
    "InputBinding",
    "TORCH_TYPES",
    "bind_inputs",
    "bind_outputs",
    "check_data_types",
    "forward_arguments",
    "pick_outputs",
]
