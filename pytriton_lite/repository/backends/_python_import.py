"""Importing a python model's ``model.py`` and its sibling modules under a private package, one per instance.

Triton runs each python model instance in its own process, with the version folder (then the model folder)
appended to ``sys.path``. In one process that would make two models' ``utils.py`` collide in ``sys.modules``
and let instances share module globals. So each instance gets a namespace: a package
``_pytriton_lite_models.<token>`` whose ``__path__`` is ``[<version folder>, <model folder>]``, under which
``model.py`` runs as ``<package>.model``. Its modules get their own ``__builtins__`` whose ``__import__``
sends an absolute import of a sibling (``import utils``, ``from utils import f``) to ``<package>.utils``;
relative imports (``from . import utils``) work as they are. A standard-library name stays the standard
module, as in Triton, where the model's folders come last on ``sys.path``.
"""

from __future__ import annotations

import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import os
import pathlib
import pkgutil
import re
import sys
import sysconfig
import threading
import types
from typing import Any, Dict, Optional, Sequence

from pytriton_lite.pb_utils._bls import MODEL_PACKAGE

_ORIGINAL_IMPORT = builtins.__import__


def _stdlib_names() -> frozenset:
    """The standard library's top-level names (``sys.stdlib_module_names`` from 3.10; on 3.9, read off its folders)."""
    names = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return frozenset(names)
    stdlib = sysconfig.get_paths()["stdlib"]
    found = set(sys.builtin_module_names)
    found.update(info.name for info in pkgutil.iter_modules([stdlib, os.path.join(stdlib, "lib-dynload")]))
    return frozenset(found)


_STDLIB = _stdlib_names()
_COUNTER = itertools.count()
_LOCK = threading.Lock()
_NAMESPACES: Dict[str, Namespace] = {}


class _IsolatedLoader(importlib.machinery.SourceFileLoader):
    """A source loader that runs the module with its namespace's ``__builtins__``."""

    def __init__(self, fullname: str, path: str, namespace: Namespace) -> None:
        super().__init__(fullname, path)
        self.namespace = namespace

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__["__builtins__"] = self.namespace.builtins
        super().exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the modules of a namespace (``_pytriton_lite_models.<token>.<name>``) in its folders."""

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]], target: Optional[types.ModuleType] = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        parts = fullname.split(".")
        if len(parts) < 3 or parts[0] != MODEL_PACKAGE:
            return None
        namespace = _NAMESPACES.get(parts[1])
        if namespace is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path or namespace.dirs)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _IsolatedLoader(fullname, str(spec.origin), namespace)
        return spec


_FINDER = _Finder()


def _install() -> types.ModuleType:
    """The root package and the finder, once (under ``_LOCK``)."""
    root = sys.modules.get(MODEL_PACKAGE)
    if root is None:
        root = types.ModuleType(MODEL_PACKAGE, "Private: the python backend's model namespaces.")
        root.__path__ = []
        sys.modules[MODEL_PACKAGE] = root
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return root


class Namespace:
    """One model instance's private package (see the module docstring)."""

    def __init__(self, label: str, dirs: Sequence[pathlib.Path]) -> None:
        self.token = f"{re.sub(r'[^0-9A-Za-z_]', '_', label)}_{next(_COUNTER)}"
        self.package = f"{MODEL_PACKAGE}.{self.token}"
        self.dirs = [str(d) for d in dirs]
        self.builtins: Dict[str, Any] = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import
        self._siblings: Dict[str, bool] = {}
        package = types.ModuleType(self.package)
        package.__path__ = list(self.dirs)
        package.__package__ = self.package
        with _LOCK:
            root = _install()
            _NAMESPACES[self.token] = self
            sys.modules[self.package] = package
            setattr(root, self.token, package)

    def _is_sibling(self, name: str) -> bool:
        known = self._siblings.get(name)
        if known is None:
            known = self._siblings[name] = name not in _STDLIB and any(_defines(d, name) for d in self.dirs)
        return known

    def _import(
        self,
        name: str,
        globals: Optional[Dict[str, Any]] = None,
        locals: Optional[Dict[str, Any]] = None,
        fromlist: Sequence[str] = (),
        level: int = 0,
    ) -> types.ModuleType:
        if level == 0:
            top = name.partition(".")[0]
            if self._is_sibling(top):
                module = _ORIGINAL_IMPORT(f"{self.package}.{name}", globals, locals, fromlist, 0)
                return module if fromlist else sys.modules[f"{self.package}.{top}"]
        return _ORIGINAL_IMPORT(name, globals, locals, fromlist, level)

    def import_file(self, path: pathlib.Path) -> types.ModuleType:
        """Run ``path`` (the version's model file) as ``<package>.<stem>``; its exception propagates."""
        fullname = f"{self.package}.{path.stem}"
        loader = _IsolatedLoader(fullname, str(path), self)
        spec = importlib.util.spec_from_file_location(fullname, path, loader=loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[fullname] = module
        try:
            loader.exec_module(module)
        except BaseException:
            sys.modules.pop(fullname, None)
            raise
        return module

    def close(self) -> None:
        """Forget the namespace and every module imported under it."""
        prefix = self.package + "."
        with _LOCK:
            _NAMESPACES.pop(self.token, None)
            for name in [n for n in sys.modules if n == self.package or n.startswith(prefix)]:
                sys.modules.pop(name, None)
            root = sys.modules.get(MODEL_PACKAGE)
            if root is not None and hasattr(root, self.token):
                delattr(root, self.token)


def _defines(directory: str, name: str) -> bool:
    """``directory`` holds module ``name``: ``name.py`` or a package folder ``name/__init__.py``."""
    base = pathlib.Path(directory)
    return (base / f"{name}.py").is_file() or (base / name / "__init__.py").is_file()


__all__ = ["Namespace"]
