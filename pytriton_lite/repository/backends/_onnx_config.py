"""The onnxruntime backend's config work: auto-complete from the graph, and checking a config against it.

Both follow Triton's onnxruntime backend: auto-complete runs only when config.pbtxt leaves out the inputs or
the outputs; a model batches only if every input and output has a dynamic first dimension, and then a
missing ``max_batch_size`` becomes the backend's default (4) and ``dynamic_batching {}`` is added. At load
the config is checked against the graph with Triton's messages (input count, names, data types, dims).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Sequence, Tuple

from pytriton_lite.repository.backend import ModelLoadError
from pytriton_lite.repository.backends._onnx_torch_common import LOGGER, data_type_name, shape_str

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

# onnxruntime's NodeArg.type -> Triton's config DataType name
ORT_TO_CONFIG: Dict[str, str] = {
    "tensor(bool)": "TYPE_BOOL",
    "tensor(uint8)": "TYPE_UINT8",
    "tensor(uint16)": "TYPE_UINT16",
    "tensor(uint32)": "TYPE_UINT32",
    "tensor(uint64)": "TYPE_UINT64",
    "tensor(int8)": "TYPE_INT8",
    "tensor(int16)": "TYPE_INT16",
    "tensor(int32)": "TYPE_INT32",
    "tensor(int64)": "TYPE_INT64",
    "tensor(bfloat16)": "TYPE_BF16",
    "tensor(float16)": "TYPE_FP16",
    "tensor(float)": "TYPE_FP32",
    "tensor(double)": "TYPE_FP64",
    "tensor(string)": "TYPE_STRING",
}


@dataclass(frozen=True)
class OnnxTensor:
    """An input or output of the graph: name, config data type (``TYPE_INVALID`` if not a plain tensor),
    and dims with -1 for every dynamic (symbolic or unknown) dimension."""

    name: str
    data_type: str
    dims: Tuple[int, ...]

    @property
    def is_string(self) -> bool:
        return self.data_type == "TYPE_STRING"


def tensors(node_args: Sequence[Any]) -> Dict[str, OnnxTensor]:
    """onnxruntime ``NodeArg``s (``session.get_inputs()``...) -> ``OnnxTensor`` by name, in graph order."""
    result: Dict[str, OnnxTensor] = {}
    for arg in node_args:
        dims = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or []))
        result[arg.name] = OnnxTensor(arg.name, ORT_TO_CONFIG.get(arg.type, "TYPE_INVALID"), dims)
    return result


# --- auto-complete --------------------------------------------------------------------------------------


def auto_complete(
    model: str,
    config: ModelConfigProto,
    inputs: Dict[str, OnnxTensor],
    outputs: Dict[str, OnnxTensor],
    default_max_batch_size: int,
) -> None:
    """Fill in ``max_batch_size``, ``dynamic_batching``, inputs and outputs from the graph, in place."""
    _complete_max_batch(model, config, inputs, outputs, default_max_batch_size)
    if not config.input:
        _complete_tensors(model, config, config.input, inputs.values(), "input")
    if not config.output:
        _complete_tensors(model, config, config.output, outputs.values(), "output")


def _complete_max_batch(
    model: str, config: ModelConfigProto, inputs: Dict[str, OnnxTensor], outputs: Dict[str, OnnxTensor], default: int
) -> None:
    every = list(inputs.values()) + list(outputs.values())
    can_batch = all(t.dims and t.dims[0] == -1 for t in every)
    if not can_batch:
        if config.max_batch_size != 0:
            raise ModelLoadError(
                f"autofill failed for model '{model}': model does not support batching while non-zero "
                "max_batch_size is specified"
            )
        return
    if config.max_batch_size == 0:
        config.max_batch_size = max(default, 0)
        LOGGER.warning(
            "autofilled max_batch_size to %d for model '%s' since batching is supported but no max_batch_size "
            "is specified in model configuration. Must specify max_batch_size to utilize autofill with a "
            "larger max batch size",
            config.max_batch_size,
            model,
        )
    if config.max_batch_size > 1 and not config.HasField("dynamic_batching"):
        if not config.HasField("sequence_batching"):
            config.dynamic_batching.SetInParent()


def _complete_tensors(model: str, config: ModelConfigProto, field: Any, graph: Any, kind: str) -> None:
    batching = config.max_batch_size > 0
    for tensor in graph:
        if tensor.data_type == "TYPE_INVALID":
            raise ModelLoadError(
                f"autofill failed for model '{model}': {kind} '{tensor.name}' is not a tensor of a supported data type"
            )
        entry = field.add()
        entry.name = tensor.name
        entry.data_type = _data_type_value(tensor.data_type)
        dims = list(tensor.dims[1:] if batching else tensor.dims)
        if not dims:  # a scalar (or a [batch] tensor): dims [1], and with batching a reshape to no dims
            dims = [1]
            if batching:
                entry.reshape.SetInParent()
        entry.dims.extend(dims)


def _data_type_value(name: str) -> int:
    from tritonclient.grpc import model_config_pb2

    value: int = model_config_pb2.DataType.Value(name)
    return value


# --- validation at load ---------------------------------------------------------------------------------


def validate(
    model: str,
    config: ModelConfigProto,
    inputs: Dict[str, OnnxTensor],
    outputs: Dict[str, OnnxTensor],
    initializers: Dict[str, OnnxTensor],
) -> None:
    """Check config.pbtxt's inputs and outputs against the graph (Triton's ``ValidateInputs/Outputs``)."""
    name = model
    # a sequence model's control inputs (START, READY, ...) are graph inputs the batcher fills, not config inputs
    controls = {c.name for c in config.sequence_batching.control_input}
    inputs = {k: v for k, v in inputs.items() if k not in controls}
    expected = sum(1 for i in config.input if not i.optional)
    if len(inputs) != expected:
        raise ModelLoadError(
            f"unable to load model '{name}', configuration expects {expected} inputs, model provides {len(inputs)}"
        )
    allowed = {**inputs, **initializers}
    for io in config.input:
        if io.optional and config.max_batch_size != 0:
            raise ModelLoadError(
                f"unable to load model '{name}', optional input '{io.name}' is not supported for models that "
                "support batching"
            )
        _check_tensor(model, config, io, allowed, "input", compare_exact=False)
    for io in config.output:
        _check_tensor(model, config, io, outputs, "output", compare_exact=True)


def _check_tensor(
    model: str, config: ModelConfigProto, io: Any, graph: Dict[str, OnnxTensor], kind: str, compare_exact: bool
) -> None:
    tensor = graph.get(io.name)
    if tensor is None:
        raise ModelLoadError(f"unexpected inference {kind} '{io.name}', allowed {kind}s are: {', '.join(graph)}")
    declared = data_type_name(io.data_type)
    if declared != tensor.data_type:
        raise ModelLoadError(
            f"unable to load model '{model}', configuration expects datatype {declared} for {kind} "
            f"'{io.name}', model provides {tensor.data_type}"
        )
    dims = list(io.reshape.shape) if io.HasField("reshape") else list(io.dims)
    if not tensor.dims:
        if any(d != 1 for d in dims):
            raise ModelLoadError(
                f"unable to load model '{model}', scalar tensor '{io.name}', should only provide 1 in the "
                f"model configuration when the model doesn't support batching. Model configuration provided: "
                f"{shape_str(dims)}."
            )
        return
    _compare_dims(model, config.max_batch_size > 0, io.name, tensor.dims, dims, compare_exact)


def _compare_dims(name: str, batching: bool, tensor: str, model: Sequence[int], dims: List[int], exact: bool) -> None:
    if batching and (not model or model[0] != -1):
        raise ModelLoadError(
            f"model '{name}', tensor '{tensor}': for the model to support batching the shape should have at "
            f"least 1 dimension and the first dimension must be -1; but shape expected by the model is "
            f"{shape_str(model)}"
        )
    full = [-1, *dims] if batching else dims
    ok = len(model) == len(full) and all(m == f for m, f in zip(model, full) if exact or m != -1)
    if ok:
        return
    if batching:
        described = (
            f"{len(full)} dimensions (an initial batch dimension because max_batch_size > 0 followed by the "
            f"explicit tensor shape, making complete shape {shape_str(full)})"
        )
    else:
        described = f"{len(full)} dimensions (shape {shape_str(full)})"
    raise ModelLoadError(
        f"model '{name}', tensor '{tensor}': the model expects {len(model)} dimensions (shape "
        f"{shape_str(model)}) but the model configuration specifies {described}"
    )


__all__ = ["ORT_TO_CONFIG", "OnnxTensor", "auto_complete", "tensors", "validate"]
