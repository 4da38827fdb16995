"""The python backend: a version folder's ``model.py`` with ``class TritonPythonModel``, run in-process.

- ``auto_complete``: the model's ``TritonPythonModel.auto_complete_config(pb_utils.ModelConfig)`` completes
  the config (a python model may come with no config.pbtxt at all), in place.
- ``load``: per placement, ``model.py`` is imported in a private namespace of its own (``_python_import``);
  the ``LoadedModel``'s initializers then make one ``TritonPythonModel()`` per instance and call
  ``initialize(args)`` (every key Triton passes, as strings) on that instance's own thread. An import error,
  a syntax error, a missing file or an exception in ``initialize`` is a ``ModelLoadError`` carrying the
  reason and the model's frames.
- the infer callables (``_python_instance``): ``execute`` gets ``pb_utils.InferenceRequest``s and returns
  ``InferenceResponse``s (decoupled models send them through response senders); BLS calls go through the
  ``LoadContext``. ``finalize()`` runs when the version is unloaded.

Model code sees ``import triton_python_backend_utils as pb_utils`` (the top-level package re-exporting
``pytriton_lite.pb_utils``).
"""

from __future__ import annotations

import functools
import json
import pathlib
from typing import TYPE_CHECKING, Any, Dict, List, Sequence

from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2

from pytriton_lite.pb_utils import _bls
from pytriton_lite.pb_utils._config import ModelConfig
from pytriton_lite.protocol.model_json import message_to_dict
from pytriton_lite.repository.backend import (
    InstancePlacement,
    LoadContext,
    LoadedModel,
    ModelLoadError,
    ModelSource,
    VersionSource,
)
from pytriton_lite.repository.backends._python_import import Namespace
from pytriton_lite.repository.backends._python_instance import PythonInstance, describe

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig as ModelConfigProto


def _model_class(namespace: Namespace, path: pathlib.Path) -> Any:
    """Import the model file in ``namespace``; its ``TritonPythonModel`` class."""
    if path.suffix != ".py":
        raise ModelLoadError(f"Model name must end with '.py'. Model name is \"{path.name}\".")
    if not path.is_file():
        raise ModelLoadError(f"Failed to preinitialize Python stub: Python model file not found in '{path}'")
    try:
        module = namespace.import_file(path)
    except Exception as exc:
        raise ModelLoadError(describe(exc)) from exc
    cls = getattr(module, "TritonPythonModel", None)
    if not isinstance(cls, type):
        raise ModelLoadError(f"Python model file '{path}' defines no class TritonPythonModel")
    return cls


def initialize_args(source: VersionSource, placement: InstancePlacement, config_json: str) -> Dict[str, str]:
    """``initialize(args)``: Triton's keys, every value a string."""
    kind = placement.kind[len("KIND_") :] if placement.kind.startswith("KIND_") else placement.kind
    return {
        "model_config": config_json,
        "model_instance_kind": kind,
        "model_instance_name": placement.name,
        "model_instance_device_id": str(placement.device_id),
        "model_repository": str(source.model.directory),
        "model_version": str(source.version),
        "model_name": source.name,
    }


def _finalize_all(instances: List[PythonInstance]) -> None:
    for instance in instances:
        instance.finalize()


class PythonBackend:
    """Serves ``backend: "python"`` models."""

    names = ("python",)
    default_model_filename = "model.py"

    def auto_complete(self, model: ModelSource, config: ModelConfigProto, version_dir: pathlib.Path) -> None:
        path = version_dir / (config.default_model_filename or self.default_model_filename)
        namespace = Namespace(f"{model.name}_autocomplete", [version_dir, model.directory])
        try:
            hook = getattr(_model_class(namespace, path), "auto_complete_config", None)
            if hook is None:
                return
            data = message_to_dict(config)
            data["name"] = data.get("name") or model.name
            try:
                result = hook(ModelConfig(data))
            except Exception as exc:
                raise ModelLoadError(f"auto_complete_config of model '{model.name}' failed: {describe(exc)}") from exc
            if not isinstance(result, ModelConfig):
                raise ModelLoadError(
                    f"auto_complete_config function in model '{model.name}' must return a valid pb.ModelConfig object."
                )
            try:
                completed = json_format.ParseDict(result.as_dict(), model_config_pb2.ModelConfig())
            except (json_format.ParseError, TypeError, ValueError) as exc:
                raise ModelLoadError(
                    f"auto_complete_config of model '{model.name}' made an invalid model configuration: {exc}"
                ) from exc
            config.CopyFrom(completed)
        finally:
            namespace.close()

    def load(self, source: VersionSource, placements: Sequence[InstancePlacement], context: LoadContext) -> LoadedModel:
        config_json = json.dumps(message_to_dict(source.config))
        instances: List[PythonInstance] = []
        try:
            for placement in placements:
                instances.append(self._instance(source, placement, context, config_json))
        except BaseException:
            _finalize_all(instances)
            raise
        return LoadedModel(
            infer_funcs=[instance.infer for instance in instances],
            finalize=functools.partial(_finalize_all, instances),
            initializers=[
                functools.partial(instance.initialize, initialize_args(source, placement, config_json))
                for instance, placement in zip(instances, placements)
            ],
        )

    def _instance(
        self, source: VersionSource, placement: InstancePlacement, context: LoadContext, config_json: str
    ) -> PythonInstance:
        namespace = Namespace(
            f"{source.name}_v{source.version}_{placement.index}", [source.directory, source.model.directory]
        )
        _bls.register(namespace.token, context)
        try:
            cls = _model_class(namespace, source.model_file(self.default_model_filename))
            decoupled = bool(source.config.model_transaction_policy.decoupled)
            # the object and its initialize() come later, on the instance's thread (LoadedModel.initializers)
            return PythonInstance(cls, placement.name, source.name, decoupled, context, namespace)
        except BaseException:
            _bls.unregister(namespace.token)
            namespace.close()
            raise


BACKEND = PythonBackend()

__all__ = ["BACKEND", "PythonBackend", "initialize_args"]
