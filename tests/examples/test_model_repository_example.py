"""examples/model_repository end to end: build its models into a copy, serve the copy with
``python -m pytriton_lite serve --model-repository``, answer it with client.py (tritonclient HTTP and gRPC) and
with the README's curl commands, run its pytest-plugin example, and stop the server with SIGINT."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, List

import pytest
from example_support import example_env, free_ports

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")


REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "model_repository"
MODELS = ["mnist_cnn", "mnist_ensemble", "mnist_mlp", "preprocess", "text_generation"]
READY_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 120.0


def _run(cwd: Path, *command: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            list(command), cwd=cwd, env=example_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{command} did not finish in {RUN_TIMEOUT_S} s:\n{exc.stdout}\n{exc.stderr}")


class Server:
    """``python -m pytriton_lite serve`` on the example's copy, on fixed free loopback ports."""

    def __init__(self, workdir: Path) -> None:
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        command = [sys.executable, "-m", "pytriton_lite", "serve", "--model-repository", "models"]
        for front, port in (("http", self.http_port), ("grpc", self.grpc_port), ("metrics", self.metrics_port)):
            command += [f"--{front}-port", str(port), f"--{front}-address", "127.0.0.1"]
        self.lines: List[str] = []
        self.proc = subprocess.Popen(
            command, cwd=workdir, env=example_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._reader = threading.Thread(target=self._read, name="model-repository-server-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.output}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=2) as response:
                    if response.status == 200 and "Press CTRL+C" in self.output:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)  # polling interval
        pytest.fail(f"server not ready after {READY_TIMEOUT_S} s:\n{self.output}")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(5.0)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example (without generated files) with its models built."""
    copy = tmp_path_factory.mktemp("model_repository_example") / "model_repository"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("model.onnx", "model.pt", "requests", "__pycache__"))
    result = _run(copy, sys.executable, "build_models.py")
    assert result.returncode == 0, f"build_models.py failed:\n{result.stdout}\n{result.stderr}"
    return copy


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[Server]:
    started = Server(workdir)
    try:
        started.wait_ready()
        yield started
    finally:
        started.close()


def test_configs_look_like_the_tutorials() -> None:
    configs = {name: (EXAMPLE / "models" / name / "config.pbtxt").read_text() for name in MODELS}
    assert 'platform: "onnxruntime_onnx"' in configs["mnist_mlp"]
    assert 'platform: "pytorch_libtorch"' in configs["mnist_cnn"]
    assert "INPUT__0" in configs["mnist_cnn"] and "OUTPUT__0" in configs["mnist_cnn"]
    assert 'backend: "python"' in configs["text_generation"] and 'backend: "python"' in configs["preprocess"]
    assert re.search(r"instance_group \[ \{ count: 2, kind: KIND_CPU \} \]", configs["text_generation"])
    assert "dynamic_batching" in configs["text_generation"]
    assert 'platform: "ensemble"' in configs["mnist_ensemble"]
    ignored = (EXAMPLE / ".gitignore").read_text()
    assert "models/mnist_mlp/1/" in ignored and "models/mnist_cnn/1/" in ignored


def test_every_model_loads(server: Server) -> None:
    request = urllib.request.Request(f"{server.http_url}/v2/repository/index", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        index = json.loads(response.read())
    assert [(row["name"], row["state"]) for row in index] == [(name, "READY") for name in MODELS]
    for name in MODELS:
        assert f"successfully loaded '{name}' version 1" in server.output
    assert "(backend python, 2 instances)" in server.output  # text_generation's instance_group count: 2


def test_client_py_http_and_grpc(server: Server, workdir: Path) -> None:
    result = _run(
        workdir,
        sys.executable,
        "client.py",
        "--http-url",
        f"127.0.0.1:{server.http_port}",
        "--grpc-url",
        f"127.0.0.1:{server.grpc_port}",
    )
    assert result.returncode == 0, f"client.py failed:\n{result.stdout}\n{result.stderr}\n{server.output}"
    assert "[http] text_generation" in result.stdout and "[grpc] text_generation" in result.stdout
    assert result.stdout.rstrip().endswith("OK")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_commands(server: Server, workdir: Path) -> None:
    readme = (EXAMPLE / "README.md").read_text()
    script = (EXAMPLE / "client_curl.sh").read_text()
    # client_curl.sh sends what the README shows
    for path in ("v2/models/text_generation/infer", "requests/mnist_mlp.json", "requests/mnist_cnn.json"):
        assert path in readme and path in script
    assert '"data": ["once upon"]' in readme and '"data": ["once upon"]' in script

    result = _run(workdir, "bash", "client_curl.sh", server.http_url)

    assert result.returncode == 0, f"curl failed:\n{result.stdout}\n{result.stderr}\n{server.output}"
    lines = result.stdout.splitlines()
    assert lines[0] == "200"
    assert [row["state"] for row in json.loads(lines[1])] == ["READY"] * len(MODELS)
    answers = [json.loads(line) for line in lines[2:]]
    assert answers[0]["outputs"][0]["data"] == ["once upon a time there was"]
    mlp, cnn, ensemble = answers[1:]
    assert mlp["outputs"][0]["shape"] == [1, 10] and cnn["outputs"][0]["shape"] == [1, 10]
    assert cnn["outputs"][0]["name"] == "OUTPUT__0"
    assert ensemble["model_name"] == "mnist_ensemble"
    assert ensemble["outputs"][0]["data"] == pytest.approx(mlp["outputs"][0]["data"], rel=1e-5, abs=1e-6)


def test_plugin_example(workdir: Path) -> None:
    result = _run(workdir, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_with_plugin.py")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "2 passed" in result.stdout


def test_sigint_stops_the_server(workdir: Path) -> None:
    started = Server(workdir)
    try:
        started.wait_ready()
        assert started.interrupt() == 0, started.output
    finally:
        started.close()
    assert "Traceback" not in started.output, started.output


def test_model_repository_page_blocks_run(tmp_path: Path) -> None:
    """docs/model_repository.md's python blocks (all but ``# fragment`` ones) run as written."""
    page = (REPO_ROOT / "docs" / "model_repository.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", page, re.DOTALL) if not b.lstrip().startswith("# fragment")]
    assert blocks
    for index, code in enumerate(blocks):
        script = tmp_path / f"block_{index}.py"
        script.write_text(code)
        result = _run(tmp_path, sys.executable, "-W", "error", str(script))
        assert result.returncode == 0, f"block {index} failed:\n{code}\n{result.stdout}\n{result.stderr}"
