"""The pytorch backend for TorchScript models (``platform: "pytorch_libtorch"`` / ``backend: "pytorch"``), on the
pip ``torch`` package (``pip install "pytriton-lite[torch]"``).

What it does, as Triton's pytorch (libtorch) backend:

- **Model file**: ``<version>/model.pt`` (or ``default_model_filename``), loaded with ``torch.jit.load`` once per
  instance, onto the CPU, or onto the instance's GPU for KIND_GPU (``map_location``); KIND_MODEL keeps the
  devices saved in the model and feeds inputs from the CPU. With ``ENABLE_WEIGHT_SHARING: "true"`` the
  instances on one device share one loaded module.
- **No auto-complete** (Triton's libtorch backend has none): config.pbtxt must list the inputs and outputs.
- **Naming rules** (``_torch_signature``): inputs by ``forward()``'s argument names, ``INPUT__<i>`` indices, or
  config order, or a single ``Dict[str, Tensor]`` argument keyed by config names; outputs by ``OUTPUT__<i>``
  (an element of the returned tuple) or config order; a returned dict also answers by key.
- **Inference**: ``forward`` under ``torch.inference_mode()`` (``INFERENCE_MODE: "false"``: ``torch.no_grad()``),
  with ``torch.jit.optimized_execution(False)`` when ``DISABLE_OPTIMIZED_EXECUTION`` is true; requests batched
  along dim 0; TYPE_STRING inputs are given to the model as ``List[str]`` and ``List[str]`` outputs come back as
  UTF-8 bytes. On a GPU each instance has its own CUDA stream; ``ENABLE_CACHE_CLEANING`` empties the CUDA cache
  after each run.
- **Process-wide parameters**: ``INTRA_OP_THREAD_COUNT`` (``torch.set_num_threads``), ``INTER_OP_THREAD_COUNT``
  (``torch.set_num_interop_threads``, which torch takes only once per process: the first value wins, as in
  Triton), ``DISABLE_CUDNN``, ``ENABLE_JIT_EXECUTOR`` and ``ENABLE_JIT_PROFILING`` set torch's global switches
  when a model names them; they affect every torch model of the process, as they do in tritonserver's one
  backend process.
- **KIND_GPU** without a usable GPU fails the load with Triton's reason naming the group and the GPU.
"""

from __future__ import annotations

import contextlib
import pathlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple

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
from pytriton_lite.repository.backends._onnx_torch_common import (
    LOGGER,
    bool_parameter,
    data_type_name,
    group_name,
    infer_batched,
    int_parameter,
    parameter,
    require_inputs_outputs,
)
from pytriton_lite.repository.backends._torch_signature import (
    InputBinding,
    bind_inputs,
    bind_outputs,
    check_data_types,
    forward_arguments,
    pick_outputs,
)
from pytriton_lite.types import Request

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto

INSTALL_HINT = 'pip install "pytriton-lite[torch]"'


def import_torch(model: str = "") -> Any:
    """The torch module, or ``BackendUnavailableError`` naming the extra to install."""
    try:
        import torch
    except ImportError as e:
        which = f" for model '{model}'" if model else ""
        raise BackendUnavailableError(
            f"the pytorch backend{which} needs the torch package, which is not installed ({e}): {INSTALL_HINT}"
        ) from None
    return torch


@dataclass(frozen=True)
class TorchOptions:
    """The pytorch backend's ``parameters`` (Triton's names)."""

    inference_mode: bool = True
    optimized_execution: bool = True
    weight_sharing: bool = False
    cache_cleaning: bool = False

    @classmethod
    def from_config(cls, config: ModelConfigProto) -> TorchOptions:
        return cls(
            inference_mode=bool_parameter(config, "INFERENCE_MODE", True),
            optimized_execution=not bool_parameter(config, "DISABLE_OPTIMIZED_EXECUTION", False),
            weight_sharing=bool_parameter(config, "ENABLE_WEIGHT_SHARING", False),
            cache_cleaning=bool_parameter(config, "ENABLE_CACHE_CLEANING", False),
        )


def apply_process_options(torch: Any, config: ModelConfigProto, model: str) -> None:
    """The parameters that set torch's process-wide state, applied when the config names them."""
    intra = int_parameter(config, "INTRA_OP_THREAD_COUNT", 0)
    if intra > 0:
        torch.set_num_threads(intra)
        LOGGER.info("model '%s': torch intra-op threads set to %d (process-wide)", model, intra)
    inter = int_parameter(config, "INTER_OP_THREAD_COUNT", 0)
    if inter > 0 and torch.get_num_interop_threads() != inter:
        try:
            torch.set_num_interop_threads(inter)
        except RuntimeError as e:  # torch takes it once, before any inter-op work: the first value wins
            LOGGER.warning("model '%s': INTER_OP_THREAD_COUNT %d not applied: %s", model, inter, e)
    if parameter(config, "DISABLE_CUDNN") is not None:
        torch.backends.cudnn.enabled = not bool_parameter(config, "DISABLE_CUDNN", False)
    if parameter(config, "ENABLE_JIT_EXECUTOR") is not None:
        torch._C._jit_set_profiling_executor(bool_parameter(config, "ENABLE_JIT_EXECUTOR", True))
    if parameter(config, "ENABLE_JIT_PROFILING") is not None:
        torch._C._jit_set_profiling_mode(bool_parameter(config, "ENABLE_JIT_PROFILING", True))
    if parameter(config, "ENABLE_NVFUSER") is not None:
        LOGGER.warning("model '%s': parameter ENABLE_NVFUSER is not supported by this torch and is ignored", model)


def device_for(torch: Any, model: str, config: ModelConfigProto, placement: InstancePlacement) -> Optional[Any]:
    """The instance's device: CPU, ``cuda:<gpu>`` for KIND_GPU, None for KIND_MODEL (the model's own)."""
    if placement.kind == "KIND_MODEL":
        return None
    if placement.kind != "KIND_GPU":
        return torch.device("cpu")
    group = group_name(config, placement)
    if not torch.cuda.is_available():
        raise ModelLoadError(
            f"instance group {group} of model {model} has kind KIND_GPU but no GPUs are available "
            f"(GPU {placement.device_id}; torch {torch.__version__} sees no CUDA device)"
        )
    if placement.device_id >= torch.cuda.device_count():
        raise ModelLoadError(
            f"instance group {group} of model {model} specifies invalid or unsupported gpu id "
            f"{placement.device_id} (torch sees {torch.cuda.device_count()} GPUs)"
        )
    return torch.device("cuda", placement.device_id)


def load_module(torch: Any, path: pathlib.Path, device: Optional[Any], model: str) -> Any:
    """``torch.jit.load`` onto ``device`` (None: where the model was saved), in eval mode."""
    try:
        with warnings.catch_warnings():
            # torch 2.x deprecates TorchScript; serving a TorchScript model is what this backend is for
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as e:  # noqa: BLE001 - every torch failure is a load failure with its message
        raise ModelLoadError(f"failed to load model '{model}' from '{path}': {type(e).__name__}: {e}") from None
    module.eval()
    return module


class TorchBackend:
    """``BACKEND`` of this module (see ``pytriton_lite.repository.backend.Backend``)."""

    names = ("pytorch_libtorch", "pytorch")
    default_model_filename = "model.pt"

    def can_use_gpus(self) -> bool:
        """Whether KIND_GPU can work here: torch is installed and sees a CUDA device (for the loader's
        KIND_AUTO: a CPU torch on a GPU machine should get KIND_CPU instances)."""
        try:
            torch = import_torch()
        except BackendUnavailableError:
            return False
        return bool(torch.cuda.is_available())

    def auto_complete(self, model: ModelSource, config: ModelConfigProto, version_dir: pathlib.Path) -> None:
        LOGGER.info(
            "skipping model configuration auto-complete for '%s': not supported for pytorch backend", model.name
        )
        require_inputs_outputs(model.name, config, "pytorch")

    def load(self, source: VersionSource, placements: Sequence[InstancePlacement], context: LoadContext) -> LoadedModel:
        config = source.config
        require_inputs_outputs(source.name, config, "pytorch")
        check_data_types(source.name, config, config.max_batch_size)
        torch = import_torch(source.name)
        path = source.model_file(self.default_model_filename)
        if not path.is_file():
            raise ModelLoadError(f"unable to find '{path}' for model '{source.name}'")
        options = TorchOptions.from_config(config)
        apply_process_options(torch, config, source.name)
        outputs = bind_outputs(source.name, [o.name for o in config.output])
        modules: Dict[Tuple[Any, ...], Any] = {}
        binding: Optional[InputBinding] = None
        funcs = []
        for placement in placements:
            device = device_for(torch, source.name, config, placement)
            key: Tuple[Any, ...] = (str(device),) if options.weight_sharing else (placement.index,)
            module = modules.get(key)
            if module is None:
                module = modules[key] = load_module(torch, path, device, source.name)
            if binding is None:
                binding = bind_inputs(source.name, [i.name for i in config.input], forward_arguments(module))
                LOGGER.info("model '%s': inputs bound by %s", source.name, binding.convention)
            instance = TorchInstance(torch, module, device, config, binding, outputs, options, source.name)
            funcs.append(instance.infer)
        return LoadedModel(infer_funcs=funcs, finalize=modules.clear)


class TorchInstance:
    """One model instance: converts, runs ``forward`` on its device and stream, converts back."""

    def __init__(
        self,
        torch: Any,
        module: Any,
        device: Optional[Any],
        config: ModelConfigProto,
        binding: InputBinding,
        outputs: Dict[str, int],
        options: TorchOptions,
        model: str,
    ) -> None:
        self.torch = torch
        self.module = module
        self.model = model
        self.device = device
        self.binding = binding
        self.outputs = outputs
        self.options = options
        self.max_batch_size = config.max_batch_size
        self.string_inputs = {i.name for i in config.input if data_type_name(i.data_type) == "TYPE_STRING"}
        on_gpu = device is not None and device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if on_gpu else None

    def infer(self, requests: List[Request]) -> List[Dict[str, np.ndarray]]:
        return infer_batched(requests, self.max_batch_size, self.run, self.model)

    def run(self, feeds: Dict[str, np.ndarray], wanted: Optional[Sequence[str]]) -> Dict[str, np.ndarray]:
        """One ``forward`` over (possibly concatenated) inputs; returns the wanted outputs as numpy arrays."""
        names = [(n, i) for n, i in self.outputs.items() if wanted is None or n in wanted]
        with self._context():
            arguments = {
                self.binding.arguments[n]: self._to_torch(n, a) for n, a in feeds.items() if n in self.binding.arguments
            }
            try:
                if self.binding.dict_argument is not None:
                    result = self.module(**{self.binding.dict_argument: arguments})
                else:
                    result = self.module(**arguments)
            except Exception as e:  # noqa: BLE001 - the model's failure, answered 500 with torch's message
                raise ModelExecutionError(f"PyTorch execute failure: {_summary(e)}") from None
            picked = pick_outputs(self.model, result, names)
            outputs = {name: self._to_numpy(name, value) for name, value in picked.items()}
        if self.options.cache_cleaning and self.stream is not None:
            self.torch.cuda.empty_cache()
        return outputs

    @contextlib.contextmanager
    def _context(self) -> Iterator[None]:
        torch = self.torch
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.inference_mode() if self.options.inference_mode else torch.no_grad())
            if not self.options.optimized_execution:
                stack.enter_context(torch.jit.optimized_execution(False))
            if self.stream is not None:
                stack.enter_context(torch.cuda.stream(self.stream))
            yield

    def _to_torch(self, name: str, array: np.ndarray) -> Any:
        if name in self.string_inputs:
            return _strings(array, name, self.model)
        if array.dtype.kind in "OSU":
            raise InvalidArgumentError(f"input '{name}' of model '{self.model}' holds strings but is not TYPE_STRING")
        if not array.flags.writeable or not array.flags.c_contiguous:
            array = np.array(array, order="C")  # torch takes no read-only (wire) buffers
        tensor = self.torch.from_numpy(array)
        if self.device is not None and self.device.type != "cpu":
            tensor = tensor.to(self.device)
        return tensor

    def _to_numpy(self, name: str, value: Any) -> np.ndarray:
        torch = self.torch
        if isinstance(value, torch.Tensor):
            value = value.detach()
            if value.device.type != "cpu":
                value = value.cpu()
            if value.dtype == torch.bfloat16:
                value = value.float()
            array: np.ndarray = value.numpy()
            return array
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return np.array([v.encode("utf-8") for v in value], dtype=object)
        raise ModelExecutionError(
            f"output '{name}' of model '{self.model}' is a {type(value).__name__}: forward() must return tensors "
            "(or lists of strings for TYPE_STRING outputs)"
        )


def _strings(array: np.ndarray, name: str, model: str) -> List[str]:
    try:
        return [v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else str(v) for v in array.reshape(-1)]
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(f"input '{name}' of model '{model}' holds bytes that are not UTF-8: {e}") from None


def _summary(error: BaseException) -> str:
    """TorchScript errors carry the interpreter's traceback before the error itself: keep the error."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        return lines[-1].strip()  # "RuntimeError: The size of tensor a ..."
    return f"{type(error).__name__}: {error}"


BACKEND = TorchBackend()

__all__ = ["BACKEND", "INSTALL_HINT", "TorchBackend", "TorchInstance", "TorchOptions", "import_torch"]
