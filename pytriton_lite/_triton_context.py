"""PyTriton's triton context: how ``bind()`` hands the model config to decorated callables.

``attach_triton_context`` (called by the server at bind time) stores a ``TritonContext`` on the callable (or on
its ``__self__`` for bound methods); decorators find the config through ``get_model_config`` /
``get_triton_context``. Also PyTriton's type aliases of ``pytriton.decorators``. Re-exported by
``pytriton_lite.decorators``, where PyTriton users import them from.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import logging
from collections.abc import MutableMapping
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from pytriton_lite.exceptions import PyTritonValidationError
from pytriton_lite.model_config import TritonModelConfig

LOGGER = logging.getLogger("pytriton_lite.decorators")

TRITON_CONTEXT_FIELD_NAME = "triton_context"  # kwarg added by @triton_context (pytriton.constants)
_TRITON_CONTEXT_ATTR = "__triton_context__"  # attribute set on the bound callable (or its __self__)
_SPECIAL_KEYS = [_TRITON_CONTEXT_ATTR]

# PyTriton's aliases (not pytriton_lite.types.InferenceRequest, which is the transport-level message).
InputNames = List[str]
InferenceRequest = Dict[str, np.ndarray]
InferenceRequests = Union[List[InferenceRequest], Tuple[InferenceRequest, ...]]
InferenceResult = Dict[str, np.ndarray]
InferenceResults = Union[List[InferenceResult], Tuple[InferenceResult, ...]]


class _WrappedWithWrapper(NamedTuple):
    wrapped: Optional[Callable]
    wrapper: Optional[Callable]


def get_inference_request_batch_size(inference_request: InferenceRequest) -> int:
    """Batch size of a request = size of the first dimension of its first input."""
    first_input_value = next(iter(inference_request.values()))
    batch_size, *_dims = first_input_value.shape
    return batch_size


def _get_wrapt_stack(wrapped: Any) -> List[_WrappedWithWrapper]:
    """The chain of wrapt wrappers applied to an inference callable, outermost first."""
    stack = []
    infer_callable = wrapped
    while infer_callable is not None:
        stack.append(_WrappedWithWrapper(infer_callable, getattr(infer_callable, "_self_wrapper", None)))
        infer_callable = getattr(infer_callable, "__wrapped__", None)
    return stack


class ModelConfigDict(MutableMapping):
    """Model configs keyed by inference callable.

    Keys are ``str(callable)`` so that every wrapt layer of one callable (which all proxy ``__str__`` to the
    innermost function) and every fresh bound-method object of one method map to the same entry. A bound
    ``__call__`` is keyed by its instance: that is what ``bind()`` receives for a callable object.
    """

    def __init__(self) -> None:
        self._data: Dict[str, TritonModelConfig] = {}
        self._callables: Dict[str, Callable] = {}

    def __getitem__(self, infer_callable: Callable) -> TritonModelConfig:
        return self._data[self._get_model_config_key(infer_callable)]

    def __setitem__(self, infer_callable: Callable, item: TritonModelConfig) -> None:
        key = self._get_model_config_key(infer_callable)
        self._callables[key] = infer_callable
        self._data[key] = item

    def __delitem__(self, infer_callable: Callable) -> None:
        key = self._get_model_config_key(infer_callable)
        del self._data[key]
        del self._callables[key]

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Callable]:
        return iter(list(self._callables.values()))

    @staticmethod
    def _get_model_config_key(infer_callable: Callable) -> str:
        dict_key: Any = infer_callable
        if inspect.ismethod(dict_key) and dict_key.__name__ == "__call__":
            dict_key = dict_key.__self__
        return str(dict_key)


@dataclasses.dataclass
class TritonContext:
    """What ``bind()`` attaches to an inference callable; ``model_configs[callable]`` is its model config."""

    model_configs: ModelConfigDict = dataclasses.field(default_factory=ModelConfigDict)


def attach_triton_context(infer_func: Callable, model_config: TritonModelConfig) -> None:
    """Register ``model_config`` for ``infer_func`` the way PyTriton's bind does.

    The context lives in attribute ``__triton_context__`` of the callable's ``__self__`` for bound methods,
    else of the callable itself (for a wrapt-decorated function the attribute lands on the innermost function,
    which every layer proxies to). An existing context is reused so that several methods of one object, or
    one object bound twice, keep all their configs. Callables that cannot take attributes (``__slots__``)
    are left alone: only decorators that need the config will then fail, with PyTriton's error.
    """
    target = infer_func.__self__ if hasattr(infer_func, "__self__") else infer_func
    context = getattr(target, _TRITON_CONTEXT_ATTR, None)
    if not isinstance(context, TritonContext):
        context = TritonContext()
        try:
            setattr(target, _TRITON_CONTEXT_ATTR, context)
        except (AttributeError, TypeError) as exc:
            LOGGER.debug("Cannot attach triton context to %r: %s", target, exc)
            return
    context.model_configs[infer_func] = copy.deepcopy(model_config)


def get_triton_context(wrapped: Any, instance: Any) -> TritonContext:
    """The ``TritonContext`` attached by ``bind()`` (looked up on ``instance`` for methods, else ``wrapped``)."""
    caller = instance if instance is not None else wrapped
    if not hasattr(caller, _TRITON_CONTEXT_ATTR):
        raise PyTritonValidationError("Wrapped function or object must bound with triton to get  __triton_context__")
    return getattr(caller, _TRITON_CONTEXT_ATTR)


def get_model_config(wrapped: Any, instance: Any) -> TritonModelConfig:
    """The ``TritonModelConfig`` the callable was bound with; for use in custom decorators."""
    return get_triton_context(wrapped, instance).model_configs[wrapped]


def convert_output(
    outputs: Union[Dict, List, Tuple],
    wrapped: Any = None,
    instance: Any = None,
    model_config: Optional[TritonModelConfig] = None,
) -> Dict[str, Any]:
    """Map a list/tuple of outputs onto the declared output names (a dict is returned as is)."""
    if isinstance(outputs, dict):
        return outputs
    if isinstance(outputs, (list, tuple)):
        if model_config is None:
            model_config = get_model_config(wrapped, instance)
        config_outputs = model_config.outputs or []
        if len(outputs) != len(config_outputs):
            raise PyTritonValidationError("Outputs length different than config outputs length")
        return {config_output.name: output for config_output, output in zip(config_outputs, outputs)}
    raise PyTritonValidationError(f"Unsupported output type {type(outputs)}.")


__all__ = ["InputNames", "InferenceRequest", "InferenceRequests", "InferenceResult", "InferenceResults"]
__all__ += ["ModelConfigDict", "TritonContext", "TRITON_CONTEXT_FIELD_NAME", "attach_triton_context"]
__all__ += ["convert_output", "get_inference_request_batch_size", "get_model_config", "get_triton_context"]
