"""A bound model: its specs, request validation against them, and output post-processing.

Validation follows Triton's order and wording (docs/protocol.md) so that clients see the messages they
expect. Post-processing runs on the instance thread: results are filtered to the requested outputs and cast
to the declared dtypes (``strict=True`` validates instead of casting).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from pytriton_lite._echo import echo, echo_names
from pytriton_lite.core.served_config import ModelConfigProto, bound_model_config
from pytriton_lite.exceptions import InferenceError, InvalidArgumentError, ModelExecutionError
from pytriton_lite.model_config import ModelConfig, Tensor, is_bytes_dtype, to_triton_dtype
from pytriton_lite.types import InferenceRequest, ModelInfo, ModelState, Request, TensorInfo

_VALID_INPUTS_KEPT = 256  # bounded: a model with variable dims sees many shapes

_BATCH_NOTE = (
    " NOTE: Setting a non-zero max_batch_size in the model config requires a batch dimension to be prepended to "
    "each input shape. If you want to specify the full shape including the batch dim in your input dims config, "
    "try setting max_batch_size to zero. See the model configuration docs for more info on max_batch_size."
)


def _info(tensor: Tensor) -> TensorInfo:
    return TensorInfo(
        name=str(tensor.name),
        datatype=tensor.triton_dtype,
        shape=tuple(int(d) for d in tensor.shape),
        optional=bool(tensor.optional),
        labels=tuple(tensor.labels or ()),
    )


def _fmt_names(names: Sequence[str]) -> str:
    return echo_names(names)  # client names: bounded (issue 10)


def _fmt_shape(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(int(d)) for d in shape) + "]"


class Model:
    """A model version: one or more instance callables sharing one served config.

    ``served`` (Triton's ``ModelConfig`` protobuf) is the truth for everything the scheduler and the front
    ends read: batching, queue policies, decoupling, the response cache. ``config`` (PyTriton's dataclass)
    is kept for what PyTriton's own API hands back to callables (decorators, warm-up inputs).
    """

    def __init__(
        self,
        name: str,
        version: int,
        infer_funcs: Sequence[Callable[..., Any]],
        inputs: Sequence[Tensor],
        outputs: Sequence[Tensor],
        config: ModelConfig,
        strict: bool = False,
        served: Optional[ModelConfigProto] = None,
    ) -> None:
        self.name = name
        self.version = int(version)
        self.version_str = str(self.version)
        self.infer_funcs = list(infer_funcs)
        self.inputs: List[Tensor] = list(inputs)
        self.outputs: List[Tensor] = list(outputs)
        self.config = config
        self.strict = strict
        self.instance_count = len(self.infer_funcs)
        self.served = (
            served
            if served is not None
            else bound_model_config(name, self.inputs, self.outputs, config, self.instance_count)
        )
        self.max_batch_size = int(self.served.max_batch_size)
        self.decoupled = bool(self.served.model_transaction_policy.decoupled)
        self.response_cache = bool(self.served.response_cache.enable)
        # read on every request that names no version: a protobuf oneof lookup costs more than the rest of it
        self.specific_versions = self.served.version_policy.WhichOneof("policy_choice") == "specific"
        self.load_duration_s = 0.0  # set by the repository layer once loaded (Triton's nv_model_load_duration_secs)
        self.input_infos = tuple(_info(t) for t in self.inputs)
        self.output_infos = tuple(_info(t) for t in self.outputs)
        self.input_by_name: Dict[str, Tensor] = {t.name: t for t in self.inputs}  # type: ignore[misc]
        self.output_by_name: Dict[str, Tensor] = {t.name: t for t in self.outputs}  # type: ignore[misc]
        self.output_names: List[str] = [t.name for t in self.outputs]  # type: ignore[misc]
        self._required = [str(t.name) for t in self.inputs if not t.optional]
        self._all_input_names = frozenset(str(t.name) for t in self.inputs)
        # (input, dtype, shape without the batch dim) already checked: a set lookup instead of the checks
        self._valid_inputs: Set[Tuple[str, np.dtype, Tuple[int, ...]]] = set()
        self._input_wire_dtypes = {str(t.name): t.triton_dtype for t in self.inputs}
        self._output_np_dtypes: Dict[str, Optional[np.dtype[Any]]] = {
            str(t.name): None if is_bytes_dtype(t.dtype) else np.dtype(t.dtype) for t in self.outputs
        }

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version})"

    def info(self, state: ModelState, reason: str = "") -> ModelInfo:
        """A frozen description of this version in ``state`` (what front ends get)."""
        return ModelInfo(
            name=self.name,
            version=self.version,
            state=state,
            reason=reason,
            decoupled=self.decoupled,
            max_batch_size=self.max_batch_size,
            inputs=self.input_infos,
            outputs=self.output_infos,
            config=self.served,
        )

    # --- request side (serving loop) ------------------------------------------------------------------

    def prepare(self, request: InferenceRequest) -> Tuple[Request, int, Tuple[Any, ...]]:
        """Validate ``request``; return the callable's ``Request``, its batch size and its batch-compat key."""
        requested = request.requested_outputs
        if requested is not None:
            self._check_requested(requested)
        inputs = request.inputs
        if inputs.keys() != self._all_input_names:  # the common case (every input, no other) in one compare
            self._check_names(inputs)
        batching, valid, parts = self.max_batch_size > 0, self._valid_inputs, []
        batch_size = self._batch_size(inputs) if batching else 1
        for name, array in inputs.items():
            shape = array.shape[1:] if batching else array.shape
            if (name, array.dtype, shape) not in valid:
                self._check_input(name, array)
            parts.append((name, shape))
        key = tuple(parts)
        names = requested if requested is not None else self.output_names
        callable_request = Request(
            data=dict(inputs),
            parameters=request.parameters,
            requested_output_names=list(names),
            id=request.id,
            correlation_id=request.correlation_id,
            flags=request.flags,
            timeout_us=request.timeout_us or 0,
        )
        return callable_request, batch_size, key

    def _check_requested(self, requested: Sequence[str]) -> None:
        for out in requested:
            if out not in self.output_by_name:
                raise InvalidArgumentError(f"unexpected inference output '{echo(out)}' for model '{self.name}'")

    def _check_names(self, inputs: Dict[str, np.ndarray]) -> None:
        """Triton's input-count and unknown-input checks, in its order and words."""
        model = self.name
        missing = [n for n in self._required if n not in inputs]
        if missing:
            if len(self._required) == len(self.inputs):
                expect = f"expected {len(self.inputs)} inputs but got {len(inputs)} inputs for model '{model}'."
            else:
                expect = (
                    f"expected number of inputs between {len(self._required)} and {len(self.inputs)} "
                    f"but got {len(inputs)} inputs for model '{model}'."
                )
            raise InvalidArgumentError(
                f"{expect} Got input(s) {_fmt_names(list(inputs))}, but missing required input(s) "
                f"{_fmt_names(missing)}. Please provide all required input(s)."
            )
        for name in inputs:
            if name not in self.input_by_name:
                raise InvalidArgumentError(f"unexpected inference input '{echo(name)}' for model '{model}'")

    def _batch_size(self, inputs: Dict[str, np.ndarray]) -> int:
        """Rows of the request: every input's first dim, equal across inputs and within max_batch_size."""
        model = self.name
        batch_size = -1
        for name, array in inputs.items():
            if array.ndim < 1:
                raise InvalidArgumentError(
                    f"input '{name}' has no shape but model requires batch dimension for '{model}'"
                )
            rows = int(array.shape[0])
            if batch_size < 0:
                batch_size = rows
            elif rows != batch_size:
                raise InvalidArgumentError(f"input '{name}' batch size does not match other inputs for '{model}'")
        if batch_size < 0:
            return 1
        if batch_size > self.max_batch_size:
            raise InvalidArgumentError(f"inference request batch-size must be <= {self.max_batch_size} for '{model}'")
        if batch_size < 1:
            raise InvalidArgumentError(f"inference request batch-size must be >= 1 for '{model}'")
        return batch_size

    def _check_input(self, name: str, array: np.ndarray) -> Tuple[str, Tuple[int, ...]]:
        """Datatype and shape of one input; returns its part of the batch-compatibility key."""
        model = self.name
        expected = self._input_wire_dtypes[name]
        got_dtype = to_triton_dtype(array.dtype)  # cached per dtype
        if got_dtype != expected:
            raise InvalidArgumentError(
                f"inference input '{name}' data-type is '{got_dtype}', but model '{model}' expects '{expected}'"
            )
        batching = self.max_batch_size > 0
        shape = array.shape[1:] if batching else array.shape
        dims = self.input_by_name[name].shape
        if len(shape) != len(dims) or any(d != -1 and d != s for d, s in zip(dims, shape)):
            full_dims = ((-1,) + tuple(dims)) if batching else tuple(dims)
            note = _BATCH_NOTE if batching else ""
            raise InvalidArgumentError(
                f"unexpected shape for input '{name}' for model '{model}'. "
                f"Expected {_fmt_shape(full_dims)}, got {_fmt_shape(array.shape)}.{note}"
            )
        if len(self._valid_inputs) < _VALID_INPUTS_KEPT:
            self._valid_inputs.add((name, array.dtype, shape))
        return (name, shape)

    # --- result side (instance thread) ----------------------------------------------------------------

    def postprocess(self, results: Any, requests: Sequence[Request]) -> List[Any]:
        """Validate the callable's results and turn them into per-request output dicts.

        A result may instead be an ``InferenceError``: that request alone fails with it (a backend answering
        some requests of a batch with an error, as Triton's python backend can)."""
        if not isinstance(results, (list, tuple)):
            raise ModelExecutionError(
                f"Results returned by the infer function of model '{self.name}' must be a list of response dicts "
                f"with numpy arrays, got {type(results).__name__}"
            )
        if len(results) != len(requests):
            raise ModelExecutionError(
                f"Number of outputs returned by the infer function of model '{self.name}' ({len(results)}) "
                f"does not match number of requests ({len(requests)})"
            )
        return [
            result if isinstance(result, InferenceError) else self._one(result, request)
            for result, request in zip(results, requests)
        ]

    def _one(self, result: Any, request: Request) -> Dict[str, np.ndarray]:
        if not isinstance(result, dict):
            raise ModelExecutionError(
                f"Results returned by the infer function of model '{self.name}' must be a list of response dicts "
                f"with numpy arrays, got an item of type {type(result).__name__}"
            )
        wanted = request.requested_output_names or self.output_names
        outputs: Dict[str, np.ndarray] = {}
        for name in self.output_names:
            if name not in wanted or name not in result:
                continue
            value = result[name]
            if not isinstance(value, np.ndarray):
                raise ModelExecutionError(
                    f"Output '{name}' of model '{self.name}' must be a numpy array, got {type(value).__name__}"
                )
            if value.dtype.kind not in "biufOSU":
                raise ModelExecutionError(f"Output '{name}' of model '{self.name}' has unsupported dtype {value.dtype}")
            target = self._output_np_dtypes[name]
            if self.strict:
                self._check_strict(name, value)
            if target is None:
                if (
                    value.dtype.kind == "O"
                    and value.size
                    and not all(isinstance(v, (bytes, str)) for v in value.reshape(-1))
                ):
                    raise ModelExecutionError(
                        f"Output '{name}' of model '{self.name}' is an object array holding non-bytes values. "
                        "Use string/byte-string instead of object"
                    )
                outputs[name] = value
            else:
                if value.dtype.kind in "OSU":
                    raise ModelExecutionError(
                        f"Output '{name}' of model '{self.name}' holds strings but is declared {target}"
                    )
                outputs[name] = value if value.dtype == target else value.astype(target)
        if self.strict:
            for name in result:
                if name not in self.output_by_name:
                    raise ModelExecutionError(f"Output '{name}' returned by model '{self.name}' is not declared")
        return outputs

    def _check_strict(self, name: str, value: np.ndarray) -> None:
        spec = self.output_by_name[name]
        if is_bytes_dtype(spec.dtype):
            if value.dtype.kind not in "OSU":
                raise ModelExecutionError(
                    f"Output '{name}' of model '{self.name}' has dtype {value.dtype}, expected bytes"
                )
        else:
            declared = np.dtype(spec.dtype)
            if not np.issubdtype(value.dtype, declared):
                raise ModelExecutionError(
                    f"Output '{name}' of model '{self.name}' has dtype {value.dtype}, expected {declared}"
                )
        shape = value.shape[1:] if self.max_batch_size > 0 else value.shape
        if len(shape) != len(spec.shape) or any(d != -1 and d != s for d, s in zip(spec.shape, shape)):
            raise ModelExecutionError(
                f"Output '{name}' of model '{self.name}' has shape {value.shape}, expected "
                f"{((-1,) if self.max_batch_size > 0 else ()) + tuple(spec.shape)}"
            )
