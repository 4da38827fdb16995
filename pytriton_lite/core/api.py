"""The seam between the core and every front end: the ``DataPlane`` protocol (MLServer's pattern).

Front ends (HTTP, gRPC, metrics, and later worker processes) hold a ``DataPlane`` and nothing else from the
core. Every call returns plain frozen data from ``pytriton_lite.types`` (``ModelInfo``, ``StatsSnapshot``,
``InferenceResponse``) or raises an ``InferenceError`` that carries its protocol status. Methods are called
on the serving loop.
"""

from __future__ import annotations

from typing import AsyncGenerator, Callable, List, Optional, Protocol, Tuple

from pytriton_lite.types import InferenceRequest, InferenceResponse, ModelInfo, StatsSnapshot

IsGone = Callable[[], bool]


class DataPlane(Protocol):
    """What a front end may ask of the core."""

    @property
    def server_id(self) -> str:
        """The server's name in ``GET /v2`` / ServerMetadata."""
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


__all__ = ["DataPlane", "IsGone"]
