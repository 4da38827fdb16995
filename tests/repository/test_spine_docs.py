"""docs/cli.md runs as written: its python block makes the repository, its serve lines start the CLI (with
loopback ports picked by the OS added at the end, which argparse lets win), its curl lines get answers."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from test_spine_cli import LOOPBACK, PORTS, _env, _Server

pytest.importorskip("pytriton_lite.repository.backends.python", reason="the python backend is not there yet")

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "cli.md"
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.DOTALL)


def _blocks(kind):
    return [code for lang, code in BLOCK.findall(DOC.read_text()) if lang == kind]


def _lines(code):
    return [line.strip() for line in code.replace("\\\n", " ").splitlines() if line.strip()]


def _run_session(lines, tmp_path):
    """Run one bash block: python lines as they are, the serve line as a server, curl lines against it."""
    server = None
    answers = []
    try:
        for line in lines:
            if line.startswith("python -m pytriton_lite serve"):
                argv = line.split()[1:]
                server = _Server([sys.executable, *argv, *PORTS, *LOOPBACK], _env(), cwd=tmp_path)
                port = int(server.wait_for(r"Started HTTPService at 127\.0\.0\.1:(\d+)").group(1))
            elif line.startswith("python "):
                subprocess.run(line, shell=True, cwd=tmp_path, check=True, timeout=60)
            elif line.startswith("curl "):
                assert server is not None
                command = line.replace("localhost:8000", f"127.0.0.1:{port}") + " -w ' HTTP%{http_code}'"
                out = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60)
                assert out.returncode == 0, out.stderr
                body, _, code = out.stdout.rpartition(" HTTP")
                answers.append((line, body, code))
    finally:
        if server is not None:
            assert server.stop() == 0
    return answers


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_cli_page_runs_as_written(tmp_path):
    (script,) = [code for code in _blocks("python") if not code.startswith("# fragment")]
    (tmp_path / "make_repository.py").write_text(script)
    serve_block, curl_block, control_block = _blocks("bash")
    answers = _run_session(_lines(serve_block) + _lines(curl_block), tmp_path)
    assert [code for _, _, code in answers] == ["200", "200", "200", "200"]
    config = json.loads(answers[1][1])
    assert config["instance_group"][0]["count"] == 2 and config["dynamic_batching"]["preferred_batch_size"] == [8]
    assert json.loads(answers[2][1])["outputs"][0]["data"] == [1, 2, 3]
    assert json.loads(answers[3][1]) == [{"name": "identity", "version": "1", "state": "READY"}]
    control = _run_session(_lines(control_block), tmp_path)
    assert [code for _, _, code in control] == ["200", "200", "200"]
