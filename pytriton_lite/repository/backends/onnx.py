"""The onnxruntime backend (``platform: "onnxruntime_onnx"`` / ``backend: "onnxruntime"``), on the pip
``onnxruntime`` package (``pip install "pytriton-lite[onnx]"``; ``onnxruntime-gpu`` for KIND_GPU).

What it does, as Triton's onnxruntime backend:

- **Model file**: ``<version>/model.onnx`` (or ``default_model_filename``); a folder of that name holding
  ``model.onnx`` and its external data files works too.
- **Auto-complete** (``_onnx_config``): inputs/outputs from the graph when config.pbtxt leaves them out,
  ``max_batch_size`` 4 (``OnnxBackend.default_max_batch_size``, Triton's ``default-max-batch-size``) and
  ``dynamic_batching {}`` when every input and output has a dynamic first dimension.
- **Load**: the config is checked against the graph (input count, names, data types, dims). Sessions: one
  ``InferenceSession`` per instance, as Triton creates them; with the parameter
  ``share_session_between_instances: "true"`` (Triton's name) the instances on one device share a single
  session instead, which holds the weights once. Sharing is safe because ``InferenceSession.run`` may be
  called from several threads at once (onnxruntime documents it); the instances then also share that
  session's thread pools.
- **SessionOptions** from ``parameters``: ``intra_op_thread_count``, ``inter_op_thread_count``,
  ``execution_mode`` (0 sequential, 1 parallel), ``enable_mem_arena``, ``enable_mem_pattern``,
  ``session.use_device_allocator_for_initializers``, ``memory.enable_memory_arena_shrinkage`` (a run
  option); ``optimization { graph { level } }``: -1 basic, 1 extended, 2 none, anything else all.
- **KIND_GPU**: the CUDA execution provider on the instance's GPU (``gpus``), with CUDA provider options from
  the parameters ``cudnn_conv_algo_search``, ``gpu_mem_limit``, ``arena_extend_strategy``,
  ``do_copy_in_default_stream`` and from ``optimization { execution_accelerators { gpu_execution_accelerator
  [{ name: "cuda" parameters {...} }] } }``. Without onnxruntime-gpu (no CUDA provider) the model fails to load
  with a reason naming the GPU. Other accelerators (TensorRT, OpenVINO) are ignored with a warning.
- **Inference**: inputs fed by name; requests batched along dim 0 (``_onnx_torch_common.infer_batched``);
  only the requested outputs are computed. TYPE_STRING tensors travel as UTF-8 ``bytes`` and are given to
  onnxruntime as ``str``. A run that onnxruntime rejects as INVALID_ARGUMENT (a wrong dimension, say) is
  answered 400, other runtime errors 500.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from pytriton_lite.exceptions import InvalidArgumentError, ModelExecutionError
from pytriton_lite.repository.backend import (
    BackendUnavailableError,
    InstancePlacement,
    LoadContext,
    LoadedModel,
    ModelLoadError,
    ModelSource,
    VersionSource,
)
from pytriton_lite.repository.backends import _onnx_config
from pytriton_lite.repository.backends._onnx_config import OnnxTensor
from pytriton_lite.repository.backends._onnx_torch_common import (
    LOGGER,
    bool_parameter,
    group_name,
    infer_batched,
    int_parameter,
    parameter,
)
from pytriton_lite.types import Request

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

INSTALL_HINT = 'pip install "pytriton-lite[onnx]"'
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
# Triton's deprecated CUDA parameters, passed to the CUDA execution provider as they are
_CUDA_PARAMETERS = ("gpu_mem_limit", "do_copy_in_default_stream")
_CUDNN_SEARCH = {"0": "EXHAUSTIVE", "1": "HEURISTIC", "2": "DEFAULT"}
_ARENA_STRATEGY = {"0": "kNextPowerOfTwo", "1": "kSameAsRequested"}


def import_onnxruntime(model: str = "") -> Any:
    """The onnxruntime module, or ``BackendUnavailableError`` naming the extra to install."""
    try:
        import onnxruntime
    except ImportError as e:
        which = f" for model '{model}'" if model else ""
        raise BackendUnavailableError(
            f"the onnxruntime backend{which} needs the onnxruntime package, which is not installed ({e}): "
            f"{INSTALL_HINT} (or onnxruntime-gpu for KIND_GPU)"
        ) from None
    return onnxruntime


def model_path(source_dir: pathlib.Path, filename: str, model: str) -> pathlib.Path:
    """``<version>/<filename>``, or ``<version>/<filename>/model.onnx`` when that is a folder."""
    path = source_dir / filename
    if path.is_dir():
        path = path / "model.onnx"
    if not path.is_file():
        raise ModelLoadError(f"unable to find '{path}' for model '{model}'")
    return path


class OnnxBackend:
    """``BACKEND`` of this module (see ``pytriton_lite.repository.backend.Backend``)."""

    names = ("onnxruntime_onnx", "onnxruntime")
    default_model_filename = "model.onnx"

    def __init__(self) -> None:
        #: Triton's ``--backend-config=onnxruntime,default-max-batch-size=N``
        self.default_max_batch_size = 4

    def can_use_gpus(self) -> bool:
        """Whether KIND_GPU can work here: the installed onnxruntime has the CUDA execution provider (for the
        loader's KIND_AUTO: a CPU onnxruntime on a GPU machine should get KIND_CPU instances)."""
        try:
            ort = import_onnxruntime()
        except BackendUnavailableError:
            return False
        return _CUDA in ort.get_available_providers()

    def auto_complete(self, model: ModelSource, config: ModelConfigProto, version_dir: pathlib.Path) -> None:
        if config.input and config.output:
            LOGGER.info(
                "skipping model configuration auto-complete for '%s': inputs and outputs already specified",
                model.name,
            )
            return
        ort = import_onnxruntime(model.name)
        path = model_path(version_dir, config.default_model_filename or self.default_model_filename, model.name)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # only the signature
        session = _create_session(ort, path, options, [_CPU], model.name)
        inputs = _onnx_config.tensors(session.get_inputs())
        outputs = _onnx_config.tensors(session.get_outputs())
        _onnx_config.auto_complete(model.name, config, inputs, outputs, self.default_max_batch_size)

    def load(self, source: VersionSource, placements: Sequence[InstancePlacement], context: LoadContext) -> LoadedModel:
        ort = import_onnxruntime(source.name)
        config = source.config
        path = model_path(source.directory, config.default_model_filename or self.default_model_filename, source.name)
        options = session_options(ort, config)
        run_options = _run_options(ort, config)
        share = bool_parameter(config, "share_session_between_instances", False)
        sessions: Dict[Tuple[Any, ...], Any] = {}
        funcs = []
        for placement in placements:
            providers = providers_for(ort, config, placement)
            key: Tuple[Any, ...] = (placement.kind == "KIND_GPU", placement.device_id) if share else (placement.index,)
            session = sessions.get(key)
            if session is None:
                session = _create_session(ort, path, options, providers, source.name)
                _check_providers(session, providers, config, placement)
                if not sessions:
                    _validate(source.name, session, config)
                sessions[key] = session
            funcs.append(OnnxInstance(session, config, run_options, source.name).infer)
        LOGGER.info(
            "onnxruntime model '%s' version %d: %d instance(s) on %d session(s), providers %s",
            source.name,
            source.version,
            len(funcs),
            len(sessions),
            sorted({p for s in sessions.values() for p in s.get_providers()}),
        )
        return LoadedModel(infer_funcs=funcs, finalize=sessions.clear)


def session_options(ort: Any, config: ModelConfigProto) -> Any:
    """``SessionOptions`` from the config's parameters and ``optimization.graph.level``, as Triton reads them."""
    options = ort.SessionOptions()
    level = config.optimization.graph.level
    levels = ort.GraphOptimizationLevel
    options.graph_optimization_level = {
        -1: levels.ORT_ENABLE_BASIC,
        1: levels.ORT_ENABLE_EXTENDED,
        2: levels.ORT_DISABLE_ALL,
    }.get(level, levels.ORT_ENABLE_ALL)
    mode = int_parameter(config, "execution_mode", 0)
    if mode not in (0, 1):
        raise ModelLoadError(
            "Invalid configuration value provided. Expected values for execution_mode are 0 or 1 but got "
            f"{mode} (model '{config.name}')."
        )
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL if mode == 1 else ort.ExecutionMode.ORT_SEQUENTIAL
    for key, attribute in (
        ("intra_op_thread_count", "intra_op_num_threads"),
        ("inter_op_thread_count", "inter_op_num_threads"),
    ):
        count = int_parameter(config, key, 0)
        if count < 0:
            raise ModelLoadError(f"parameter '{key}' of model '{config.name}' must be >= 0, got {count}")
        if count > 0:
            setattr(options, attribute, count)
    if parameter(config, "enable_mem_arena") is not None:
        options.enable_cpu_mem_arena = bool_parameter(config, "enable_mem_arena", True)
    if parameter(config, "enable_mem_pattern") is not None:
        options.enable_mem_pattern = bool_parameter(config, "enable_mem_pattern", True)
    key = "session.use_device_allocator_for_initializers"
    value = parameter(config, key)
    if value is not None:
        options.add_session_config_entry(key, value)
    return options


def _run_options(ort: Any, config: ModelConfigProto) -> Optional[Any]:
    key = "memory.enable_memory_arena_shrinkage"
    value = parameter(config, key)
    if value is None:
        return None
    options = ort.RunOptions()
    options.add_run_config_entry(key, value)
    return options


def providers_for(ort: Any, config: ModelConfigProto, placement: InstancePlacement) -> List[Any]:
    """The execution providers of one instance: CPU, or CUDA on the instance's GPU (then CPU) for KIND_GPU."""
    _warn_ignored_accelerators(config)
    if placement.kind != "KIND_GPU":
        return [_CPU]
    if _CUDA not in ort.get_available_providers():
        raise ModelLoadError(
            f"instance group {group_name(config, placement)} of model {config.name} has kind KIND_GPU but "
            f"onnxruntime has no CUDA execution provider for GPU {placement.device_id}: the installed "
            f"onnxruntime is a CPU build; install onnxruntime-gpu, or use KIND_CPU"
        )
    return [(_CUDA, cuda_options(config, placement.device_id)), _CPU]


def cuda_options(config: ModelConfigProto, device_id: int) -> Dict[str, str]:
    """CUDA provider options: the device, Triton's CUDA parameters, and the ``cuda`` accelerator's parameters."""
    options = {"device_id": str(device_id)}
    for key in _CUDA_PARAMETERS:
        value = parameter(config, key)
        if value is not None:
            options[key] = value
    search = parameter(config, "cudnn_conv_algo_search")
    if search is not None:
        options["cudnn_conv_algo_search"] = _CUDNN_SEARCH.get(search, search)
    strategy = parameter(config, "arena_extend_strategy")
    if strategy is not None:
        options["arena_extend_strategy"] = _ARENA_STRATEGY.get(strategy, strategy)
    for accelerator in config.optimization.execution_accelerators.gpu_execution_accelerator:
        if accelerator.name == "cuda":
            options.update(dict(accelerator.parameters))
    return options


def _warn_ignored_accelerators(config: ModelConfigProto) -> None:
    accelerators = config.optimization.execution_accelerators
    for accelerator in list(accelerators.gpu_execution_accelerator) + list(accelerators.cpu_execution_accelerator):
        if accelerator.name != "cuda":
            LOGGER.warning(
                "model '%s': execution accelerator '%s' is not supported by pytriton_lite's onnxruntime backend "
                "and is ignored",
                config.name,
                accelerator.name,
            )


def _create_session(ort: Any, path: pathlib.Path, options: Any, providers: List[Any], model: str) -> Any:
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as e:  # noqa: BLE001 - every onnxruntime failure is a load failure with its message
        raise ModelLoadError(f"failed to load model '{model}' from '{path}': {type(e).__name__}: {e}") from None


def _check_providers(
    session: Any, providers: List[Any], config: ModelConfigProto, placement: InstancePlacement
) -> None:
    """onnxruntime falls back to CPU when the CUDA provider cannot start: refuse that for KIND_GPU."""
    if placement.kind == "KIND_GPU" and _CUDA not in session.get_providers():
        raise ModelLoadError(
            f"instance group {group_name(config, placement)} of model {config.name} has kind KIND_GPU but "
            f"onnxruntime could not start its CUDA execution provider on GPU {placement.device_id} (CUDA or "
            "cuDNN libraries missing, or no such GPU)"
        )


def _validate(model: str, session: Any, config: ModelConfigProto) -> None:
    _onnx_config.validate(
        model,
        config,
        _onnx_config.tensors(session.get_inputs()),
        _onnx_config.tensors(session.get_outputs()),
        _onnx_config.tensors(session.get_overridable_initializers()),
    )


class OnnxInstance:
    """One model instance: runs its session on the instance's thread."""

    def __init__(self, session: Any, config: ModelConfigProto, run_options: Optional[Any], model: str) -> None:
        self.session = session
        self.model = model
        self.max_batch_size = config.max_batch_size
        self.run_options = run_options
        self.output_names = [o.name for o in config.output]
        graph_inputs = _onnx_config.tensors(session.get_inputs())
        graph_inputs.update(_onnx_config.tensors(session.get_overridable_initializers()))
        self.string_inputs = {name for name, t in graph_inputs.items() if t.is_string}
        self.scalar_inputs = {name for name, t in graph_inputs.items() if not t.dims}
        graph_outputs: Dict[str, OnnxTensor] = _onnx_config.tensors(session.get_outputs())
        self.string_outputs = {name for name, t in graph_outputs.items() if t.is_string}
        self.scalar_outputs = {o.name: tuple(o.dims) for o in config.output if not graph_outputs[o.name].dims}
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

        self._invalid_argument = ort_errors.InvalidArgument

    def infer(self, requests: List[Request]) -> List[Dict[str, np.ndarray]]:
        return infer_batched(requests, self.max_batch_size, self.run, self.model)

    def run(self, feeds: Dict[str, np.ndarray], wanted: Optional[Sequence[str]]) -> Dict[str, np.ndarray]:
        """One session run over (possibly concatenated) inputs; only the wanted outputs are computed."""
        names = self.output_names if wanted is None else [n for n in self.output_names if n in wanted]
        if not names:
            return {}
        for name in self.string_inputs.intersection(feeds):
            feeds[name] = _to_str(feeds[name], name, self.model)
        for name in self.scalar_inputs.intersection(feeds):
            if feeds[name].size == 1:
                feeds[name] = feeds[name].reshape(())
        try:
            values = self.session.run(names, feeds, self.run_options)
        except self._invalid_argument as e:
            raise InvalidArgumentError(f"onnx runtime error: {e}") from None
        except Exception as e:  # noqa: BLE001 - the model's failure, answered 500 with onnxruntime's message
            raise ModelExecutionError(f"onnx runtime error: {type(e).__name__}: {e}") from None
        outputs: Dict[str, np.ndarray] = {}
        for name, value in zip(names, values):
            if name in self.string_outputs:
                value = _to_bytes(value)
            if name in self.scalar_outputs:
                value = value.reshape(self.scalar_outputs[name])
            outputs[name] = value
        return outputs


def _to_str(array: np.ndarray, name: str, model: str) -> np.ndarray:
    if array.dtype.kind == "U":
        return array.astype(object)
    out = np.empty(array.shape, dtype=object)
    flat = out.reshape(-1)
    try:
        for i, item in enumerate(array.reshape(-1)):
            flat[i] = item.decode("utf-8") if isinstance(item, (bytes, np.bytes_)) else str(item)
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(f"input '{name}' of model '{model}' holds bytes that are not UTF-8: {e}") from None
    return out


def _to_bytes(array: np.ndarray) -> np.ndarray:
    out = np.empty(array.shape, dtype=object)
    flat = out.reshape(-1)
    for i, item in enumerate(array.reshape(-1)):
        flat[i] = item.encode("utf-8") if isinstance(item, str) else item
    return out


BACKEND = OnnxBackend()

__all__ = [
    "BACKEND",
    "INSTALL_HINT",
    "OnnxBackend",
    "OnnxInstance",
    "cuda_options",
    "import_onnxruntime",
    "session_options",
]
