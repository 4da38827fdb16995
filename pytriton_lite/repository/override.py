"""A load with ``file:`` overrides (tritonclient ``load_model(name, config=..., files={"file:1/model.py": ...})``).

As in Triton, the files form the model's folder for that load: they are written into a temporary directory
(``<tmp>/<name>/1/model.py``, ...) that the model is loaded from instead of its repository folder, so the
model need not be in the repository at all. The ``config`` parameter is then required (it is the folder's
configuration). A later load without files reads the repository again.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from typing import Mapping

from pytriton_lite.exceptions import InvalidArgumentError
from pytriton_lite.repository.backend import ModelSource

PREFIX = "file:"


def files_need_config(name: str) -> str:
    return f"failed to load '{name}': a load with 'file:' parameters must also carry the model's 'config'"


def _relative(name: str, path: str) -> pathlib.PurePosixPath:
    """``path`` as a path inside the model folder; anything that could leave it is refused."""
    relative = pathlib.PurePosixPath(path)
    if not path or "\\" in path or "\0" in path or relative.is_absolute() or ".." in relative.parts:
        raise InvalidArgumentError(f"failed to load '{name}': invalid file path '{PREFIX}{path}'")
    if relative.parts == (".",) or not relative.parts:
        raise InvalidArgumentError(f"failed to load '{name}': invalid file path '{PREFIX}{path}'")
    return relative


def materialize(name: str, files: Mapping[str, bytes]) -> ModelSource:
    """Write ``files`` (paths relative to the model folder) into a fresh temporary model folder."""
    checked = {_relative(name, path): content for path, content in files.items()}
    root = pathlib.Path(tempfile.mkdtemp(prefix="pytriton_lite-override-"))
    try:
        directory = root / name
        directory.mkdir()
        for relative, content in checked.items():
            target = directory.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return ModelSource(name=name, repository=root, directory=directory)


def remove(source: ModelSource) -> None:
    """Delete a temporary model folder made by ``materialize`` (its whole temporary root)."""
    shutil.rmtree(source.repository, ignore_errors=True)


__all__ = ["PREFIX", "files_need_config", "materialize", "remove"]
