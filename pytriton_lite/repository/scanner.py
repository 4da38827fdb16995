"""Triton's repository layout: ``<repository>/<model>/config.pbtxt`` and ``<repository>/<model>/<version>/``.

- Every directory of the repository is a model, named by its folder (hidden folders, ``.name``, are skipped).
- Version folders are positive integers without leading zeros; other folders are ignored with a log line
  (Triton's wording: ``ignore version directory 'abc' which fails to convert to integral number``).
- The version policy of the config picks the versions to serve: ``latest { num_versions }`` (the default,
  with 1), ``all {}`` or ``specific { versions }`` (``core.registry.selected_versions``).
- ``fingerprint`` summarises what polling watches: the config file and every file of every version folder
  (names, sizes, modification times).
"""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Any, Dict, List, Sequence, Tuple

from pytriton_lite.core.registry import selected_versions
from pytriton_lite.repository.backend import ModelSource

LOGGER = logging.getLogger("pytriton_lite.repository")

# folders of a model directory that are not versions and are expected there (no log line for them)
_KNOWN_FOLDERS = frozenset({"warmup", "configs", "__pycache__"})
# polling walks at most this many files per version folder (a bound on a runaway tree)
MAX_FILES_PER_VERSION = 10_000

Fingerprint = Tuple[Any, ...]


def model_names(repository: pathlib.Path) -> List[str]:
    """The models of ``repository``: its sub-folders, sorted (files and hidden folders are not models)."""
    try:
        entries = list(os.scandir(repository))
    except OSError:
        return []
    return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())


def model_source(repository: pathlib.Path, name: str) -> ModelSource:
    return ModelSource(name=name, repository=repository, directory=repository / name)


def not_unique(name: str) -> str:
    """Triton's reason for a model folder found in more than one ``--model-repository``."""
    return f"failed to poll model '{name}': not unique across all model repositories"


def holders(repositories: Sequence[pathlib.Path], name: str) -> List[pathlib.Path]:
    """The repositories that have a model folder ``name`` (more than one: the name is not unique)."""
    return [root for root in repositories if (root / name).is_dir()]


def all_model_names(repositories: Sequence[pathlib.Path]) -> List[str]:
    """The models of every repository, sorted, each name once."""
    return sorted({name for root in repositories for name in model_names(root)})


def version_numbers(source: ModelSource, log: bool = True) -> List[int]:
    """The version folders of a model, ascending; others are ignored (logged as Triton does)."""
    versions = []
    try:
        entries = sorted(os.scandir(source.directory), key=lambda e: e.name)
    except OSError:
        return []
    for entry in entries:
        if not entry.is_dir():
            continue
        name = entry.name
        reason = _not_a_version(name)
        if reason is None:
            versions.append(int(name))
        elif log and name not in _KNOWN_FOLDERS and not name.startswith("."):
            LOGGER.warning("model '%s': ignore version directory '%s' which %s", source.name, name, reason)
    return sorted(versions)


def _not_a_version(name: str) -> Any:
    if not name.isdigit() or not name.isascii():
        return "fails to convert to integral number"
    if len(name) > 1 and name.startswith("0"):
        return "contains leading zeros"
    if int(name) == 0:
        return "is not a positive integral number"
    return None


def served_versions(policy: Any, versions: List[int]) -> List[int]:
    """The versions the config's ``version_policy`` serves (Triton's default: the latest one)."""
    return selected_versions(policy, versions)


def _stat(path: pathlib.Path) -> Tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (-1, -1)
    return (info.st_size, info.st_mtime_ns)


def version_fingerprint(directory: pathlib.Path) -> Fingerprint:
    """Names, sizes and modification times of the files of one version folder (bounded walk)."""
    found: List[Tuple[str, int, int]] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for file in sorted(files):
            path = pathlib.Path(root) / file
            found.append((str(path.relative_to(directory)), *_stat(path)))
            if len(found) >= MAX_FILES_PER_VERSION:
                return tuple(found)
    return tuple(found)


def fingerprint(source: ModelSource) -> Tuple[Fingerprint, Dict[int, Fingerprint]]:
    """(the model's files outside version folders, {version: that version's fingerprint})."""
    directory = source.directory
    outer: List[Tuple[str, int, int]] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return ((), {})
    for entry in entries:
        if entry.is_file():
            outer.append((entry.name, *_stat(pathlib.Path(entry.path))))
        elif entry.name in ("configs", "warmup"):
            outer.append((entry.name, *version_fingerprint(pathlib.Path(entry.path))))
    versions = {v: version_fingerprint(directory / str(v)) for v in version_numbers(source, log=False)}
    return (tuple(outer), versions)


__all__ = [
    "MAX_FILES_PER_VERSION",
    "fingerprint",
    "all_model_names",
    "holders",
    "model_names",
    "not_unique",
    "model_source",
    "served_versions",
    "version_fingerprint",
    "version_numbers",
]
