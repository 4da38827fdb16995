"""One model folder -> served versions: prepare the config, place the instances, call the backend, build Models.

``prepare`` reads and completes the config (``repository.config``) and picks the versions its policy serves;
``placements`` turns the completed ``instance_group`` into ``InstancePlacement`` s (Triton's naming:
``<group>`` for count 1, ``<group>_<k>`` otherwise; one per GPU of a KIND_GPU group); ``build_model`` wraps the
backend's infer callables (``reshape``) into a ``core.model.Model`` whose ``served`` config is the completed
proto; ``warm_up`` runs ``model_warmup`` on every instance before the version turns READY and, as in Triton,
a failing warm-up fails the load.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
from tritonclient.grpc import model_config_pb2
from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

from pytriton_lite._dtypes import from_triton_dtype
from pytriton_lite.core import callables
from pytriton_lite.core.model import Model
from pytriton_lite.core.warmup import warmup_requests
from pytriton_lite.exceptions import PyTritonError
from pytriton_lite.model_config import DynamicBatcher, ModelConfig, ModelWarmup, Tensor, WarmupInput
from pytriton_lite.repository import backends, scanner
from pytriton_lite.repository.backend import (
    Backend,
    InstancePlacement,
    LoadContext,
    LoadedModel,
    ModelLoadError,
    ModelSource,
    VersionSource,
)
from pytriton_lite.repository.backends.ensemble import MIN_CONCURRENCY
from pytriton_lite.repository.config import (
    check_config,
    complete_config,
    initial_config,
    output_labels,
    resolve_backend,
)
from pytriton_lite.types import Request

LOGGER = logging.getLogger("pytriton_lite.repository")

_KIND = model_config_pb2.ModelInstanceGroup.Kind
_KIND_GPU = _KIND.Value("KIND_GPU")
#: instances of an ensemble (it has no instance_group): the ensemble backend's own floor, one number for both
ENSEMBLE_INSTANCES = MIN_CONCURRENCY
_NVIDIA_DEVICE = re.compile(r"nvidia[0-9]+")


def gpu_count() -> int:
    """GPUs visible to this process, without importing a framework: ``/dev/nvidia<N>`` device files,
    narrowed by ``CUDA_VISIBLE_DEVICES`` (empty or ``-1``: none)."""
    try:
        physical = sum(1 for name in os.listdir("/dev") if _NVIDIA_DEVICE.fullmatch(name))
    except OSError:
        physical = 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return physical
    count = 0
    for item in visible.split(","):
        item = item.strip()
        if not item or item.startswith("-"):
            break  # CUDA stops at the first invalid entry
        count += 1
    return min(count, physical)


@dataclass
class Prepared:
    """A model folder read and completed: what every version of it is loaded with."""

    source: ModelSource
    config: ModelConfigProto
    backend_name: str
    backend: Backend
    versions: List[int]
    fingerprint: Tuple[Any, Dict[int, Any]]
    ignored: List[str] = field(default_factory=list)


def load_backend(name: str) -> Backend:
    """The backend module for ``name``; a missing module or framework becomes the model's reason."""
    try:
        return backends.backend_for(name)
    except ModelLoadError:
        raise
    except ImportError as exc:
        raise ModelLoadError(f"backend '{name}' is not available: {exc}") from None


def prepare(source: ModelSource, override_json: str = "", gpus: int = 0) -> Prepared:
    """Read, auto-complete, check and complete the config of ``source``; pick the versions to serve."""
    fingerprint = scanner.fingerprint(source)
    found = scanner.version_numbers(source)
    if not source.directory.is_dir():
        raise ModelLoadError(f"model folder {source.directory} does not exist")
    config = initial_config(source, override_json)
    backend_name = resolve_backend(config, source.directory / str(found[-1]) if found else None)
    backend = load_backend(backend_name)
    policy = config.version_policy if config.HasField("version_policy") else None
    versions = scanner.served_versions(policy, found)
    if not versions:
        raise ModelLoadError(
            f"at least one version must be available under the version policy of model '{source.name}'"
        )
    backend.auto_complete(source, config, source.directory / str(versions[-1]))
    ignored = check_config(config, backend_name)
    complete_config(config, backend_name, gpus, backend.default_model_filename)
    return Prepared(source, config, backend_name, backend, versions, fingerprint, ignored)


def placements(config: ModelConfigProto, backend_name: str = "") -> List[InstancePlacement]:
    """The instances a completed ``instance_group`` asks for, in Triton's order and naming."""
    if backend_name == "ensemble":
        return [InstancePlacement(f"{config.name}_ensemble_{k}", "KIND_CPU", 0, k) for k in range(ENSEMBLE_INSTANCES)]
    result: List[InstancePlacement] = []
    for group in config.instance_group:
        kind = _KIND.Name(group.kind)
        devices = list(group.gpus) if group.kind == _KIND_GPU else [0]
        for k in range(group.count):
            name = group.name if group.count == 1 else f"{group.name}_{k}"
            for device in devices:
                result.append(InstancePlacement(name, kind, int(device), len(result)))
    return result


# --- tensors and PyTriton's config ----------------------------------------------------------------------


def _dtype(data_type: int) -> Any:
    type_name = model_config_pb2.DataType.Name(data_type)
    if type_name == "TYPE_STRING":
        return bytes
    return from_triton_dtype(type_name).type


def tensors(config: ModelConfigProto) -> Tuple[List[Tensor], List[Tensor]]:
    """Inputs and outputs as PyTriton ``Tensor`` s with the wire dims (TYPE_STRING = bytes)."""
    inputs = [
        Tensor(name=t.name, shape=tuple(t.dims), dtype=_dtype(t.data_type), optional=bool(t.optional))
        for t in config.input
    ]
    outputs = [Tensor(name=t.name, shape=tuple(t.dims), dtype=_dtype(t.data_type)) for t in config.output]
    return inputs, outputs


def _warmups(config: ModelConfigProto, directory: pathlib.Path) -> List[ModelWarmup]:
    result = []
    for warmup in config.model_warmup:
        inputs = {}
        for name, spec in warmup.inputs.items():
            source = spec.WhichOneof("input_data_type")
            data_file = str(directory / "warmup" / spec.input_data_file) if source == "input_data_file" else None
            inputs[name] = WarmupInput(
                dtype=_dtype(spec.data_type),
                shape=tuple(spec.dims),
                zero_data=source == "zero_data",
                random_data=source == "random_data",
                input_data_file=data_file,
            )
        result.append(
            ModelWarmup(name=warmup.name, batch_size=max(1, warmup.batch_size), inputs=inputs, count=warmup.count)
        )
    return result


def pytriton_config(config: ModelConfigProto, directory: pathlib.Path) -> ModelConfig:
    """PyTriton's ``ModelConfig`` for a repository model (warm-up and what callables may read)."""
    batching = config.dynamic_batching
    return ModelConfig(
        batching=config.max_batch_size > 0,
        max_batch_size=max(1, int(config.max_batch_size)),
        batcher=DynamicBatcher(
            max_queue_delay_microseconds=int(batching.max_queue_delay_microseconds),
            preferred_batch_size=list(batching.preferred_batch_size) or None,
            preserve_ordering=bool(batching.preserve_ordering),
            priority_levels=int(batching.priority_levels),
            default_priority_level=int(batching.default_priority_level),
        ),
        response_cache=bool(config.response_cache.enable),
        decoupled=bool(config.model_transaction_policy.decoupled),
        model_warmup=_warmups(config, directory) or None,
    )


# --- reshape --------------------------------------------------------------------------------------------


def _target(actual: Sequence[int], source: Sequence[int], target: Sequence[int]) -> Tuple[int, ...]:
    """``target`` with its -1s filled in order from the sizes ``actual`` has where ``source`` has -1s."""
    variable = [a for a, s in zip(actual, source) if s == -1]
    if list(target).count(-1) <= 1 or len(variable) != list(target).count(-1):
        return tuple(target)
    sizes = iter(variable)
    return tuple(next(sizes) if d == -1 else d for d in target)


def _reshaper(specs: Sequence[Any], batching: bool, to_model: bool) -> Dict[str, Callable[[np.ndarray], np.ndarray]]:
    functions: Dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for spec in specs:
        if not spec.HasField("reshape"):
            continue
        wire, model = tuple(spec.dims), tuple(spec.reshape.shape)
        source, target = (wire, model) if to_model else (model, wire)

        def reshape(array: np.ndarray, source: Tuple[int, ...] = source, target: Tuple[int, ...] = target) -> Any:
            lead = tuple(array.shape[:1]) if batching else ()
            rest = array.shape[1:] if batching else array.shape
            return array.reshape(lead + _target(rest, source, target))

        functions[spec.name] = reshape
    return functions


def reshaping(func: Callable[..., Any], config: ModelConfigProto) -> Callable[..., Any]:
    """``func`` with ``reshape`` applied: inputs from the wire dims to ``reshape.shape`` before the call,
    outputs from ``reshape.shape`` back to the wire dims after it. ``func`` itself when nothing reshapes."""
    batching = config.max_batch_size > 0
    inputs = _reshaper(config.input, batching, to_model=True)
    outputs = _reshaper(config.output, batching, to_model=False)
    if not inputs and not outputs:
        return func

    def apply(mapping: Any, functions: Dict[str, Callable[[np.ndarray], np.ndarray]]) -> Any:
        if not isinstance(mapping, dict):
            return mapping
        return {k: functions[k](v) if k in functions and isinstance(v, np.ndarray) else v for k, v in mapping.items()}

    def results(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [apply(item, outputs) for item in value]
        if callables.is_async_iterable(value):
            return _async_map(value, results)
        if callables.is_iterator(value):
            return (results(item) for item in value)
        if hasattr(value, "__await__"):
            return _await_map(value, results)
        return value

    def wrapped(requests: List[Request]) -> Any:
        reshaped = [dataclasses.replace(r, data=apply(r.data, inputs)) for r in requests]
        return results(func(reshaped))

    for attribute in ("__name__", "__qualname__", "__doc__"):
        if hasattr(func, attribute):
            setattr(wrapped, attribute, getattr(func, attribute))
    return wrapped


async def _await_map(value: Any, results: Callable[[Any], Any]) -> Any:
    return results(await value)


async def _async_map(value: Any, results: Callable[[Any], Any]) -> Any:
    try:
        async for item in value:
            yield results(item)
    finally:
        await callables.close(value)


# --- the version --------------------------------------------------------------------------------------


def build_model(prepared: Prepared, version: int, loaded: LoadedModel) -> Model:
    """The ``core.model.Model`` of one loaded version; ``served`` is a private copy of the completed config."""
    served = ModelConfigProto()
    served.CopyFrom(prepared.config)
    inputs, outputs = tensors(served)
    labels = output_labels(served, prepared.source.directory)
    outputs = [dataclasses.replace(t, labels=labels[t.name]) if t.name in labels else t for t in outputs]
    if not loaded.infer_funcs:
        raise ModelLoadError(f"backend '{prepared.backend_name}' returned no infer function for '{served.name}'")
    funcs = [reshaping(func, served) for func in loaded.infer_funcs]
    config = pytriton_config(served, prepared.source.directory)
    return Model(served.name, version, funcs, inputs, outputs, config, served=served)


def load_version(prepared: Prepared, version: int, context: LoadContext) -> Tuple[Model, LoadedModel]:
    """Load one version with its backend (on a loader thread; the backend checks its model file, with its own
    words): ``backend.load`` gets the placements; returns the Model to register and what to finalize."""
    source = VersionSource(prepared.source, version, prepared.config)
    loaded = prepared.backend.load(source, placements(prepared.config, prepared.backend_name), context)
    try:
        return build_model(prepared, version, loaded), loaded
    except BaseException:
        finalize(loaded, prepared.source.name)
        raise


def initialize(loaded: LoadedModel, instances: Sequence[Any], timeout: float = 3600.0) -> None:
    """Run the backend's initializers, each on its own instance's thread, all instances at once (as Triton's
    stub processes start side by side); the first failure (in instance order) fails the load."""
    futures = [instance.execute(init) for instance, init in zip(instances, loaded.initializers)]
    failures: List[BaseException] = []
    for future in futures:
        try:
            future.result(timeout)
        except Exception as exc:  # noqa: BLE001 - every instance is waited for; the first failure is raised
            failures.append(exc)
    if failures:
        first = failures[0]
        if isinstance(first, ModelLoadError):
            raise first
        raise ModelLoadError(f"{type(first).__name__}: {first}") from first


def warm_up(model: Model, instances: Sequence[Any], timeout: float = 600.0) -> int:
    """Run ``model_warmup`` on every instance (on its own thread). A failure fails the load (Triton)."""
    calls = 0
    for warmup in model.config.model_warmup or []:
        for instance in instances:
            for request in warmup_requests(model, warmup):
                future = instance.execute(_runner(instance.func, request, model))
                try:
                    future.result(timeout)
                except Exception as exc:
                    why = str(exc) if isinstance(exc, PyTritonError) else f"{type(exc).__name__}: {exc}"
                    raise ModelLoadError(f"failed to run warmup sample '{warmup.name}': {why}") from exc
                calls += 1
    return calls


def _runner(func: Callable[..., Any], request: Request, model: Model) -> Callable[[], Any]:
    async def run() -> None:
        result = func([request])
        if model.decoupled:
            await callables.for_each(result, _keep_going)
        else:
            model.postprocess(await callables.one_result(result, model.name), [request])

    return run


async def _keep_going(_: Any) -> bool:
    return True


def finalize(loaded: LoadedModel, name: str) -> None:
    try:
        loaded.finalize()
    except Exception:
        LOGGER.warning("finalize of model '%s' failed", name, exc_info=True)


__all__ = [
    "ENSEMBLE_INSTANCES",
    "Prepared",
    "build_model",
    "finalize",
    "gpu_count",
    "initialize",
    "load_backend",
    "load_version",
    "placements",
    "prepare",
    "pytriton_config",
    "reshaping",
    "tensors",
    "warm_up",
]
