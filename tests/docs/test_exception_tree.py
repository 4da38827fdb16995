"""The exception tree drawn in ``pytriton_lite/exceptions.py``'s docstring, and the error table of
docs/architecture.md, are the real ones.

Each tree line is ``<marker> ClassName  <http_status>  <grpc_code>``; indentation gives the depth. The drawing
must name every class of ``exceptions.__all__`` once, under its real base class, with its real statuses. The
architecture page has one row per ``InferenceError`` subclass with its HTTP status, gRPC code and metric reason.
"""

from __future__ import annotations

import pathlib
import re
from typing import Dict, List, Tuple

from pytriton_lite import exceptions

_LINE = re.compile(r"^(?P<indent>\s*)[*x+\-~.]\s+(?P<name>[A-Z]\w+)\s+(?P<http>\d{3})\s+(?P<grpc>[A-Z_]+)\s*$")


def _drawn() -> List[Tuple[str, str, int, str]]:
    """(name, parent name, http status, grpc code) for each line of the drawing, parents from indentation."""
    doc = exceptions.__doc__ or ""
    rows = []
    stack: List[Tuple[int, str]] = []  # (indent, name) of the open ancestors
    for line in doc.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        indent = len(match.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else "Exception"
        rows.append((match.group("name"), parent, int(match.group("http")), match.group("grpc")))
        stack.append((indent, match.group("name")))
    return rows


def test_the_docstring_draws_a_tree():
    assert len(_drawn()) >= 10


def test_the_tree_names_every_exception_once():
    names = [name for name, _, _, _ in _drawn()]
    classes = [n for n in exceptions.__all__ if isinstance(getattr(exceptions, n), type)]
    assert sorted(names) == sorted(classes)


def test_the_tree_matches_the_classes():
    drawn: Dict[str, Tuple[str, int, str]] = {name: (parent, http, grpc) for name, parent, http, grpc in _drawn()}
    real = {}
    for name in drawn:
        cls = getattr(exceptions, name, None)
        assert isinstance(cls, type), f"{name} is drawn but is not a class of pytriton_lite.exceptions"
        real[name] = (cls.__bases__[0].__name__, int(cls.http_status), str(cls.grpc_code))
    assert drawn == real


def test_decoupled_model_error_sits_under_unsupported_error():
    assert ("DecoupledModelError", "UnsupportedError") in [(n, p) for n, p, _, _ in _drawn()]


def test_the_architecture_error_table_matches_the_classes():
    """docs/architecture.md section 6 has a row per request-time error with its real statuses and reason."""
    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
    rows = {}
    for line in page.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"`[A-Z]\w+`", cells[0]):
            rows[cells[0].strip("`")] = (cells[2], cells[3].strip("`"), cells[4])
    expected = {
        name: (str(cls.http_status), str(cls.grpc_code), str(cls.reason))
        for name, cls in vars(exceptions).items()
        if isinstance(cls, type) and issubclass(cls, exceptions.InferenceError) and cls is not exceptions.InferenceError
    }
    assert rows == expected
