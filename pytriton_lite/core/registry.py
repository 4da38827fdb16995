"""(name, version) -> Model, with Triton's lookup rules and messages."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from pytriton_lite.core.model import Model
from pytriton_lite.exceptions import InvalidArgumentError, ModelNotFoundError, PyTritonInvalidOperationError


class Registry:
    """Bound models. Names are unique case-insensitively (PyTriton); lookups are exact."""

    def __init__(self) -> None:
        self._models: Dict[Tuple[str, int], Model] = {}
        self._by_name: Dict[str, Dict[int, Model]] = {}

    def add(self, model: Model) -> None:
        key = (model.name.lower(), model.version)
        if key in self._models:
            raise PyTritonInvalidOperationError("Cannot add model with the same name twice.")
        self._models[key] = model
        self._by_name.setdefault(model.name, {})[model.version] = model

    def remove(self, model: Model) -> None:
        self._models.pop((model.name.lower(), model.version), None)
        versions = self._by_name.get(model.name, {})
        versions.pop(model.version, None)
        if not versions:
            self._by_name.pop(model.name, None)

    def models(self) -> List[Model]:
        return [m for versions in self._by_name.values() for _, m in sorted(versions.items())]

    def get(self, name: str, version: str = "") -> Model:
        versions = self._by_name.get(name)
        if not versions:
            raise ModelNotFoundError(f"Request for unknown model: '{name}' is not found")
        if not version:
            return versions[max(versions)]
        try:
            number = int(version)
        except ValueError:
            raise InvalidArgumentError(
                f"failed to get model version from specified version string '{version}' (value: '{version}'), "
                "version should be an integral value > 0"
            ) from None
        model = versions.get(number)
        if model is None:
            raise ModelNotFoundError(f"Request for unknown model: '{name}' version {version} is not found")
        return model

    def find(self, name: str, version: str = "") -> Optional[Model]:
        try:
            return self.get(name, version)
        except (ModelNotFoundError, InvalidArgumentError):
            return None
