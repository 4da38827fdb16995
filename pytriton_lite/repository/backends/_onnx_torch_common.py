"""What the onnxruntime and pytorch backends share: config lookups, ``parameters``, and batching along dim 0.

The core hands a backend's infer callable one ``Request`` per client request. Framework backends serve a
batching model (``max_batch_size > 0``) the way Triton's do: requests whose inputs agree in everything but
the batch dimension are concatenated along dim 0, run once, and the outputs are split back per request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Dict, Hashable, List, Optional, Sequence, Set

import numpy as np

from pytriton_lite.exceptions import ModelExecutionError
from pytriton_lite.repository.backend import InstancePlacement, ModelLoadError
from pytriton_lite.types import Request

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

LOGGER = logging.getLogger("pytriton_lite.repository")

#: runs the model once: (inputs by name, the outputs to compute or None for all) -> outputs by name
RunFn = Callable[[Dict[str, np.ndarray], Optional[Sequence[str]]], Dict[str, np.ndarray]]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def data_type_name(value: int) -> str:
    """``inference.DataType`` number -> its name (``11`` -> ``"TYPE_FP32"``)."""
    from tritonclient.grpc import model_config_pb2

    name: str = model_config_pb2.DataType.Name(value)
    return name


def shape_str(dims: Sequence[int]) -> str:
    """Triton's way of printing a shape: ``[-1,4]``."""
    return "[" + ",".join(str(int(d)) for d in dims) + "]"


def parameter(config: ModelConfigProto, key: str) -> Optional[str]:
    """The ``string_value`` of ``parameters { key: ... }``, or None when the config does not set it."""
    if key not in config.parameters:  # indexing a message map would insert the key
        return None
    value: str = config.parameters[key].string_value
    return value.strip()


def bool_parameter(config: ModelConfigProto, key: str, default: bool) -> bool:
    """A boolean parameter (``"true"``/``"false"``/``"1"``/``"0"``, any case)."""
    value = parameter(config, key)
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ModelLoadError(
        f"failed to convert parameter '{key}' of model '{config.name}' to a boolean: '{value}' "
        "(expected true, false, 1 or 0)"
    )


def int_parameter(config: ModelConfigProto, key: str, default: int) -> int:
    """An integer parameter."""
    value = parameter(config, key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ModelLoadError(
            f"failed to convert parameter '{key}' of model '{config.name}' to an integer: '{value}'"
        ) from None


def group_name(config: ModelConfigProto, placement: InstancePlacement) -> str:
    """The name of the ``instance_group`` a placement belongs to (Triton names instances ``<group>_<k>``)."""
    best = ""
    for group in config.instance_group:
        name = group.name
        if name and (placement.name == name or placement.name.startswith(name + "_")) and len(name) > len(best):
            best = name
    return best or placement.name


def require_inputs_outputs(model: str, config: ModelConfigProto, backend: str) -> None:
    """A backend that cannot read the tensors from its model file needs them in config.pbtxt."""
    missing = [kind for kind, tensors in (("input", config.input), ("output", config.output)) if not tensors]
    if missing:
        raise ModelLoadError(
            f"model configuration of '{model}' must contain at least one {' and one '.join(missing)}, "
            f"none were specified: the {backend} backend does not auto-complete inputs and outputs from the "
            "model file, list them in config.pbtxt"
        )


# --- batching along dim 0 -------------------------------------------------------------------------


def infer_batched(
    requests: Sequence[Request], max_batch_size: int, run: RunFn, model: str
) -> List[Dict[str, np.ndarray]]:
    """Serve a list of requests with as few model runs as possible.

    With ``max_batch_size > 0``, requests whose inputs have the same names, dtypes and non-batch shapes are
    concatenated along dim 0 and run once; the outputs are split back by each request's batch size. Without
    batching (or for a single request) each request runs on its own.
    """
    if max_batch_size <= 0 or len(requests) == 1:
        return [run(dict(r.data), r.requested_output_names) for r in requests]
    results: List[Optional[Dict[str, np.ndarray]]] = [None] * len(requests)
    for indices in _groups(requests).values():
        members = [requests[i] for i in indices]
        if len(members) == 1:
            outputs = [run(dict(members[0].data), members[0].requested_output_names)]
        else:
            sizes = [_batch_size(r) for r in members]
            feeds = {name: np.concatenate([r.data[name] for r in members]) for name in members[0].data}
            outputs = _split(run(feeds, _requested_union(members)), sizes, model)
        for i, output in zip(indices, outputs):
            results[i] = output
    return [r if r is not None else {} for r in results]


def _groups(requests: Sequence[Request]) -> Dict[Hashable, List[int]]:
    groups: Dict[Hashable, List[int]] = {}
    for index, request in enumerate(requests):
        key: Hashable
        if not request.data or any(a.ndim == 0 for a in request.data.values()):
            key = ("alone", index)  # nothing to concatenate along
        else:
            key = tuple(sorted((name, a.shape[1:], a.dtype.str) for name, a in request.data.items()))
        groups.setdefault(key, []).append(index)
    return groups


def _batch_size(request: Request) -> int:
    return int(next(iter(request.data.values())).shape[0])


def _requested_union(requests: Sequence[Request]) -> Optional[List[str]]:
    wanted: List[str] = []
    seen: Set[str] = set()
    for request in requests:
        if request.requested_output_names is None:
            return None
        for name in request.requested_output_names:
            if name not in seen:
                seen.add(name)
                wanted.append(name)
    return wanted


def _split(outputs: Dict[str, np.ndarray], sizes: Sequence[int], model: str) -> List[Dict[str, np.ndarray]]:
    total = sum(sizes)
    offsets = np.cumsum(sizes)[:-1]
    parts: List[Dict[str, np.ndarray]] = [{} for _ in sizes]
    for name, value in outputs.items():
        if value.ndim == 0 or value.shape[0] != total:
            got = "a scalar" if value.ndim == 0 else f"shape {shape_str(value.shape)}"
            raise ModelExecutionError(
                f"output '{name}' of model '{model}' has {got} for a batch of {total}: a model with "
                "max_batch_size > 0 must return its outputs with the batch dimension first"
            )
        for part, piece in zip(parts, np.split(value, offsets)):
            part[name] = piece
    return parts


__all__ = [
    "LOGGER",
    "RunFn",
    "bool_parameter",
    "data_type_name",
    "group_name",
    "infer_batched",
    "int_parameter",
    "parameter",
    "require_inputs_outputs",
    "shape_str",
]
