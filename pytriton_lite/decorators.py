"""Inference callable decorators: PyTriton 0.7's ``pytriton.decorators`` on wrapt and numpy.

The decorators turn the server's calling convention (``infer_func(requests: List[Request])``) into something
friendlier (``infer_func(**batched_inputs)``) and back. Names, argument conventions, error classes and
messages follow PyTriton. Differences (all supersets of PyTriton's behaviour):

- ``@batch`` and ``@sample`` also accept generator, coroutine and async-generator callables and keep their
  kind, so a server that inspects the decorated callable sees what it will get back.
- ``@group_by_keys`` / ``@group_by_values`` also accept coroutine callables; generator callables are refused
  with ``PyTritonRuntimeError`` (a stream cannot be re-assembled from several groups).
- ``@pad_batch`` trims outputs that come back with the padded batch size, so ``@batch @pad_batch`` works
  without the callable slicing its results.
- A ``triton_context=`` kwarg added by an outer ``@triton_context`` is passed through, not taken for an input.
- ``@fill_optionals`` accepts ``object``/``bytes``/``str`` arrays as defaults for a BYTES input.

The server calls :func:`attach_triton_context` at bind time; decorators that need the model config
(``convert_output`` for positional outputs, ``fill_optionals``, ``pad_batch``, ``first_value``,
``triton_context``) find it through :func:`get_model_config` / :func:`get_triton_context`.
"""

from __future__ import annotations

import collections
import inspect
import itertools
import logging
import operator
import struct
from bisect import bisect_left
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import wrapt

from pytriton_lite._triton_context import (  # re-exported: PyTriton's names
    _SPECIAL_KEYS,
    TRITON_CONTEXT_FIELD_NAME,
    InferenceRequest,
    InferenceRequests,
    InferenceResult,
    InferenceResults,
    InputNames,
    ModelConfigDict,
    TritonContext,
    _get_wrapt_stack,
    attach_triton_context,
    convert_output,
    get_inference_request_batch_size,
    get_model_config,
    get_triton_context,
)
from pytriton_lite.exceptions import PyTritonBadParameterError, PyTritonRuntimeError, PyTritonValidationError
from pytriton_lite.model_config import TritonModelConfig, is_bytes_dtype

LOGGER = logging.getLogger(__name__)


# --- helpers for the callable kinds (plain, generator, coroutine, async generator) --------------------


def _map_result(result: Any, fn: Callable[[Any], Any]) -> Any:
    """Apply ``fn`` to a result, keeping its kind: each item of a (async) generator, an awaited coroutine."""
    if inspect.isgenerator(result):
        return _map_generator(result, fn)
    if inspect.isasyncgen(result):
        return _map_async_generator(result, fn)
    if inspect.isawaitable(result):
        return _map_awaitable(result, fn)
    return fn(result)


def _map_generator(gen: Any, fn: Callable[[Any], Any]) -> Any:
    try:
        for item in gen:
            yield fn(item)
    finally:
        gen.close()  # the server closing our generator must stop the user's one now, not at GC time


async def _map_async_generator(agen: Any, fn: Callable[[Any], Any]) -> Any:
    try:
        async for item in agen:
            yield fn(item)
    finally:
        await agen.aclose()


async def _map_awaitable(awaitable: Any, fn: Callable[[Any], Any]) -> Any:
    return fn(await awaitable)


def _is_stream(result: Any) -> bool:
    return inspect.isgenerator(result) or inspect.isasyncgen(result)


def _refuse_stream(result: Any, decorator_name: str) -> None:
    """Grouping decorators call the callable once per group; streams of several groups cannot be merged."""
    if inspect.isgenerator(result):
        result.close()
    raise PyTritonRuntimeError(f"The {decorator_name} decorator does not support generator inference callables.")


def _call_per_group(calls: List[Callable[[], Any]], combine: Callable[[List[Any]], Any], name: str) -> Any:
    """Run one call per group (sequentially, awaiting each one for coroutine callables), then combine."""
    first = calls[0]()
    if _is_stream(first):
        _refuse_stream(first, name)
    if inspect.isawaitable(first):

        async def _run_async() -> Any:
            results = [await first]
            for call in calls[1:]:
                results.append(await call())
            return combine(results)

        return _run_async()
    results = [first]
    for call in calls[1:]:
        result = call()
        if _is_stream(result) or inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise PyTritonRuntimeError(f"The {name} decorator got results of different kinds from one callable.")
        results.append(result)
    return combine(results)


def _split_kwargs(kwargs: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Split kwargs into model inputs and passed-through context kwargs."""
    inputs, others = {}, {}
    for name, value in kwargs.items():
        if name in _SPECIAL_KEYS or isinstance(value, TritonContext):
            others[name] = value
        else:
            inputs[name] = value
    return inputs, others


# --- decorators ---------------------------------------------------------------------------------------


@wrapt.decorator
def sample(wrapped, instance, args, kwargs):
    """Non-batching models: call ``fn(**requests[0])`` and return ``[outputs]``.

    Only the first request is used (a model with ``batching=False`` gets one request per call). A list or
    tuple result is mapped onto the declared outputs.
    """
    kwargs.update(args[0][0])
    outputs = wrapped(*args[1:], **kwargs)
    return _map_result(outputs, lambda result: [convert_output(result, wrapped, instance)])


@wrapt.decorator
def batch(wrapped, instance, args, kwargs):
    """Concatenate the requests' inputs into batches, call ``fn(**batched_inputs)``, split the outputs back.

    All requests must carry the same input names (put ``@group_by_keys`` first if they may not). Outputs are
    split by each request's batch size (dim 0 of its first input). Generator callables give a generator of
    split results (one list of per-request dicts per ``yield``), coroutine callables a coroutine.

    Raises:
        PyTritonValidationError: the requests have different sets of input names.
        ValueError: an output's dim 0 differs from the sum of the requests' batch sizes.
    """
    req_list = args[0]
    input_names = req_list[0].keys()
    for other_request in req_list[1:]:
        if input_names != other_request.keys():
            raise PyTritonValidationError("Cannot batch requests with different set of inputs keys")

    inputs = {name: np.concatenate([req[name] for req in req_list]) for name in input_names}
    new_kwargs = dict(kwargs)
    new_kwargs.update(inputs)
    outputs = wrapped(*args[1:], **new_kwargs)

    batch_sizes = [get_inference_request_batch_size(req) for req in req_list]
    total_batch_size = sum(batch_sizes)

    def _split_result(result: Any) -> List[Dict[str, np.ndarray]]:
        result = convert_output(result, wrapped, instance)
        not_matching = {
            name: np.shape(tensor)
            for name, tensor in result.items()
            if np.ndim(tensor) == 0 or np.shape(tensor)[0] != total_batch_size
        }
        if not_matching:
            shapes = ", ".join(": ".join(map(str, item)) for item in not_matching.items())
            raise ValueError(
                f"Received output tensors with different batch sizes: {shapes}. "
                f"Expected batch size: {total_batch_size}. "
            )
        out_list = []
        start = 0
        for size in batch_sizes:
            out_list.append({name: tensor[start : start + size, ...] for name, tensor in result.items()})
            start += size
        return out_list

    return _map_result(outputs, _split_result)


@wrapt.decorator
def group_by_keys(wrapped, instance, args, kwargs):
    """Call ``fn`` once per group of requests with the same input names; results keep the request order.

    Put it before (outside) ``@batch`` when some inputs are optional.
    """
    requests = args[0]
    if not requests:
        return wrapped(*args, **kwargs)
    idx_inputs = [(idx, tuple(sorted(request.keys())), request) for idx, request in enumerate(requests)]
    idx_inputs.sort(key=operator.itemgetter(1))
    groups = []
    for _, group in itertools.groupby(idx_inputs, key=operator.itemgetter(1)):
        indices, _keys, group_requests = zip(*group)
        groups.append((indices, list(group_requests)))

    def _make_call(group_requests: List[Any]) -> Callable[[], Any]:
        return lambda: wrapped(group_requests, *args[1:], **kwargs)

    def _combine(results: List[Any]) -> List[Any]:
        indexed: List[Tuple[int, Any]] = []
        for (indices, _), result in zip(groups, results):
            indexed.extend(zip(indices, result))
        indexed.sort(key=operator.itemgetter(0))
        return [item for _, item in indexed]

    return _call_per_group([_make_call(reqs) for _, reqs in groups], _combine, "@group_by_keys")


def _bytes_tensor_key(tensor: np.ndarray) -> bytes:
    """Injective bytes key of an object/bytes array (length-prefixed items; NULs are kept)."""
    if tensor.dtype.type == np.bytes_:
        return tensor.tobytes()  # fixed itemsize: injective among rows of one input
    parts = []
    for item in tensor.ravel(order="C"):
        data = item if isinstance(item, bytes) else str(item).encode("utf-8")
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def group_by_values(*keys: str, pad_fn: Optional[Callable[[InferenceRequests], InferenceRequests]] = None):
    """Split the batch into sub-batches whose rows have equal values of ``keys``; one call per sub-batch.

    Must be applied after (inside) ``@batch``. Outputs are scattered back to the original row order; the
    output arrays take shape and dtype from the first sub-batch result, so give ``pad_fn`` (for example
    ``ConstantPadder()``) when sub-results may differ in their non-batch dimensions::

        @batch
        @group_by_values("temperature", pad_fn=ConstantPadder(0))
        def infer_fn(**inputs): ...

    Raises:
        PyTritonRuntimeError: used outside (before) ``@batch``.
    """

    def _value_to_key(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            if value.dtype == np.object_ or value.dtype.type == np.bytes_:
                return _bytes_tensor_key(value)
            return value.tobytes()
        return value

    def _sort_key(request: Dict[str, np.ndarray], sample_idx: int) -> Tuple[Any, ...]:
        return tuple(_value_to_key(request[key][sample_idx]) for key in keys)

    def _group_request(request: Dict[str, np.ndarray], batch_size: int):
        idx_inputs = [(sample_idx, _sort_key(request, sample_idx)) for sample_idx in range(batch_size)]
        idx_inputs.sort(key=operator.itemgetter(1))
        for _, group in itertools.groupby(idx_inputs, key=operator.itemgetter(1)):
            sample_indices, _ = zip(*group)
            yield sample_indices, {name: value[list(sample_indices), ...] for name, value in request.items()}

    @wrapt.decorator
    def _wrapper(wrapped, instance, args, kwargs):
        wrappers_stack = [item.wrapper for item in _get_wrapt_stack(wrapped) if item.wrapper is not None]
        if batch in wrappers_stack:
            raise PyTritonRuntimeError("The @group_by_values decorator must be used after the @batch decorator.")

        request, other_kwargs = _split_kwargs(kwargs)
        batch_size = get_inference_request_batch_size(request)
        groups = list(_group_request(request, batch_size))

        def _make_call(sub_request: Dict[str, np.ndarray]) -> Callable[[], Any]:
            return lambda: wrapped(*args, **sub_request, **other_kwargs)

        def _combine(results: List[Any]) -> Dict[str, np.ndarray]:
            results = [convert_output(result, wrapped, instance) for result in results]
            if pad_fn is not None:
                results = list(pad_fn(results))
            first_result = results[0]
            merged = {
                name: np.zeros((batch_size,) + data.shape[1:], dtype=data.dtype) for name, data in first_result.items()
            }
            for (indices, _), result in zip(groups, results):
                for name, data in result.items():
                    merged[name][list(indices), ...] = data
            return merged

        return _call_per_group([_make_call(sub) for _, sub in groups], _combine, "@group_by_values")

    return _wrapper


class ConstantPadder:
    """``pad_fn`` for ``@group_by_values``: pad every output to the largest shape with a constant.

    Byte/unicode string outputs are padded with ``b""`` and widened to the largest item size.
    """

    def __init__(self, pad_value: Any = 0) -> None:
        self.pad_value = pad_value

    def __call__(self, batches_list: InferenceResults) -> InferenceResults:
        """Pad the batches so that each output name has one shape (bar dim 0) and dtype across batches.

        Raises:
            PyTritonRuntimeError: arrays of one output name have different dtypes (kinds, for strings).
        """

        def _padded_shape(batches: List[Optional[np.ndarray]]) -> Tuple[int, ...]:
            return tuple(np.max([b.shape[1:] for b in batches if b is not None], axis=0))

        def _padded_dtype(batches: List[Optional[np.ndarray]]) -> np.dtype:
            dtypes = [b.dtype for b in batches if b is not None]
            result_dtype = dtypes[0]
            if not all(dtype.kind == result_dtype.kind for dtype in dtypes):
                raise PyTritonRuntimeError("All input arrays for given input name must have the same dtype.")
            if result_dtype.kind in "SU":
                # strings: same kind, widen to the longest item size
                order_and_kind = result_dtype.str[:2]
                max_len = max(int(dtype.str[2:]) for dtype in dtypes)
                return np.dtype(f"{order_and_kind}{max_len}")
            if not all(dtype == result_dtype for dtype in dtypes):
                raise PyTritonRuntimeError("All input arrays for given input name must have the same dtype.")
            return np.dtype(result_dtype)

        names = list(collections.OrderedDict.fromkeys(name for b in batches_list for name in b.keys()))
        by_name = {name: [b.get(name) for b in batches_list] for name in names}
        for batches in by_name.values():
            shape, dtype = _padded_shape(batches), _padded_dtype(batches)
            # np.pad converts the constant to the array's dtype; strings are padded with empty strings
            constant = self.pad_value if dtype.kind not in "SUO" else ("" if dtype.kind == "U" else b"")
            for idx, array in enumerate(batches):
                if array is None:
                    continue
                widths = [(0, 0)] + [(0, target - have) for have, target in zip(array.shape[1:], shape)]
                batches[idx] = np.pad(array, widths, mode="constant", constant_values=constant).astype(dtype)

        return [
            {name: array for name, batches in by_name.items() if (array := batches[idx]) is not None}
            for idx in range(len(batches_list))
        ]


def fill_optionals(**defaults: np.ndarray):
    """Insert ``defaults`` for inputs missing from a request (outermost decorator; works on request lists).

    Defaults are numpy arrays without the batch axis; with batching they are tiled to each request's batch
    size. They are checked against the bound model's inputs on each call.

    Raises:
        PyTritonBadParameterError: unknown input name, non-numpy default, dtype or shape mismatch.
    """

    @wrapt.decorator
    def _wrapper(wrapped, instance, args, kwargs):
        model_config = get_model_config(wrapped, instance)
        _verify_fill_defaults(defaults, model_config)
        (requests,) = args
        for request in requests:
            _fill_request(request, defaults, model_config.batching)
        return wrapped(*args, **kwargs)

    return _wrapper


def _fill_request(request: InferenceRequest, defaults: Dict[str, np.ndarray], batching: bool) -> None:
    """Put the defaults of the inputs ``request`` lacks into it, tiled to its batch size when batching."""
    batch_size = get_inference_request_batch_size(request) if batching and len(request) else None
    for name, default_value in defaults.items():
        if name in request:
            continue
        if batching:
            if batch_size is None:
                batch_size = 1  # request without any input: nothing to take the batch size from
            # repeat batch_size times along a new batch axis, once along the others
            default_value = np.tile(default_value, (batch_size,) + (1,) * default_value.ndim)
        request[name] = default_value


def _verify_fill_defaults(defaults: Dict[str, Any], model_config: TritonModelConfig) -> None:
    """``@fill_optionals``' defaults against the model's inputs: known names, numpy arrays, dtypes, shapes."""
    inputs = {spec.name: spec for spec in (model_config.inputs or [])}
    unknown = sorted(set(defaults) - set(inputs))
    if unknown:
        raise PyTritonBadParameterError(f"Could not found {', '.join(unknown)} inputs")

    non_numpy = {k: v for k, v in defaults.items() if not isinstance(v, np.ndarray)}
    if non_numpy:
        raise PyTritonBadParameterError(
            f"Could not use {', '.join([f'{k}={v}' for k, v in non_numpy.items()])} defaults "
            "as they are not NumPy arrays"
        )

    dtypes = {k: (v.dtype, inputs[k].dtype) for k, v in defaults.items()}
    _refuse_mismatches("dtype", {k: pair for k, pair in dtypes.items() if not _dtype_matches(*pair)})
    shapes = {k: (v.shape, tuple(inputs[k].shape)) for k, v in defaults.items()}
    _refuse_mismatches("shape", {k: pair for k, pair in shapes.items() if not _shape_matches(*pair)})


def _refuse_mismatches(what: str, mismatches: Dict[str, Tuple[Any, Any]]) -> None:
    """PyTriton's error for defaults whose ``what`` ("dtype" or "shape") differs from the input signature."""
    if mismatches:
        items = [f"{name}: {what}={have} expected_{what}={expected}" for name, (have, expected) in mismatches.items()]
        raise PyTritonBadParameterError(
            f"Could not use {', '.join(items)} defaults as they have different than input signature {what}s"
        )


def _dtype_matches(have: np.dtype, expected: Any) -> bool:
    if is_bytes_dtype(expected):
        return have.kind in "OSU"
    try:
        return have == np.dtype(expected)
    except TypeError:
        return False


def _shape_matches(have: Tuple[int, ...], expected: Tuple[int, ...]) -> bool:
    return len(have) == len(expected) and all(e == -1 or h == e for h, e in zip(have, expected))


@wrapt.decorator
def triton_context(wrapped, instance, args, kwargs):
    """Pass the bound callable's ``TritonContext`` as kwarg ``triton_context``.

    ``triton_context.model_configs[infer_func]`` is the callable's ``TritonModelConfig``.

    Raises:
        PyTritonValidationError: the callable was not bound to a Triton.
    """
    kwargs[TRITON_CONTEXT_FIELD_NAME] = get_triton_context(wrapped, instance)
    return wrapped(*args, **kwargs)


@wrapt.decorator
def pad_batch(wrapped, instance, args, kwargs):
    """Pad batched inputs (after ``@batch``) to the nearest preferred batch size, else ``max_batch_size``.

    The last row of every input is repeated. Outputs coming back with the padded batch size are trimmed to
    the original one, so that ``@batch`` can split them.
    """
    inputs, _others = _split_kwargs(kwargs)
    first_input = next(iter(inputs.values()))
    original_size = first_input.shape[0]
    config = get_model_config(wrapped, instance)
    batch_sizes = (
        []
        if (config.batcher is None or config.batcher.preferred_batch_size is None)
        else sorted(config.batcher.preferred_batch_size)
    )
    batch_sizes.append(config.max_batch_size)
    position = bisect_left(batch_sizes, original_size)
    if position >= len(batch_sizes):
        raise PyTritonRuntimeError(
            f"Cannot pad batch of size {original_size}: larger than max_batch_size {config.max_batch_size}."
        )
    batch_size = batch_sizes[position]

    repeats = np.ones(original_size, dtype=np.int64)
    repeats[-1] = batch_size - original_size + 1
    kwargs.update({name: np.repeat(array, repeats, axis=0) for name, array in inputs.items()})
    outputs = wrapped(*args, **kwargs)
    if batch_size == original_size:
        return outputs

    def _trim(array: Any) -> Any:
        if isinstance(array, np.ndarray) and array.ndim > 0 and array.shape[0] == batch_size:
            return array[:original_size]
        return array

    def _trim_result(result: Any) -> Any:
        if isinstance(result, dict):
            return {name: _trim(value) for name, value in result.items()}
        if isinstance(result, (list, tuple)):
            return type(result)(_trim(value) for value in result)
        return result

    return _map_result(outputs, _trim_result)


def first_value(*keys: str, squeeze_single_values: bool = True, strict: bool = True):
    """Replace the listed inputs with their first value (per batch after ``@batch``, else per request).

    Use as ``@batch @first_value("temperature")`` or directly on a ``requests`` callable. With
    ``squeeze_single_values`` an all-ones-shaped first value becomes a numpy scalar; with ``strict`` all values
    of an input must be equal. Only for models with batching.

    Raises:
        PyTritonBadParameterError: a key is reserved (``__triton_context__``).
        PyTritonRuntimeError: values differ in strict mode, or the model does not support batching.
    """
    if any(k in _SPECIAL_KEYS for k in keys):
        not_allowed_keys = [key for key in keys if key in _SPECIAL_KEYS]
        raise PyTritonBadParameterError(
            f"The keys {', '.join(not_allowed_keys)} are not allowed as keys for @first_value wrapper. "
            f"The set of not allowed keys are {', '.join(_SPECIAL_KEYS)}"
        )

    @wrapt.decorator
    def wrapper(wrapped, instance, args, kwargs):
        model_config = get_model_config(wrapped, instance)
        if not model_config.batching:
            raise PyTritonRuntimeError("The @first_value decorator can only be used with models that support batching.")

        def _replace_inputs_with_first_value(request):
            for input_name in keys:
                if input_name not in request:
                    continue
                values = request[input_name]
                if strict:
                    # object (string) arrays cannot be compared row-wise: compare all elements
                    axis_of_uniqueness = None if values.dtype == object else 0
                    unique_values = np.unique(values, axis=axis_of_uniqueness)
                    if len(unique_values) > 1:
                        raise PyTritonRuntimeError(
                            f"The values on the {input_name!r} input are not equal. "
                            "To proceed, either disable strict mode in @first_value wrapper "
                            "or ensure that the values always are consistent. "
                            f"The current values of {input_name!r} are {request[input_name]!r}."
                        )
                value = values[0]
                if squeeze_single_values and not np.isscalar(value) and all(dim == 1 for dim in value.shape):
                    value = np.squeeze(value)[()]  # 0-dim array -> numpy scalar
                request[input_name] = value
            return request

        inputs, _others = _split_kwargs(kwargs)
        if inputs:
            return wrapped(*args, **_replace_inputs_with_first_value(kwargs))
        requests, *other_args = args
        requests = [_replace_inputs_with_first_value(request) for request in requests]
        return wrapped(requests, *other_args, **kwargs)

    return wrapper


__all__ = [
    "InputNames",
    "InferenceRequest",
    "InferenceRequests",
    "InferenceResult",
    "InferenceResults",
    "ModelConfigDict",
    "TritonContext",
    "TRITON_CONTEXT_FIELD_NAME",
    "attach_triton_context",
    "batch",
    "ConstantPadder",
    "convert_output",
    "fill_optionals",
    "first_value",
    "get_inference_request_batch_size",
    "get_model_config",
    "get_triton_context",
    "group_by_keys",
    "group_by_values",
    "pad_batch",
    "sample",
    "triton_context",
]
