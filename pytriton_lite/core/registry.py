"""(name, version) -> registry entry, with Triton's lookup rules, version policies and messages.

Every entry carries its state (LOADING, READY, UNLOADING, UNAVAILABLE) and a reason. Which versions a name
serves is decided by the version policy of its served config (``latest N`` / ``all`` / ``specific``); a
request that names no version goes to the highest served version. Used on the serving loop only.

Beside the entries, the registry keeps ``Unavailable`` records: versions of repository models that failed to
load (with the reason) or were unloaded (reason ``unloaded``). They have no scheduler and take no request; the
repository index lists them, a request for such a name gets Triton's "has no available versions", and a failed
one keeps a strict server not ready.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from pytriton_lite.core.model import Model
from pytriton_lite.core.stats import ModelStats
from pytriton_lite.exceptions import InvalidArgumentError, ModelNotFoundError, PyTritonInvalidOperationError
from pytriton_lite.types import ModelInfo, ModelState


@dataclass(eq=False)
class Entry:
    """One registered model version: the model, its state, its scheduler and its statistics."""

    model: Model
    state: ModelState = ModelState.LOADING
    reason: str = ""
    batcher: Any = None  # core.batcher.Batcher once started
    stats: ModelStats = field(default_factory=ModelStats)

    def info(self) -> ModelInfo:
        return self.model.info(self.state, self.reason)


@dataclass(frozen=True)
class Unavailable:
    """A version that is not served: it failed to load (``failed``) or was unloaded. ``version`` 0 = none known."""

    name: str
    version: int
    reason: str
    failed: bool = True


def selected_versions(policy: Any, versions: List[int]) -> List[int]:
    """The versions a ``ModelVersionPolicy`` proto picks out of ``versions`` (ascending)."""
    ordered = sorted(versions)
    kind = policy.WhichOneof("policy_choice") if policy is not None else None
    if kind == "all":
        return ordered
    if kind == "specific":
        wanted = {int(v) for v in policy.specific.versions}
        return [v for v in ordered if v in wanted]
    count = int(policy.latest.num_versions) if kind == "latest" else 1
    return ordered[-max(1, count) :]


def parse_version(version: str) -> int:
    try:
        return int(version)
    except ValueError:
        raise InvalidArgumentError(
            f"failed to get model version from specified version string '{version}' (value: '{version}'), "
            "version should be an integral value > 0"
        ) from None


class Registry:
    """Registered model versions. Names are unique case-insensitively (PyTriton); lookups are exact."""

    def __init__(self) -> None:
        self._by_name: Dict[str, Dict[int, Entry]] = {}
        self._keys: Dict[Tuple[str, int], Entry] = {}
        self._unavailable: Dict[str, Dict[int, Unavailable]] = {}

    def add(self, entry: Entry) -> None:
        model = entry.model
        key = (model.name.lower(), model.version)
        if key in self._keys:
            raise PyTritonInvalidOperationError("Cannot add model with the same name twice.")
        self._keys[key] = entry
        self._by_name.setdefault(model.name, {})[model.version] = entry

    def remove(self, entry: Entry) -> None:
        model = entry.model
        if self._keys.get((model.name.lower(), model.version)) is entry:
            del self._keys[(model.name.lower(), model.version)]
        versions = self._by_name.get(model.name, {})
        if versions.get(model.version) is entry:
            del versions[model.version]
        if not versions:
            self._by_name.pop(model.name, None)

    def entries(self) -> List[Entry]:
        """Every entry, by name (in registration order) then version."""
        return [e for versions in self._by_name.values() for _, e in sorted(versions.items())]

    def served(self, name: str) -> List[Entry]:
        """READY entries of ``name`` that its version policy selects, ascending by version."""
        versions = self._by_name.get(name)
        if not versions:
            return []
        chosen = selected_versions(self._policy(versions), list(versions))
        return [versions[v] for v in chosen if versions[v].state is ModelState.READY]

    def get(self, name: str, version: str = "") -> Entry:
        """The entry a request addresses (Triton's lookup and its error messages)."""
        versions = self._by_name.get(name)
        if not versions:
            raise self._not_found(name)
        if not version and len(versions) == 1:
            # the common case, on every request: one version, which any policy but "specific" selects
            (only,) = versions.values()
            if only.state is ModelState.READY and not only.model.specific_versions:
                return only
        if not version:
            served = self.served(name)
            if served:
                return served[-1]
            # nothing served: the highest selected version answers "not ready" rather than "not found"
            chosen = selected_versions(self._policy(versions), list(versions))
            return versions[chosen[-1] if chosen else max(versions)]
        number = parse_version(version)
        entry = versions.get(number)
        if entry is None or number not in selected_versions(self._policy(versions), list(versions)):
            raise ModelNotFoundError(f"Request for unknown model: '{name}' version {version} is not found")
        return entry

    def _not_found(self, name: str) -> ModelNotFoundError:
        records = self._unavailable.get(name)
        if not records:
            return ModelNotFoundError(f"Request for unknown model: '{name}' is not found")
        failed = [r for _, r in sorted(records.items()) if r.failed]
        why = f": {failed[-1].reason}" if failed else ""
        return ModelNotFoundError(f"Request for unknown model: '{name}' has no available versions{why}")

    # --- versions that are not served (repository models that failed to load, or were unloaded) -----------

    def set_unavailable(self, record: Unavailable) -> None:
        self._unavailable.setdefault(record.name, {})[record.version] = record

    def clear_unavailable(self, name: str, version: Optional[int] = None) -> None:
        """Forget the records of ``name`` (one version, or all of them)."""
        if version is None:
            self._unavailable.pop(name, None)
            return
        records = self._unavailable.get(name)
        if records is not None:
            records.pop(version, None)
            if not records:
                del self._unavailable[name]

    def unavailable(self) -> List[Unavailable]:
        """Every record whose (name, version) has no entry, by name then version."""
        return [
            record
            for name, records in self._unavailable.items()
            for _, record in sorted(records.items())
            if record.version not in self._by_name.get(name, {})
        ]

    def has_failures(self) -> bool:
        return any(record.failed for record in self.unavailable())

    def exact(self, name: str, version: int) -> Optional[Entry]:
        """The entry registered as (``name``, ``version``), whatever the version policy says."""
        return self._by_name.get(name, {}).get(int(version))

    def find(self, name: str, version: str = "") -> Optional[Entry]:
        try:
            return self.get(name, version)
        except (ModelNotFoundError, InvalidArgumentError):
            return None

    @staticmethod
    def _policy(versions: Dict[int, Entry]) -> Any:
        # versions of one model share one config in Triton; the newest registered one speaks for the name
        return versions[max(versions)].model.served.version_policy
