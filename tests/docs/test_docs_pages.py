"""Every python block of the docs pages not covered by a feature test runs as written.

Pages whose blocks run elsewhere: decorators.md (tests/unit/test_decorators.py), clients.md
(tests/integration/test_clients.py), metrics.md (tests/integration/test_metrics.py), streaming.md
(tests/integration/test_docs_streaming.py). Blocks defining ``test_*`` functions run under pytest (they use the
plugin's fixtures); the others run as scripts. A block whose first line starts with ``# (continued)`` runs after
the page's earlier blocks, in the same script (a session spread over several blocks). A block whose first line is
``# fragment`` or ``# bind() snippet`` shows calls out of context and is not run.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
PAGES = ["quickstart.md", "binding.md", "grpc.md", "protocol.md", "testing.md", "operations.md", "limits.md"]
PAGES += ["trace_logging.md"]
PAGES += ["security.md"]
PAGES += ["shared_memory.md"]
PAGES += ["classification.md"]
PAGES += ["scaling.md"]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks():
    for page in PAGES:
        session = ""
        for index, code in enumerate(BLOCK.findall((DOCS / page).read_text()), 1):
            first = code.lstrip().split("\n", 1)[0]
            if first.startswith(("# bind() snippet", "# fragment")):
                continue
            session = session + "\n" + code if first.startswith("# (continued)") else code
            yield pytest.param(page, session, id=f"{page}#{index}")


@pytest.mark.parametrize("page,code", list(_blocks()))
def test_block_runs(page, code, tmp_path):
    if re.search(r"^def test_", code, re.MULTILINE):
        script = tmp_path / "test_block.py"
        script.write_text(code)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    else:
        script = tmp_path / "block.py"
        script.write_text(code)
        cmd = [sys.executable, str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, f"{page} block failed:\n{code}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
