"""Test support for the python backend: model folders written into ``tmp_path``, hand-made sources and
placements, a fake ``LoadContext`` for BLS, and a driver that calls an infer callable as the core does."""

from __future__ import annotations

import asyncio
import inspect
import pathlib
import textwrap
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from pytriton_lite.exceptions import ModelNotFoundError
from pytriton_lite.repository.backend import InstancePlacement, ModelSource, VersionSource
from pytriton_lite.repository.backends.python import BACKEND
from pytriton_lite.types import InferenceRequest, InferenceResponse, Request

Handler = Callable[[InferenceRequest], Any]


def write_model(
    root: pathlib.Path,
    name: str,
    model_py: str,
    config: Optional[str] = None,
    version: int = 1,
    files: Optional[Dict[str, str]] = None,
) -> pathlib.Path:
    """``root/name/[config.pbtxt]`` and ``root/name/<version>/model.py`` (+ ``files``, relative to the model
    folder, e.g. ``{"1/utils.py": ...}``); the model folder."""
    directory = root / name
    (directory / str(version)).mkdir(parents=True, exist_ok=True)
    (directory / str(version) / "model.py").write_text(textwrap.dedent(model_py))
    if config is not None:
        (directory / "config.pbtxt").write_text(textwrap.dedent(config))
    for relative, text in (files or {}).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return directory


def parse_config(text: str, name: str) -> Any:
    config = text_format.Parse(textwrap.dedent(text), model_config_pb2.ModelConfig())
    config.name = name
    return config


def source(root: pathlib.Path, name: str, config: str = 'backend: "python"', version: int = 1) -> VersionSource:
    return VersionSource(ModelSource(name, root, root / name), version, parse_config(config, name))


def placements(name: str, count: int = 1, kind: str = "KIND_CPU") -> List[InstancePlacement]:
    if count == 1:
        return [InstancePlacement(f"{name}_0", kind, 0, 0)]
    return [InstancePlacement(f"{name}_0_{k}", kind, 0, k) for k in range(count)]


def request(data: Dict[str, Any], parameters: Optional[Dict[str, Any]] = None, outputs: Sequence[str] = ()) -> Request:
    return Request(
        data={k: np.asarray(v) for k, v in data.items()}, parameters=parameters, requested_output_names=list(outputs)
    )


class FakeContext:
    """A ``LoadContext`` whose models are Python functions: ``models[name](request) -> outputs`` (a dict, or
    for ``streams[name]`` a list of dicts); an unknown name raises ``ModelNotFoundError``."""

    def __init__(self, models: Optional[Dict[str, Handler]] = None, streams: Optional[Dict[str, Handler]] = None):
        self.models = models or {}
        self.streams = streams or {}
        self.calls: List[InferenceRequest] = []

    def _handler(self, table: Dict[str, Handler], request: InferenceRequest) -> Handler:
        self.calls.append(request)
        if request.model_name not in table:
            raise ModelNotFoundError(f"Request for unknown model: '{request.model_name}' is not found")
        return table[request.model_name]

    def infer(self, request: InferenceRequest, timeout_s: Optional[float] = None) -> InferenceResponse:
        outputs = self._handler(self.models, request)(request)
        return InferenceResponse(request.model_name, "1", outputs, id=request.id)

    def infer_stream(self, request: InferenceRequest) -> List[InferenceResponse]:
        items = self._handler(self.streams, request)(request)
        return [InferenceResponse(request.model_name, "1", outputs) for outputs in items]

    async def infer_async(self, request: InferenceRequest) -> InferenceResponse:
        await asyncio.sleep(0)
        return self.infer(request)

    async def infer_stream_async(self, request: InferenceRequest) -> Any:
        for response in self.infer_stream(request):
            await asyncio.sleep(0)
            yield response

    def model_config(self, name: str, version: str = "") -> Any:
        raise ModelNotFoundError(f"Request for unknown model: '{name}' is not found")


def call(func: Callable[..., Any], requests: List[Request]) -> Any:
    """Call an infer callable as the core does: the result, awaited, or an async generator's items."""
    out = func(requests)
    if inspect.isawaitable(out):

        async def settle() -> Any:
            return await out

        return asyncio.run(settle())
    if hasattr(out, "__anext__"):

        async def collect() -> List[Any]:
            return [item async for item in out]

        return asyncio.run(collect())
    return out


def initialized(loaded: Any) -> Any:
    """Run a ``LoadedModel``'s initializers here, as the server runs them on each instance's thread (a failure
    finalizes what was made and raises, as a failed load does); the ``LoadedModel``."""
    try:
        for init in loaded.initializers:
            call(lambda _, init=init: init(), [])
    except BaseException:
        loaded.finalize()
        raise
    return loaded


def load(root: pathlib.Path, name: str, config: str = 'backend: "python"', count: int = 1, context: Any = None):
    """``BACKEND.load`` of ``root/name`` version 1, initialized: the ``LoadedModel``."""
    return initialized(BACKEND.load(source(root, name, config), placements(name, count), context or FakeContext()))
