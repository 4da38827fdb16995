"""The contract between the repository loader and the backends (python, onnxruntime, pytorch, ensemble).

The loader scans a model folder, parses and completes its config.pbtxt, and for each version to serve hands a
backend a ``VersionSource`` (where the files are, the completed config), the instance placements the
``instance_group`` asks for, and a ``LoadContext`` (calls into the same server, for BLS and ensembles). The
backend answers with a ``LoadedModel``: one infer callable per placement, with exactly the contract of the
callables given to ``Triton.bind``:

- called on that instance's own worker thread with ``List[pytriton_lite.types.Request]`` (one per client
  request; ``request.data`` holds the inputs as the client sent them, batch dim included when
  ``max_batch_size > 0``, after ``reshape`` has been applied by the loader; ``request.parameters`` and
  ``request.requested_output_names`` as sent);
- returns one ``Dict[str, np.ndarray]`` of outputs per request, in order (the core filters to the requested
  outputs and casts to the declared dtypes); for a decoupled model a generator (or async generator) that
  yields such lists, one per response (decoupled batches hold exactly one request);
- may be ``async def`` (it then runs on the instance's private event loop);
- raises ``pytriton_lite.exceptions.InferenceError`` subclasses to answer with a given status (for example
  ``InvalidArgumentError`` = 400 / INVALID_ARGUMENT); any other exception fails the batch with 500 / INTERNAL
  and its message.

A backend module exposes a module-level ``BACKEND`` object satisfying ``Backend`` and is registered in
``pytriton_lite.repository.backends.BACKENDS`` by its Triton names (``platform`` or ``backend`` of the config).
A missing optional framework raises ``BackendUnavailableError`` naming the extra to install.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, List, Optional, Protocol, Sequence

from pytriton_lite.exceptions import PyTritonModelConfigError
from pytriton_lite.types import InferenceRequest, InferenceResponse

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto


class ModelLoadError(PyTritonModelConfigError):
    """A model (version) cannot be loaded; the message is the reason shown in the repository index."""


class BackendUnavailableError(ModelLoadError):
    """The backend's framework is not installed (the message names the pip extra)."""


@dataclass(frozen=True)
class ModelSource:
    """A model folder of a repository: ``<repository>/<name>/`` with its config file (which may not exist)."""

    name: str
    repository: pathlib.Path
    directory: pathlib.Path

    @property
    def config_path(self) -> pathlib.Path:
        return self.directory / "config.pbtxt"


@dataclass(frozen=True)
class VersionSource:
    """One version of a model, as loaded: its folder and the completed (auto-completed, defaulted) config."""

    model: ModelSource
    version: int
    config: ModelConfigProto

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def directory(self) -> pathlib.Path:
        """``<repository>/<name>/<version>/``."""
        return self.model.directory / str(self.version)

    def model_file(self, default: str) -> pathlib.Path:
        """The version's model file: ``default_model_filename`` of the config, else the backend's ``default``."""
        return self.directory / (self.config.default_model_filename or default)


@dataclass(frozen=True)
class InstancePlacement:
    """One model instance the ``instance_group`` asks for (Triton's ``<group name>_<index>`` naming)."""

    name: str  # e.g. "mymodel_0_0" (Triton: <group name>_<index within the group>)
    kind: str  # "KIND_CPU", "KIND_GPU" or "KIND_MODEL"
    device_id: int  # the GPU for KIND_GPU, 0 otherwise
    index: int  # 0..n-1 over all instances of the model


class LoadContext(Protocol):
    """Calls a backend may make into the server that loads it (BLS, ensemble steps).

    ``infer``/``infer_stream`` are blocking and must be called from an instance thread (never the serving
    loop); ``infer_async``/``infer_stream_async`` are for code running on an instance's own event loop. They
    go through the data plane, so the called model batches with the rest of its traffic.
    """

    def infer(self, request: InferenceRequest, timeout_s: Optional[float] = None) -> InferenceResponse: ...

    def infer_stream(self, request: InferenceRequest) -> List[InferenceResponse]: ...

    async def infer_async(self, request: InferenceRequest) -> InferenceResponse: ...

    def infer_stream_async(self, request: InferenceRequest) -> AsyncIterator[InferenceResponse]: ...

    def model_config(self, name: str, version: str = "") -> ModelConfigProto:
        """The served config of another model (raises ``ModelNotFoundError``)."""
        ...


@dataclass
class LoadedModel:
    """What a backend made of one version: an infer callable per placement, and what to call on unload."""

    infer_funcs: List[Callable[..., Any]]
    finalize: Callable[[], None] = field(default=lambda: None)
    #: one per infer func (or none): run on that instance's own thread before it serves (a returned awaitable
    #: is awaited on the instance's event loop); raising fails the load. The python backend's initialize().
    initializers: List[Callable[[], Any]] = field(default_factory=list)


class Backend(Protocol):
    """One backend (python, onnxruntime, pytorch, ensemble)."""

    #: the Triton ``platform``/``backend`` names this backend serves, e.g. ("onnxruntime_onnx", "onnxruntime")
    names: Sequence[str]
    #: the model file name when the config has no ``default_model_filename`` ("" for ensembles)
    default_model_filename: str

    def auto_complete(self, model: ModelSource, config: ModelConfigProto, version_dir: pathlib.Path) -> None:
        """Fill in what config.pbtxt left out (inputs/outputs from an ONNX graph, a python model's
        ``auto_complete_config``), in place, before the loader validates and defaults the config."""
        ...

    def load(self, source: VersionSource, placements: Sequence[InstancePlacement], context: LoadContext) -> LoadedModel:
        """Load the version; one infer callable per placement. Raise ``ModelLoadError`` with the reason."""
        ...


__all__ = [
    "Backend",
    "BackendUnavailableError",
    "InstancePlacement",
    "LoadContext",
    "LoadedModel",
    "ModelLoadError",
    "ModelSource",
    "VersionSource",
]
