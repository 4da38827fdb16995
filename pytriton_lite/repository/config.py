"""config.pbtxt: read, check, auto-complete and complete a model's ``inference.ModelConfig`` as Triton does.

Parsing uses tritonclient's generated ``model_config_pb2.ModelConfig`` with ``google.protobuf.text_format``
(no hand-written parser); a parse error names the file, the line and the column. Then, in Triton's order:

1. the ``name`` must equal the folder (or be absent);
2. the backend is resolved from ``platform``/``backend`` (or, with neither, from the version folder's files:
   ``model.py``, ``model.onnx``, ``model.pt``), with Triton's messages for unknown ones;
3. the backend's ``auto_complete`` hook fills in what the file left out (ONNX inputs, ``auto_complete_config``);
4. the config is checked (tensors, batching, instance groups) and fields pytriton_lite does not honour are
   refused (``batch_input``/``batch_output``, implicit ``sequence_batching.state``) or warned about by name;
5. Triton's defaults are filled in, so ``/v2/models/m/config`` shows the completed config: both ``platform``
   and ``backend``, ``version_policy``, named ``instance_group`` s with kind and count, ``default_model_filename``,
   ``optimization``'s pinned-memory defaults, ``preferred_batch_size``, ``model_transaction_policy``.

Instance groups: ``KIND_AUTO`` is ``KIND_GPU`` when GPUs are visible and the backend's installed framework can
run models on them (onnxruntime with the CUDA provider, torch with CUDA), otherwise ``KIND_CPU``.
``KIND_GPU`` with no GPU fails the model with Triton's reason
(``instance group m_0 of model m has kind KIND_GPU but no GPUs are available``): pytriton_lite never moves a
GPU model to the CPU behind the user's back.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

from pytriton_lite._dtypes import from_triton_dtype
from pytriton_lite.core.sequence_config import SequenceConfigError, check_sequence_batching, complete_sequence_batching
from pytriton_lite.exceptions import PyTritonModelConfigError
from pytriton_lite.repository.backend import ModelLoadError, ModelSource

LOGGER = logging.getLogger("pytriton_lite.repository")

CONFIG_FILE = "config.pbtxt"
# platform -> backend, and the reverse, for the platforms pytriton_lite serves
PLATFORM_BACKENDS = {"onnxruntime_onnx": "onnxruntime", "pytorch_libtorch": "pytorch", "ensemble": ""}
BACKEND_PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "pytorch": "pytorch_libtorch", "python": ""}
# Triton platforms and backends that exist but are not served here (a clearer message than "unknown")
_TRITON_ONLY = (
    "tensorrt_plan",
    "tensorflow_graphdef",
    "tensorflow_savedmodel",
    "torch_aoti",
    "tensorrt",
    "tensorflow",
    "openvino",
    "fil",
    "dali",
    "vllm",
    "tensorrtllm",
)
# a version folder's file -> the backend that serves it (models with neither platform nor backend)
_FILE_BACKENDS = (("model.onnx", "onnxruntime"), ("model.pt", "pytorch"), ("model.py", "python"))
_SUFFIX_BACKENDS = {".onnx": "onnxruntime", ".pt": "pytorch", ".pth": "pytorch", ".py": "python"}
DEFAULT_FILENAMES = {"python": "model.py", "onnxruntime": "model.onnx", "pytorch": "model.pt", "ensemble": ""}
GPU_BACKENDS = frozenset({"onnxruntime", "pytorch"})

_KIND = model_config_pb2.ModelInstanceGroup.Kind
_KIND_AUTO, _KIND_GPU, _KIND_CPU = (_KIND.Value(k) for k in ("KIND_AUTO", "KIND_GPU", "KIND_CPU"))

# present = refused: pytriton_lite cannot honour them and ignoring them would change what the model computes
_REFUSED = {
    "batch_input": "'batch_input' (ragged batching inputs) is not supported by pytriton_lite",
    "batch_output": "'batch_output' is not supported by pytriton_lite",
}
# backends whose models may have sequence_batching (their instances receive the control inputs)
_SEQUENCE_BACKENDS = frozenset({"python", "onnxruntime"})
# present = accepted, logged by name and ignored
_IGNORED = (
    "runtime",
    "cc_model_filenames",
    "metric_tags",
    "model_operations",
    "model_repository_agents",
    "model_metrics",
)
_IGNORED_OPTIMIZATION = (
    "priority",
    "cuda",
    "execution_accelerators",
    "gather_kernel_buffer_threshold",
    "eager_batching",
)
_IGNORED_GROUP = ("rate_limiter", "secondary_devices", "profile", "passive", "host_policy")
# (an input's ``format`` and an output's ``label_filename`` are honoured: served, and labels classify outputs)
_IGNORED_TENSOR = ("is_shape_tensor", "allow_ragged_batch", "is_non_linear_format_io")
# optimization fields a backend reads itself (not warned about for that backend)
_HONOURED_OPTIMIZATION = {"onnxruntime": frozenset({"graph"})}


def _position(error: text_format.ParseError) -> Tuple[int, int, str]:
    message = str(error)
    line, column = error.GetLine() or 0, error.GetColumn() or 0
    prefix = f"{line}:{column} : "
    if message.startswith(prefix):
        message = message[len(prefix) :]
    return line, column, message


def read_config(path: pathlib.Path) -> ModelConfigProto:
    """Parse a config.pbtxt; ``ModelLoadError("<path>:<line>:<column>: <reason>")`` when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"failed to read text proto from {path}: {exc}") from None
    try:
        return text_format.Parse(text, ModelConfigProto())
    except text_format.ParseError as exc:
        line, column, message = _position(exc)
        raise ModelLoadError(f"{path}:{line}:{column}: {message}") from None


def config_from_json(text: str, name: str) -> ModelConfigProto:
    """A load request's JSON config (overrides config.pbtxt); Triton's "failed to poll" text when malformed."""
    try:
        return json_format.Parse(text, ModelConfigProto())
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"failed to load '{name}', failed to poll from model repository: {exc}") from None


def initial_config(source: ModelSource, override_json: str = "") -> ModelConfigProto:
    """The config as given: the override, else config.pbtxt, else (no file) an empty one to auto-complete."""
    if override_json:
        config = config_from_json(override_json, source.name)
    elif source.config_path.is_file():
        config = read_config(source.config_path)
    else:
        config = ModelConfigProto()
    if config.name and config.name != source.name:
        raise ModelLoadError(
            f"unexpected directory name '{source.name}' for model '{config.name}', directory name must equal model name"
        )
    config.name = source.name
    return config


def resolve_backend(config: ModelConfigProto, version_dir: Optional[pathlib.Path]) -> str:
    """The backend key serving ``config`` (``python``, ``onnxruntime``, ``pytorch`` or ``ensemble``); fills in
    the missing one of ``platform``/``backend``. ModelLoadError with Triton's text for unknown names."""
    name, platform, backend = config.name, config.platform, config.backend
    if platform:
        if platform not in PLATFORM_BACKENDS:
            if platform in _TRITON_ONLY:
                raise ModelLoadError(f"platform '{platform}' of model '{name}' is not supported by pytriton_lite")
            raise ModelLoadError(f"unexpected platform type '{platform}' for {name}")
        expected = PLATFORM_BACKENDS[platform]
        if backend and backend != expected:
            raise ModelLoadError(f"unexpected 'platform' and 'backend' pair, got:{platform}, {backend}")
        config.backend = expected
        return expected or "ensemble"
    if not backend:
        backend = _backend_from_files(config, version_dir)
    if backend not in BACKEND_PLATFORMS:
        if backend in _TRITON_ONLY:
            raise ModelLoadError(f"backend '{backend}' of model '{name}' is not supported by pytriton_lite")
        raise ModelLoadError(
            f"unable to find backend library for backend '{backend}', try specifying runtime on the model "
            "configuration."
        )
    config.backend = backend
    config.platform = BACKEND_PLATFORMS[backend]
    return backend


def _backend_from_files(config: ModelConfigProto, version_dir: Optional[pathlib.Path]) -> str:
    if config.default_model_filename:
        backend = _SUFFIX_BACKENDS.get(pathlib.PurePath(config.default_model_filename).suffix)
        if backend:
            return backend
    if version_dir is not None:
        for filename, backend in _FILE_BACKENDS:
            if (version_dir / filename).exists():
                return backend
    raise ModelLoadError(
        f"unable to determine the backend of model '{config.name}': its config names no 'platform' or "
        "'backend' and its version folder holds no model.py, model.onnx or model.pt"
    )


# --- checks -----------------------------------------------------------------------------------------------


def _check_tensors(config: ModelConfigProto) -> None:
    name = config.name
    for kind, tensors in (("input", config.input), ("output", config.output)):
        seen = set()
        for tensor in tensors:
            if not tensor.name:
                raise ModelLoadError(f"model '{name}' has an {kind} without a name")
            if tensor.name in seen:
                raise ModelLoadError(f"{kind} '{tensor.name}' of model '{name}' is specified more than once")
            seen.add(tensor.name)
            _check_tensor(name, kind, tensor)


def _check_tensor(model: str, kind: str, tensor: Any) -> None:
    label = f"model {kind} '{tensor.name}' of model '{model}'"
    if tensor.data_type == model_config_pb2.TYPE_INVALID:
        raise ModelLoadError(f"{label} must specify 'data_type'")
    type_name = model_config_pb2.DataType.Name(tensor.data_type)
    try:
        from_triton_dtype(type_name)
    except PyTritonModelConfigError:
        raise ModelLoadError(f"{label} has data type {type_name}, which pytriton_lite does not support") from None
    for dims in (tensor.dims, tensor.reshape.shape):
        if any(d < -1 or d == 0 for d in dims):
            raise ModelLoadError(
                f"{label}: dimension must be integer >= 1, or -1 to indicate a variable-size dimension"
            )
    if tensor.HasField("reshape") and -1 not in tensor.dims and -1 not in tensor.reshape.shape:
        if _product(tensor.dims) != _product(tensor.reshape.shape):
            raise ModelLoadError(f"{label} has different size for dims and reshape")


def _product(dims: Iterable[int]) -> int:
    total = 1
    for d in dims:
        total *= int(d)
    return total


def _check_batching(config: ModelConfigProto) -> None:
    name, max_batch_size = config.name, config.max_batch_size
    if max_batch_size < 0:
        raise ModelLoadError(f"max_batch_size of model '{name}' must be >= 0")
    if not config.HasField("dynamic_batching"):
        return
    batching = config.dynamic_batching
    for size in batching.preferred_batch_size:
        if size < 1 or (max_batch_size > 0 and size > max_batch_size):
            raise ModelLoadError(f"dynamic batching preferred size must be <= max batch size for {name}")
    if batching.default_priority_level > batching.priority_levels:
        raise ModelLoadError(f"default priority level must be in range [1, {batching.priority_levels}] for {name}")
    for level in batching.priority_queue_policy:
        if not 1 <= level <= batching.priority_levels:
            raise ModelLoadError(
                f"priority queue policy must have priority level in range [1, {batching.priority_levels}] for {name}"
            )


def _refused_and_ignored(config: ModelConfigProto, backend: str) -> List[str]:
    """Raise for refused fields; the names of the fields that are ignored (for a warning)."""
    present = {field.name for field, _ in config.ListFields()}
    for field_name, why in _REFUSED.items():
        if field_name in present:
            raise ModelLoadError(f"model '{config.name}': {why}")
    ignored = [f for f in _IGNORED if f in present]
    honoured = _HONOURED_OPTIMIZATION.get(backend, frozenset())
    if config.HasField("optimization"):
        fields = {field.name for field, _ in config.optimization.ListFields()}
        ignored += [f"optimization.{f}" for f in _IGNORED_OPTIMIZATION if f in fields and f not in honoured]
    for index, group in enumerate(config.instance_group):
        fields = {field.name for field, _ in group.ListFields()}
        ignored += [f"instance_group[{index}].{f}" for f in _IGNORED_GROUP if f in fields]
    for kind, tensors in (("input", config.input), ("output", config.output)):
        for tensor in tensors:
            fields = {field.name for field, _ in tensor.ListFields()}
            ignored += [f"{kind}['{tensor.name}'].{f}" for f in _IGNORED_TENSOR if f in fields]
    return ignored


def check_config(config: ModelConfigProto, backend: str) -> List[str]:
    """Triton's checks of a config (ModelLoadError); returns the ignored fields, by name."""
    ignored = _refused_and_ignored(config, backend)
    _check_batching(config)
    try:
        check_sequence_batching(config)  # the sequence batcher's own checks (core/sequence_config.py)
    except SequenceConfigError as exc:
        raise ModelLoadError(str(exc)) from None
    if config.HasField("sequence_batching") and backend not in _SEQUENCE_BACKENDS:
        # the pytorch backend does not feed control inputs to the module yet
        raise ModelLoadError(
            f"model '{config.name}': sequence batching is served for python-backend and onnxruntime models only by "
            f"pytriton_lite, not for backend '{backend}'"
        )
    _check_tensors(config)
    if backend == "ensemble" and not config.ensemble_scheduling.step:
        raise ModelLoadError(f"ensemble model '{config.name}' must specify 'ensemble_scheduling' with its steps")
    if backend != "ensemble" and config.HasField("ensemble_scheduling"):
        raise ModelLoadError(f"model '{config.name}': 'ensemble_scheduling' is only for platform 'ensemble'")
    return ignored


# --- defaults ---------------------------------------------------------------------------------------------


def _complete_groups(config: ModelConfigProto, backend: str, gpus: int) -> None:
    if backend == "ensemble":
        return
    if not config.instance_group:
        config.instance_group.add(kind=_KIND_AUTO)
    for index, group in enumerate(config.instance_group):
        if not group.name:
            group.name = f"{config.name}_{index}"
        if group.kind == _KIND_AUTO:
            group.kind = _KIND_GPU if (group.gpus or (gpus > 0 and _runs_on_gpus(backend))) else _KIND_CPU
        if group.count < 1:
            # Triton: 2 CPU instances by default for the backends that profit from it (onnxruntime here)
            group.count = 2 if group.kind == _KIND_CPU and backend == "onnxruntime" else 1
        _check_devices(config.name, group, gpus)


def _runs_on_gpus(backend: str) -> bool:
    """KIND_AUTO picks GPUs only where this backend's installed framework can use them (a CPU onnxruntime
    or torch on a GPU machine gets KIND_CPU instances, not a load failure)."""
    if backend not in GPU_BACKENDS:
        return False
    from pytriton_lite.repository.backends import backend_for

    can_use = getattr(backend_for(backend), "can_use_gpus", None)
    return bool(can_use()) if callable(can_use) else True


def _check_devices(model: str, group: Any, gpus: int) -> None:
    if group.kind == _KIND_GPU:
        if gpus < 1:
            raise ModelLoadError(
                f"instance group {group.name} of model {model} has kind KIND_GPU but no GPUs are available"
            )
        if not group.gpus:
            group.gpus.extend(range(gpus))
        for gpu in group.gpus:
            if not 0 <= gpu < gpus:
                raise ModelLoadError(
                    f"instance group {group.name} of model {model} specifies invalid or unsupported gpu id {gpu}"
                    f" (GPUs available: {', '.join(str(g) for g in range(gpus))})"
                )
    elif group.kind == _KIND_CPU and group.gpus:
        raise ModelLoadError(
            f"instance group {group.name} of model {model} has kind KIND_CPU but specifies one or more GPUs"
        )


def complete_config(config: ModelConfigProto, backend: str, gpus: int, default_filename: str = "") -> None:
    """Fill in Triton's defaults, in place (what ``/v2/models/m/config`` then shows)."""
    policy = config.version_policy
    if not config.HasField("version_policy") or (
        policy.WhichOneof("policy_choice") == "latest" and policy.latest.num_versions < 1
    ):
        policy.latest.num_versions = 1
    if not config.default_model_filename:
        config.default_model_filename = default_filename or DEFAULT_FILENAMES.get(backend, "")
    _complete_groups(config, backend, gpus)
    optimization = config.optimization
    if not optimization.HasField("input_pinned_memory"):
        optimization.input_pinned_memory.enable = True
    if not optimization.HasField("output_pinned_memory"):
        optimization.output_pinned_memory.enable = True
    if config.HasField("dynamic_batching") and config.max_batch_size > 0:
        if not config.dynamic_batching.preferred_batch_size:
            config.dynamic_batching.preferred_batch_size.append(config.max_batch_size)
    complete_sequence_batching(config)
    config.model_transaction_policy.SetInParent()


def ensemble_steps(config: ModelConfigProto) -> Sequence[str]:
    """The models an ensemble's steps call, in step order, each once."""
    names: List[str] = []
    for step in config.ensemble_scheduling.step:
        if step.model_name and step.model_name not in names:
            names.append(step.model_name)
    return names


def output_labels(config: ModelConfigProto, directory: pathlib.Path) -> Dict[str, Tuple[str, ...]]:
    """Each output's ``label_filename`` (a file in the model's folder, one label per line) read, by output name.

    A missing file fails the load, as in Triton. The path must stay inside the model's folder: labels come
    back to clients in classification results, so a config must not make them read other files.
    """
    labels: Dict[str, Tuple[str, ...]] = {}
    root = directory.resolve()
    for output in config.output:
        if not output.label_filename:
            continue
        where = f"label file '{output.label_filename}' of output '{output.name}' of model '{config.name}'"
        path = (root / output.label_filename).resolve()
        if root not in path.parents:
            raise ModelLoadError(f"{where} must be a file in the model's folder")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelLoadError(f"unable to read {where}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ModelLoadError(f"unable to read {where}: it is not UTF-8 text") from None
        labels[output.name] = tuple(text.splitlines())
    return labels


def warn_ignored(name: str, ignored: Sequence[str]) -> None:
    for field_name in ignored:
        LOGGER.warning("model '%s': config field '%s' is not supported by pytriton_lite, ignored", name, field_name)


__all__ = [
    "BACKEND_PLATFORMS",
    "CONFIG_FILE",
    "DEFAULT_FILENAMES",
    "PLATFORM_BACKENDS",
    "check_config",
    "complete_config",
    "config_from_json",
    "ensemble_steps",
    "initial_config",
    "output_labels",
    "read_config",
    "resolve_backend",
    "warn_ignored",
]
