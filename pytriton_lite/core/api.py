"""The seam between the core and every front end: the ``DataPlane`` protocol (MLServer's pattern).

Front ends (HTTP, gRPC, metrics, and later worker processes) hold a ``DataPlane`` and nothing else from the
core. Every call returns plain frozen data from ``pytriton_lite.types`` (``ModelInfo``, ``StatsSnapshot``,
``InferenceResponse``, and ``IndexEntry`` below) or raises an ``InferenceError`` that carries its protocol
status. Methods are called on the serving loop.

Model control (repository load/unload) is delegated to a ``ModelControl`` set on the data plane by the layer
that serves a model repository (``pytriton_lite.repository``); the core never imports that layer. Without one,
load and unload are refused with Triton's 503 / UNAVAILABLE text (``MODEL_CONTROL_DISABLED``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncGenerator, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

from pytriton_lite.core.shm import SystemSharedMemory
from pytriton_lite.types import CustomMetricFamily, InferenceRequest, InferenceResponse, ModelInfo, StatsSnapshot

IsGone = Callable[[], bool]

#: Triton's answer to load/unload when model control is not explicit (NONE and POLL modes, bound models only)
MODEL_CONTROL_DISABLED = "explicit model load / unload is not allowed if polling is enabled"


@dataclass(frozen=True)
class IndexEntry:
    """One row of the repository index. Empty strings are absent fields: a repository model never loaded has
    only its name (Triton's "no state"); a model that failed before any version was known has no version."""

    name: str
    version: str = ""
    state: str = ""
    reason: str = ""

    def as_dict(self) -> Dict[str, str]:
        """Triton's JSON row: ``name``, then ``version``, ``state``, ``reason`` when present."""
        row = {"name": self.name}
        for key in ("version", "state", "reason"):
            value = getattr(self, key)
            if value:
                row[key] = value
        return row


class ModelControl(Protocol):
    """Loads and unloads the models of a repository (``pytriton_lite.repository.control.ModelRepository``).

    Called on the serving loop; raises ``InferenceError`` subclasses with Triton's statuses.
    """

    async def load(self, name: str, config_json: str = "", files: Optional[Mapping[str, bytes]] = None) -> None:
        """Load (or reload) ``name``; ``config_json`` is a JSON ModelConfig that overrides config.pbtxt;
        ``files`` (``{"1/model.py": content}``, paths in the model folder) replace the model's folder."""
        ...

    async def unload(self, name: str, unload_dependents: bool = False) -> None:
        """Start unloading every version of ``name`` (UNLOADING at once, drained in the background)."""
        ...

    def repository_names(self) -> Sequence[str]:
        """The names of the models in the repository, loaded or not (the index lists every one)."""
        ...


class DataPlane(Protocol):
    """What a front end may ask of the core."""

    @property
    def server_id(self) -> str:
        """The server's name in ``GET /v2`` / ServerMetadata."""
        ...

    @property
    def model_control_enabled(self) -> bool:
        """A model repository is served (``ModelControl`` set): server metadata lists ``model_repository``."""
        ...

    def live(self) -> bool:
        """Server liveness (``/v2/health/live``)."""
        ...

    def ready(self) -> bool:
        """Server readiness: accepting requests and every registered model version ready."""
        ...

    def models(self) -> List[ModelInfo]:
        """Every registered model version (any state), by name then version: the repository index."""
        ...

    def model(self, name: str, version: str = "") -> ModelInfo:
        """The version a request names, or with no version the one the version policy serves.

        Raises ``ModelNotFoundError`` (unknown name or version) or ``InvalidArgumentError`` (unparsable version).
        """
        ...

    def model_ready(self, name: str, version: str = "") -> bool:
        """Whether that version is READY and the server accepts requests; raises as ``model``."""
        ...

    def served_versions(self, name: str) -> Tuple[int, ...]:
        """The READY versions of ``name`` that the version policy serves (model metadata's ``versions``)."""
        ...

    def statistics(self, name: Optional[str] = None, version: str = "") -> List[StatsSnapshot]:
        """Triton's statistics selection: all ready versions of all (or one) model(s), or one version.

        Unknown or not-ready names and versions raise ``InvalidArgumentError`` with Triton's wording.
        """
        ...

    def all_statistics(self) -> List[StatsSnapshot]:
        """The statistics of every registered version whatever its state (what ``/metrics`` exports)."""
        ...

    def custom_metric_families(self) -> List[CustomMetricFamily]:
        """The custom metrics python models made (``pb_utils.MetricFamily``), for ``/metrics``."""
        ...

    async def infer(self, request: InferenceRequest, is_gone: Optional[IsGone] = None) -> InferenceResponse:
        """One request, one response. Raises ``DecoupledModelError`` for a decoupled model.

        ``is_gone`` is a transport's cheap "client disconnected?" probe, checked when the batcher dispatches.
        """
        ...

    async def remove_model(self, name: str, version: int, timeout: float = 30.0) -> bool:
        """Unload one version: refuse new requests (UNLOADING), finish queued and running ones (up to ``timeout``
        seconds), stop its instances and forget it. False when the drain timed out."""
        ...

    def infer_stream(self, request: InferenceRequest) -> AsyncGenerator[InferenceResponse, None]:
        """0..n responses for a decoupled model (exactly one otherwise); closing the iterator stops the model."""
        ...

    def repository_index(self, ready_only: bool = False) -> List[IndexEntry]:
        """Every model version in any state, the versions that failed to load or were unloaded (with the
        reason), and the repository's models that were never loaded (name only); ``ready_only``: READY ones."""
        ...

    async def load_model(self, name: str, config_json: str = "", files: Optional[Mapping[str, bytes]] = None) -> None:
        """Repository load (``POST /v2/repository/models/{m}/load``, RepositoryModelLoad); ``files`` are the
        ``file:<path>`` parameters (prefix removed, contents decoded)."""
        ...

    async def unload_model(self, name: str, unload_dependents: bool = False) -> None:
        """Repository unload (``POST /v2/repository/models/{m}/unload``, RepositoryModelUnload)."""
        ...

    def trace_setting(self, name: str = "", changes: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Triton's trace settings (global, or of model ``name``) after applying ``changes`` (key -> wire value,
        None = clear); an unknown or unready ``name`` is INVALID_ARG ``Request for unknown model : <name>``."""
        ...

    def log_settings(self, changes: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Triton's log settings after applying ``changes`` (``/v2/logging``, LogSettings)."""
        ...

    @property
    def shared_memory(self) -> SystemSharedMemory:
        """The registered system shared-memory regions (``core/shm.py``), shared by both front ends."""
        ...


__all__ = ["MODEL_CONTROL_DISABLED", "DataPlane", "IndexEntry", "IsGone", "ModelControl"]
