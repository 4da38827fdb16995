"""The top-level package: ``__all__`` is exactly the public names, each importable, each visible to type checkers."""

from __future__ import annotations

import ast
import importlib
import pathlib
import subprocess
import sys

import pytriton_lite

INIT = pathlib.Path(pytriton_lite.__file__)


def _type_checking_names() -> set:
    tree = ast.parse(INIT.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            for child in ast.walk(node):
                if isinstance(child, ast.ImportFrom):
                    names.update(alias.asname or alias.name for alias in child.names)
    return names


def test_all_is_exactly_the_lazy_exports_and_the_version():
    exports = set(pytriton_lite._EXPORTS)
    assert set(pytriton_lite.__all__) == exports | {"__version__"}
    assert len(pytriton_lite.__all__) == len(set(pytriton_lite.__all__))


def test_every_public_name_resolves_to_its_module_object():
    for name, module in pytriton_lite._EXPORTS.items():
        assert getattr(pytriton_lite, name) is getattr(importlib.import_module(module), name), name


def test_type_checkers_see_every_lazy_name():
    assert _type_checking_names() == set(pytriton_lite._EXPORTS)


def test_unknown_names_raise_attribute_error():
    try:
        pytriton_lite.NoSuchThing  # noqa: B018 - the access is the test
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_stays_lazy():
    code = "import sys, pytriton_lite; print('pytriton_lite.triton' in sys.modules, 'grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]
