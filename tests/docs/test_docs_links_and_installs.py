"""The Markdown documents stay true to the repository (issue 8, section 4).

- Every package an install line names (``pip install ...`` in README.md or docs/*.md, in a code block or inline
  code) is this project, one of its extras, or a dependency / optional dependency in pyproject.toml; a pinned
  version must satisfy what pyproject.toml asks for.
- No link leaves the repository: a relative link resolves to a file of the checkout (anchors are not checked),
  and an absolute http(s) link must be on the small allow-list below.

pyproject.toml is read with tomllib (Python >= 3.11), else tomli, else a minimal reader of the few keys used
here, so the test also runs on Python 3.9.
"""

from __future__ import annotations

import pathlib
import re
import shlex
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple
from urllib.parse import unquote

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The only places outside the repository a document may link to, as references for what this project
# re-implements: PyTriton (the Python API) and Triton Inference Server (the protocol and its behaviour).
ALLOWED_EXTERNAL = (
    "https://github.com/triton-inference-server/pytriton",
    "https://github.com/triton-inference-server/server",
)


# --- pyproject.toml -----------------------------------------------------------------------------------


def _toml_loader() -> Any:
    try:
        import tomllib

        return tomllib
    except ImportError:
        pass
    try:
        import tomli

        return tomli
    except ImportError:
        return None


_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'')


def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` inside a quoted string is kept)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == "\\" and quote == '"':
                continue
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:index]
    return line


def minimal_pyproject(text: str) -> Dict[str, Any]:
    """``project.name``, ``project.dependencies`` and ``project.optional-dependencies`` of a pyproject.toml.

    Enough TOML for this file's shape: ``[table]`` headers, ``key = "string"`` and ``key = [strings]`` (one
    line or several). Everything else is skipped.
    """
    project: Dict[str, Any] = {}
    table = ""
    pending: Optional[Tuple[str, str, List[str]]] = None  # (table, key, collected lines) of an open array
    for raw in text.splitlines():
        line = _strip_comment(raw).strip()
        if pending is not None:
            pending[2].append(line)
            if "]" not in _STRING.sub("", line):  # a ']' inside a string does not close the array
                continue
            table_name, key, lines = pending
            pending = None
            _store(project, table_name, key, [a or b for a, b in _STRING.findall(" ".join(lines))])
            continue
        if not line:
            continue
        header = re.fullmatch(r"\[([^\[\]]+)\]", line)
        if header:
            table = header.group(1).strip()
            continue
        key, eq, value = line.partition("=")
        if not eq:
            continue
        key, value = key.strip().strip("\"'"), value.strip()
        if value.startswith("["):
            if "]" in _STRING.sub("", value):
                _store(project, table, key, [a or b for a, b in _STRING.findall(value)])
            else:
                pending = (table, key, [value])
        elif _STRING.fullmatch(value):
            match = _STRING.fullmatch(value)
            assert match is not None
            _store(project, table, key, match.group(1) or match.group(2))
    return {"project": project}


def _store(project: Dict[str, Any], table: str, key: str, value: Any) -> None:
    if table == "project" and key in ("name", "dependencies"):
        project[key] = value
    elif table == "project.optional-dependencies":
        project.setdefault("optional-dependencies", {})[key] = value


def _pyproject() -> Dict[str, Any]:
    path = ROOT / "pyproject.toml"
    loader = _toml_loader()
    if loader is not None:
        with path.open("rb") as handle:
            return loader.load(handle)
    data = minimal_pyproject(path.read_text())
    if "name" not in data["project"]:
        pytest.skip("no TOML parser available (tomllib, tomli) and the minimal reader found no [project] name")
    return data


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*(.*)")


def _parse_requirement(text: str) -> Tuple[str, Set[str], str]:
    """``"tritonclient[http,grpc]>=2.40; python_version >= '3.10'"`` -> (name, extras, version specifier)."""
    match = _REQUIREMENT.fullmatch(text.split(";", 1)[0])
    assert match is not None, f"cannot parse requirement {text!r}"
    name, extras, spec = match.groups()
    return _canonical(name), {e.strip() for e in (extras or "").split(",") if e.strip()}, spec.strip()


def _declared() -> Tuple[str, Set[str], Dict[str, List[Tuple[Set[str], str]]]]:
    """(project name, its extras, {dependency: [(extras, specifier), ...]}) from pyproject.toml."""
    project = _pyproject()["project"]
    optional = project.get("optional-dependencies", {})
    requirements: Dict[str, List[Tuple[Set[str], str]]] = {}
    for text in [*project.get("dependencies", []), *(r for group in optional.values() for r in group)]:
        name, extras, spec = _parse_requirement(text)
        requirements.setdefault(name, []).append((extras, spec))
    return _canonical(project["name"]), set(optional), requirements


# --- install lines ------------------------------------------------------------------------------------

_INSTALL = re.compile(r"(?:^|[\s`(;&|])(?:uv\s+)?(?:python3?\s+-m\s+)?pip3?\s+install\s+([^`\n]*)")
# pip options that take a value (the value is not a package)
_VALUE_OPTIONS = {
    "-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
    "-t", "--target", "--prefix", "--root", "--src", "--platform", "--python-version", "--implementation",
    "--abi", "--upgrade-strategy", "--cache-dir", "--config-settings", "-C", "--progress-bar",
}  # fmt: skip


def install_targets(line: str) -> List[str]:
    """The packages / paths after ``pip install`` in ``line`` (options and shell comments dropped)."""
    targets: List[str] = []
    for match in _INSTALL.finditer(line):
        command = match.group(1).split("#", 1)[0]
        command = re.split(r"\s(?:&&|\|\||;|\|)\s", command, maxsplit=1)[0]
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word in _VALUE_OPTIONS:
                skip = True
            elif word.startswith("-"):
                continue  # a flag (-e/--editable take the target that follows, which is kept)
            else:
                targets.append(word)
    return targets


def _install_lines() -> Iterator[Tuple[str, str]]:
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for target in install_targets(line):
                yield f"{page.relative_to(ROOT)}:{number}", target


def _satisfies(version: str, spec: str) -> Optional[bool]:
    """Whether ``version`` meets ``spec``; None when ``packaging`` is not installed."""
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        return None
    return SpecifierSet(spec).contains(version, prereleases=True)


def check_install_target(target: str, project: str, extras: Set[str], deps: Dict[str, Any]) -> Optional[str]:
    """A message when ``target`` installs something pyproject.toml does not declare, else None."""
    path = re.fullmatch(r"(\.{1,2}(?:/[^\[]*)?|/[^\[]*)(?:\[([^\]]*)\])?", target)
    if path is not None:  # a local path: it must be this checkout, with extras it declares
        where = (ROOT / path.group(1)).resolve()
        if where != ROOT:
            return f"{target!r} is not the repository root"
        unknown = {e.strip() for e in (path.group(2) or "").split(",") if e.strip()} - extras
        return f"{target!r} names extras pyproject.toml does not declare: {sorted(unknown)}" if unknown else None
    name, wanted_extras, spec = _parse_requirement(target)
    if name == project:
        unknown = wanted_extras - extras
        return f"{target!r} names extras pyproject.toml does not declare: {sorted(unknown)}" if unknown else None
    if name not in deps:
        return f"{target!r}: {name} is not a dependency or optional dependency in pyproject.toml"
    declared_extras = set().union(*(e for e, _ in deps[name]))
    if not wanted_extras <= declared_extras:
        return f"{target!r} asks for extras of {name} that pyproject.toml does not: {sorted(wanted_extras)}"
    pin = re.fullmatch(r"===?\s*([0-9][^,\s]*)", spec)
    if pin is not None:
        verdicts = [_satisfies(pin.group(1), s) for _, s in deps[name]]
        if False in verdicts and True not in verdicts:
            declared = " or ".join(s or "(any)" for _, s in deps[name])
            return f"{target!r}: pyproject.toml asks for {name} {declared}"
    return None


def test_install_lines_are_found():
    """Guards the scanner: the quickstart's install block is seen."""
    found = [target for where, target in _install_lines() if where.startswith("docs/quickstart.md")]
    assert "." in found and ".[test]" in found


def test_install_lines_name_only_declared_packages():
    project, extras, deps = _declared()
    problems = []
    for where, target in _install_lines():
        message = check_install_target(target, project, extras, deps)
        if message:
            problems.append(f"{where}: {message}")
    assert problems == []


@pytest.mark.parametrize(
    "line,ok",
    [
        ('pip install -e ".[test]"    # for development', True),
        ("`python -m pip install pytriton-lite[torch]`", True),
        ("pip install torch==2.13.0", True),
        ("pip install numpy prometheus_client", True),
        ("pip install flask", False),
        ("pip install torch==1.13.0", False),
        ('pip install ".[cuda]"', False),
        ("pip install tritonclient[all]", False),
        ("pip install ../elsewhere", False),
    ],
)
def test_install_check_itself(line, ok):
    project, extras, deps = _declared()
    targets = install_targets(line)
    assert targets
    messages = [check_install_target(t, project, extras, deps) for t in targets]
    if _satisfies("1.0", ">=0") is None and "==" in line:
        pytest.skip("packaging is not installed: pins are not compared")
    assert (not any(messages)) is ok, messages


def test_minimal_reader_agrees_with_a_toml_parser():
    """The Python 3.9 fallback reads pyproject.toml as tomllib / tomli do (for the keys used here)."""
    loader = _toml_loader()
    if loader is None:
        pytest.skip("no TOML parser to compare with")
    with (ROOT / "pyproject.toml").open("rb") as handle:
        full = loader.load(handle)["project"]
    mini = minimal_pyproject((ROOT / "pyproject.toml").read_text())["project"]
    assert mini["name"] == full["name"]
    assert mini["dependencies"] == full["dependencies"]
    assert mini["optional-dependencies"] == full["optional-dependencies"]


# --- links --------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]*:[^>\s]+)>")
_HTML_ATTR = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_BARE_URL = re.compile(r"(?<![(<\"'=])\b(?:https?|ftp)://[^\s)>\]]+|\bwww\.[^\s)>\]]+")


def links(markdown: str) -> List[str]:
    """Every link target of a Markdown page; code blocks, code spans and HTML comments are not prose."""
    prose = _HTML_COMMENT.sub(" ", _FENCE.sub(" ", markdown))
    prose = _CODE_SPAN.sub(" ", prose)
    found = _INLINE_LINK.findall(prose) + _REFERENCE.findall(prose) + _AUTOLINK.findall(prose)
    found += _HTML_ATTR.findall(prose)
    without_marked = _AUTOLINK.sub(" ", _INLINE_LINK.sub(" ", _REFERENCE.sub(" ", prose)))
    # GitHub turns bare URLs into links too, without the punctuation that ends a sentence
    found += [url.rstrip(".,;:!?'\"") for url in _BARE_URL.findall(without_marked)]
    return [target for target in found if target]


def _allowed_external(url: str) -> bool:
    return any(url == base or url.startswith((base + "/", base + "#")) for base in ALLOWED_EXTERNAL)


def check_link(page: pathlib.Path, target: str) -> Optional[str]:
    """A message when ``target`` (a link on ``page``) leaves the repository or points at nothing."""
    if target.startswith("#"):
        return None  # an anchor on the same page
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target) or target.startswith(("//", "www.")):
        return None if _allowed_external(target) else f"{target} leaves the repository (not on the allow-list)"
    path = unquote(target.split("#", 1)[0].split("?", 1)[0])
    resolved = (ROOT / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
    resolved = resolved.resolve()
    if resolved != ROOT and ROOT not in resolved.parents:
        return f"{target} points outside the repository"
    if not resolved.exists():
        return f"{target} does not exist"
    return None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_in_the_repository(page):
    problems = [message for target in links(page.read_text(encoding="utf-8")) if (message := check_link(page, target))]
    assert problems == []


def test_link_check_itself():
    page = ROOT / "docs" / "index.md"
    text = (
        "[ok](quickstart.md#install) [up](../README.md) [anchor](#x) ![img](missing.png) "
        "[PyTriton](https://github.com/triton-inference-server/pytriton) [far](https://example.com/x) "
        "<https://example.org> see https://example.net/y, `https://in.code/span` [out](../../etc/passwd)\n"
        "```\n[in a block](nowhere.md)\n```\n[ref]: https://example.com/ref\n"
    )
    verdicts = {target: check_link(page, target) is None for target in links(text)}
    assert verdicts == {
        "quickstart.md#install": True,
        "../README.md": True,
        "#x": True,
        "missing.png": False,
        "https://github.com/triton-inference-server/pytriton": True,
        "https://example.com/x": False,
        "https://example.org": False,
        "https://example.net/y": False,
        "../../etc/passwd": False,
        "https://example.com/ref": False,
    }
