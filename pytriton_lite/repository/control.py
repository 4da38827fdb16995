"""``ModelRepository``: serves a Triton model repository through the data plane, with Triton's model control.

Modes (``--model-control-mode``):

- ``none`` (tritonserver's default): every model loads at start; load/unload requests are refused with
  Triton's 503 / UNAVAILABLE "explicit model load / unload is not allowed if polling is enabled".
- ``explicit`` (what ``Triton(config=TritonConfig(model_repository=...))`` uses, as PyTriton does, with
  ``load_model=["*"]``): the ``load_models`` names (or ``*``) load at start; then load/unload over HTTP and
  gRPC. A load may carry a JSON ModelConfig that overrides config.pbtxt; a later load without one re-reads the
  file. A load of a loaded model reloads it: the new version is loaded and warmed up beside the old one, which
  keeps serving until the swap and keeps serving if the reload fails. An unload answers at once: the versions
  turn UNLOADING, drain their queued and running requests, then are UNAVAILABLE (reason ``unloaded``).
- ``poll``: as ``none`` at start, then every ``poll_secs`` the repository is scanned: new folders load, removed
  ones unload, a changed config.pbtxt or version folder reloads (versions whose config and files did not
  change keep serving untouched), new and removed version folders come and go.

A model that fails (parse error, unknown backend, missing file, exception in the backend) is UNAVAILABLE with
its reason in the repository index and in the log; the others still load. Loading an ensemble loads its steps
first; unloading a model also unloads the ensembles that call it, and with ``unload_dependents`` unloading an
ensemble unloads its steps. State changes are serialised (one operation at a time, as Triton's); within one,
models load in parallel on ``load_threads`` loader threads. Runs on the serving loop; blocking work (reading
files, importing backends, ``initialize``, warm-up, ``finalize``) runs on the loader threads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import pathlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar

from pytriton_lite.core.api import MODEL_CONTROL_DISABLED
from pytriton_lite.core.dataplane import InProcessDataPlane
from pytriton_lite.core.registry import Entry
from pytriton_lite.exceptions import (
    InvalidArgumentError,
    ModelNotFoundError,
    PyTritonError,
    PyTritonValidationError,
    UnavailableError,
)
from pytriton_lite.repository import loader, override, scanner
from pytriton_lite.repository.backend import LoadedModel, ModelLoadError, ModelSource
from pytriton_lite.repository.config import ensemble_steps, warn_ignored
from pytriton_lite.repository.context import DataPlaneContext
from pytriton_lite.types import ModelState

LOGGER = logging.getLogger("pytriton_lite.repository")

MODES = ("none", "explicit", "poll")
DEFAULT_POLL_SECS = 15  # tritonserver's --repository-poll-secs
DEFAULT_LOAD_THREADS = 4  # tritonserver's --model-load-thread-count
UNLOADED = "unloaded"
T = TypeVar("T")


def not_in_repository(name: str) -> str:
    return f"failed to load '{name}', failed to poll from model repository"


@dataclass
class _Version:
    """A served version: its registry entry, what to finalize, and the files it was loaded from."""

    entry: Entry
    loaded: LoadedModel
    fingerprint: Any


@dataclass
class _Served:
    prepared: loader.Prepared
    versions: Dict[int, _Version]


class ModelRepository:
    """One model repository served through ``dataplane`` (a ``core.api.ModelControl``)."""

    def __init__(
        self,
        root: Any,
        dataplane: InProcessDataPlane,
        *,
        mode: str = "none",
        load_models: Sequence[str] = (),
        poll_secs: float = DEFAULT_POLL_SECS,
        load_threads: int = DEFAULT_LOAD_THREADS,
        gpus: Optional[int] = None,
        unload_timeout: float = 30.0,
    ) -> None:
        if mode not in MODES:
            raise PyTritonValidationError(f"unexpected model control mode '{mode}': use one of {', '.join(MODES)}")
        load_models = list(load_models)
        if "*" in load_models and len(load_models) > 1:
            raise PyTritonValidationError("Wildcard model name '*' must be the ONLY --load-model argument")
        # one repository or several (tritonserver's repeatable --model-repository); a model name must be unique
        roots = [root] if isinstance(root, (str, pathlib.Path)) else list(root)
        if not roots:
            raise PyTritonValidationError("no model repository given")
        self.roots = [pathlib.Path(r) for r in roots]
        self.root = self.roots[0]
        self.mode = mode
        self.load_models = load_models
        self.poll_secs = float(poll_secs)
        self.gpus = loader.gpu_count() if gpus is None else int(gpus)
        self.unload_timeout = float(unload_timeout)
        self._dataplane = dataplane
        self._loop = dataplane.loop
        self._context = DataPlaneContext(dataplane, dataplane.loop)
        dataplane.custom_metrics = self._context.custom_metrics.snapshot
        self._executor = ThreadPoolExecutor(max(1, int(load_threads)), thread_name_prefix="pytriton_lite-load")
        self._served: Dict[str, _Served] = {}
        self._seen: Dict[str, Any] = {}  # name -> fingerprint of its last load attempt (what polling compares)
        self._inflight: Dict[str, asyncio.Future[Optional[str]]] = {}
        self._waits: Dict[str, str] = {}  # ensemble -> the step model it waits for (cycle detection)
        self._background: Set[asyncio.Future[Any]] = set()
        self._operation: Optional[asyncio.Lock] = None
        # loads with file: overrides: the temporary folder a load reads (``_loading``) and the one that serves
        self._loading: Dict[str, Optional[ModelSource]] = {}
        self._overrides: Dict[str, ModelSource] = {}
        self._poll_task: Optional[asyncio.Future[None]] = None
        self.failures: Dict[str, str] = {}

    # --- core.api.ModelControl --------------------------------------------------------------------------

    def repository_names(self) -> Sequence[str]:
        return scanner.all_model_names(self.roots)

    async def load(self, name: str, config_json: str = "", files: Optional[Mapping[str, bytes]] = None) -> None:
        if self.mode != "explicit":
            raise UnavailableError(MODEL_CONTROL_DISABLED)
        if files and not config_json:
            raise InvalidArgumentError(override.files_need_config(name))
        if not (_valid_name(name) if files else self._in_repository(name)):
            raise ModelNotFoundError(not_in_repository(name))
        async with self._lock():
            source = await self._run(override.materialize, name, files) if files else None
            self._loading[name] = source
            try:
                errors = await self._load_all([name], {name: config_json}, force=True)
            finally:
                self._loading.pop(name, None)
            if name in errors:
                if source is not None:
                    override.remove(source)  # the previous load (if any) keeps serving from its own folder
                raise InvalidArgumentError(errors[name])
            self._drop_override(name)
            if source is not None:
                self._overrides[name] = source

    async def unload(self, name: str, unload_dependents: bool = False) -> None:
        if self.mode != "explicit":
            raise UnavailableError(MODEL_CONTROL_DISABLED)
        async with self._lock():
            for target in self._unload_targets(name, unload_dependents):
                self._unload(target)
                self._drop_override(target)

    # --- lifecycle (Triton, the CLI) -----------------------------------------------------------------------

    async def start(self) -> Dict[str, str]:
        """Load what the mode loads at start; ``{model: reason}`` for every model that failed."""
        for root in self.roots:
            if not root.is_dir():
                raise PyTritonError(f"failed to stat file {root}: the model repository is not a directory")
        if self.mode == "explicit":
            names = self.repository_names() if self.load_models == ["*"] else self.load_models
        else:
            names = self.repository_names()
        async with self._lock():
            errors = await self._load_all(list(names), {}, force=True)
        self.failures = dict(errors)
        if self.mode == "poll":
            self._poll_task = asyncio.ensure_future(self._poll_forever())
        return errors

    def stop_polling(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()

    async def close(self, timeout: float = 10.0) -> None:
        """Stop polling, let running unloads finish (up to ``timeout`` s), finalize every served version."""
        self.stop_polling()
        if self._poll_task is not None:
            await asyncio.gather(self._poll_task, return_exceptions=True)
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout)
        served, self._served = self._served, {}
        for name, model in served.items():
            for version in model.versions.values():
                await self._run(loader.finalize, version.loaded, name)
        for name in list(self._overrides):
            self._drop_override(name, at_once=True)
        self._executor.shutdown(wait=False)

    async def poll_once(self) -> None:
        """One poll of the repository: load new and changed models, unload removed ones."""
        async with self._lock():
            prints = await self._run(_fingerprints, self.roots)
            for name in [n for n in self._served if n not in prints]:
                LOGGER.info("model '%s' was removed from the repository: unloading it", name)
                self._unload(name)
            for name in [n for n in self._seen if n not in prints]:
                del self._seen[name]
                if name not in self._served:
                    self._dataplane.clear_unavailable(name)
            changed = [name for name, seen in prints.items() if self._seen.get(name) != seen]
            if changed:
                await self._load_all(changed, {}, force=False)

    # --- loading ------------------------------------------------------------------------------------------

    def _in_repository(self, name: str) -> bool:
        """A model folder of the repository (never a path outside it, nor a hidden folder)."""
        return _valid_name(name) and bool(scanner.holders(self.roots, name))

    def _drop_override(self, name: str, at_once: bool = False) -> None:
        """Forget the temporary folder a model served from; delete it once the unloads now running end."""
        source = self._overrides.pop(name, None)
        if source is None:
            return
        if at_once or not self._background:
            override.remove(source)
            return
        pending = list(self._background)

        async def later() -> None:
            await asyncio.wait(pending)
            override.remove(source)

        task = asyncio.ensure_future(later())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _source(self, name: str) -> Tuple[Any, str]:
        """The model's folder (in the repository that has it, or a load's file: overrides) and "" or, when
        two repositories have it, Triton's reason."""
        loading = self._loading.get(name)
        if loading is not None:
            return loading, ""
        found = scanner.holders(self.roots, name)
        root = found[0] if found else self.root
        return scanner.model_source(root, name), scanner.not_unique(name) if len(found) > 1 else ""

    def _lock(self) -> asyncio.Lock:
        if self._operation is None:  # created on the serving loop (Python 3.9 binds a lock to a loop)
            self._operation = asyncio.Lock()
        return self._operation

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        return await self._loop.run_in_executor(self._executor, functools.partial(func, *args))

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_secs)
            try:
                await self.poll_once()
            except Exception:
                LOGGER.exception("polling the model repositories %s failed", ", ".join(map(str, self.roots)))

    async def _load_all(self, names: List[str], overrides: Dict[str, str], force: bool) -> Dict[str, str]:
        self._inflight = {}
        results = await asyncio.gather(*(self._ensure(n, overrides.get(n, ""), force, ()) for n in names))
        self._inflight = {}
        return {name: error for name, error in zip(names, results) if error}

    async def _ensure(self, name: str, override: str, force: bool, stack: Tuple[str, ...]) -> Optional[str]:
        """Load ``name`` once per operation (an ensemble and a request may both ask): None or the error."""
        running = self._inflight.get(name)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Optional[str]] = self._loop.create_future()
        self._inflight[name] = future
        try:
            error = await self._load_model(name, override, force, stack)
        except BaseException:
            future.set_result("load interrupted")
            raise
        future.set_result(error)
        return error

    async def _load_model(self, name: str, override: str, force: bool, stack: Tuple[str, ...]) -> Optional[str]:
        source, duplicate = self._source(name)
        self._seen[name] = await self._run(_fingerprint, self.roots, name)
        if self._loading.get(name) is None and not self._in_repository(name):
            self._failed(name, not_in_repository(name), source)
            return not_in_repository(name)
        if duplicate:
            return self._failed(name, duplicate, source)
        try:
            prepared = await self._run(loader.prepare, source, override, self.gpus)
        except Exception as exc:  # noqa: BLE001 - a failing model never stops the others
            return self._failed(name, _reason(exc, name), source)
        self._seen[name] = (prepared.fingerprint,)
        warn_ignored(name, prepared.ignored)
        if prepared.config.response_cache.enable and self._dataplane.cache is None:
            LOGGER.warning("model '%s' enables response_cache but the server has no cache: not cached", name)
        if prepared.backend_name == "ensemble":
            error = await self._load_steps(name, prepared, stack)
            if error:
                return self._failed(name, error, source)
        return await self._load_versions(prepared, force)

    async def _load_steps(self, name: str, prepared: loader.Prepared, stack: Tuple[str, ...]) -> Optional[str]:
        for step in ensemble_steps(prepared.config):
            if step == name or step in stack or self._would_cycle(name, step):
                return f"ensemble '{name}' calls itself through step model '{step}'"
            if self._dataplane.served_versions(step) and step not in self._inflight:
                continue  # already served (from the repository or bound in code)
            if not self._in_repository(step):
                return f"ensemble '{name}' calls model '{step}', which is not in the model repository"
            self._waits[name] = step
            try:
                error = await self._ensure(step, "", False, stack + (name,))
            finally:
                self._waits.pop(name, None)
            if error:
                return f"ensemble '{name}' calls model '{step}', which failed to load: {error}"
        return None

    def _would_cycle(self, name: str, step: str) -> bool:
        """Whether ``step`` already waits (directly or not) for ``name`` in this operation."""
        current: Optional[str] = step
        for _ in range(len(self._waits) + 1):
            if current is None:
                return False
            if current == name:
                return True
            current = self._waits.get(current)
        return False

    def _failed(self, name: str, reason: str, source: Any, version: int = 0) -> str:
        """Log a failed load; record it UNAVAILABLE unless an earlier load of the model keeps serving."""
        LOGGER.error("failed to load '%s': %s", name, reason)
        if name in self._served:
            LOGGER.warning("model '%s' keeps serving its previous load", name)
        else:
            found = scanner.version_numbers(source, log=False)
            self._dataplane.clear_unavailable(name)
            self._dataplane.mark_unavailable(name, version or (found[-1] if found else 0), reason)
        return f"load failed for model '{name}': {reason}"

    async def _load_versions(self, prepared: loader.Prepared, force: bool) -> Optional[str]:
        name = prepared.source.name
        previous = self._served.get(name)
        old = previous.versions if previous is not None else {}
        kept: Dict[int, _Version] = {}
        errors: List[str] = []
        for version in prepared.versions:
            files = prepared.fingerprint[1].get(version)
            current = old.get(version)
            if current is not None and not force and _unchanged(current, prepared, files):
                kept[version] = current
                continue
            try:
                kept[version] = await self._load_version(prepared, version, files)
            except Exception as exc:  # noqa: BLE001 - a failing model never stops the others
                reason = _reason(exc, name)
                errors.append(f"version {version} is at UNAVAILABLE state: {reason}")
                LOGGER.error("failed to load '%s' version %d: %s", name, version, reason)
                if current is not None:
                    LOGGER.warning("model '%s' version %d keeps serving its previous load", name, version)
                    kept[version] = current
                else:
                    self._dataplane.mark_unavailable(name, version, reason)
        for version, current in old.items():
            if version in kept:
                continue
            if errors:  # a failed reload unloads nothing
                kept[version] = current
            else:
                self._retire(name, version, current, UNLOADED)
        if kept:
            self._served[name] = _Served(prepared, kept)
        else:
            self._served.pop(name, None)
        if errors:
            return f"load failed for model '{name}': " + "; ".join(errors)
        return None

    async def _load_version(self, prepared: loader.Prepared, version: int, files: Any) -> _Version:
        name = prepared.source.name
        started = time.monotonic()
        model, loaded = await self._run(loader.load_version, prepared, version, self._context)
        dataplane = self._dataplane
        existing = dataplane.registry.exact(name, version)
        fresh = existing is None
        previous = self._served.get(name)
        old = previous.versions.get(version) if previous is not None else None
        try:
            if (
                existing is not None
                and existing.state is not ModelState.UNLOADING
                and (old is None or old.entry is not existing)
            ):
                raise ModelLoadError(f"model '{name}' version {version} is already served (bound with Triton.bind)")
            entry = dataplane.add_model(model, ready=False) if fresh else dataplane.start_model(model)
        except BaseException:
            await self._run(loader.finalize, loaded, name)
            raise
        try:
            if loaded.initializers:
                await self._run(loader.initialize, loaded, entry.batcher.instances)
            if model.config.model_warmup:
                await self._run(loader.warm_up, model, entry.batcher.instances)
        except BaseException:
            dataplane.discard(entry)
            await self._run(loader.finalize, loaded, name)
            raise
        model.load_duration_s = max(time.monotonic() - started, 1e-6)
        if fresh:
            dataplane.set_state(name, version, ModelState.READY)
            dataplane.clear_unavailable(name, version)
        else:
            replaced = dataplane.swap_in(entry)
            if replaced is not None and old is not None and old.entry is replaced:
                self._retire(name, version, old, None)  # an entry being unloaded is retired by its unload
        LOGGER.info(
            "successfully loaded '%s' version %d (backend %s, %d instances) in %.3f s",
            name,
            version,
            prepared.backend_name,
            model.instance_count,
            model.load_duration_s,
        )
        return _Version(entry, loaded, files)

    # --- unloading ----------------------------------------------------------------------------------------

    def _unload_targets(self, name: str, unload_dependents: bool) -> List[str]:
        """``name``, the ensembles that call it, and with ``unload_dependents`` the steps of an ensemble."""
        targets = [name]
        targets += [
            other
            for other, served in self._served.items()
            if other != name
            and served.prepared.backend_name == "ensemble"
            and name in ensemble_steps(served.prepared.config)
        ]
        served = self._served.get(name)
        if unload_dependents and served is not None and served.prepared.backend_name == "ensemble":
            targets += [step for step in ensemble_steps(served.prepared.config) if step in self._served]
        return list(dict.fromkeys(targets))

    def _unload(self, name: str) -> None:
        served = self._served.pop(name, None)
        if served is None:  # unknown or failed: nothing serves; a failure record becomes "unloaded" (Triton: 200)
            records = [r for r in self._dataplane.registry.unavailable() if r.name == name and r.failed]
            for record in records:
                self._dataplane.mark_unavailable(name, record.version, UNLOADED, failed=False)
            return
        for version, current in served.versions.items():
            self._retire(name, version, current, UNLOADED)

    def _retire(self, name: str, version: int, current: _Version, record: Optional[str]) -> None:
        """Drain and stop ``current`` in the background (UNLOADING at once); then finalize it and, with a
        ``record``, list the version UNAVAILABLE with that reason."""
        entry = current.entry
        if entry.state is not ModelState.UNAVAILABLE:
            entry.state, entry.reason = ModelState.UNLOADING, ""
        task = asyncio.ensure_future(self._finish_retire(name, version, current, record))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _finish_retire(self, name: str, version: int, current: _Version, record: Optional[str]) -> None:
        drained = await self._dataplane.retire(current.entry, self.unload_timeout)
        if not drained:
            LOGGER.warning(
                "model '%s' version %d: requests still running after %.0f s", name, version, self.unload_timeout
            )
        await self._run(loader.finalize, current.loaded, name)
        if record and self._dataplane.registry.exact(name, version) is None:
            self._dataplane.mark_unavailable(name, version, record, failed=False)
        LOGGER.info("successfully unloaded '%s' version %d", name, version)


def _valid_name(name: str) -> bool:
    """A name that can be a model folder: not empty, not hidden, no path separator."""
    return bool(name) and not name.startswith(".") and "/" not in name and "\\" not in name


def _unchanged(current: _Version, prepared: loader.Prepared, files: Any) -> bool:
    return current.fingerprint == files and current.entry.model.served == prepared.config


def _reason(exc: BaseException, name: str) -> str:
    """A failure as the index shows it: the message of the errors we raise, type and message otherwise."""
    if isinstance(exc, PyTritonError):
        return str(exc)
    LOGGER.debug("loading '%s' failed", name, exc_info=exc)
    return f"{type(exc).__name__}: {exc}"


def _fingerprint(roots: Sequence[pathlib.Path], name: str) -> Any:
    """What polling compares for ``name``: the fingerprint of its folder in each repository that has it."""
    return tuple(scanner.fingerprint(scanner.model_source(root, name)) for root in scanner.holders(roots, name))


def _fingerprints(roots: Sequence[pathlib.Path]) -> Dict[str, Any]:
    return {name: _fingerprint(roots, name) for name in scanner.all_model_names(roots)}


__all__ = ["DEFAULT_LOAD_THREADS", "DEFAULT_POLL_SECS", "MODES", "ModelRepository", "UNLOADED", "not_in_repository"]
