"""Runs every example end to end: server script as a subprocess on free ports, client script against it, SIGINT.

Mirrors PyTriton's L0_example_* tests, except that the server must exit with 0 after SIGINT (PyTriton accepts
0 or -2).
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import List, NamedTuple, Optional

import pytest
from example_support import example_env, free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples"

READY_TIMEOUT_S = 60.0
CLIENT_TIMEOUT_S = 120.0
EXIT_TIMEOUT_S = 20.0
# serve() logs this (PyTriton's wording) once its SIGINT handler is installed; a SIGINT sent earlier would be a
# KeyboardInterrupt somewhere in bind() instead of a clean stop.
SERVING_MARKER = "Press CTRL+C"


class ServerClientExample(NamedTuple):
    name: str
    requires: Optional[str] = None  # a module the example needs; the test skips when it is missing


SERVER_CLIENT_EXAMPLES = [
    ServerClientExample("add_sub_python"),
    ServerClientExample("add_sub_python_with_optional"),
    ServerClientExample("docker"),  # its server.py, as the image runs it (the Dockerfile: tests/deploy)
    ServerClientExample("identity_python"),
    ServerClientExample("image_classification"),  # a model repository: label_filename, FORMAT_NCHW, class_count
    ServerClientExample("linear_random_pytorch", requires="torch"),
    ServerClientExample("multi_instance"),
    ServerClientExample("multiple_models_python"),
    ServerClientExample("use_parameters_and_headers"),
]
SINGLE_SCRIPT_EXAMPLES = {"background_mode": "add_sub_background.py"}


class StreamingClient(NamedTuple):
    example: str
    script: str  # a Python client in the example's directory; streams need gRPC, so it gets the grpc:// URL


# Decoupled (streaming) examples: their Python clients are gRPC only, their curl clients use HTTP generate_stream.
STREAMING_CLIENTS = [
    StreamingClient("streaming_text", "client.py"),
    StreamingClient("streaming_text", "client_tritonclient.py"),
    StreamingClient("vllm_style", "client.py"),
]
STREAMING_CURL_EXAMPLES = ["streaming_text", "vllm_style"]


class ServerProcess:
    """An example's server.py started on free ports; output is collected by a reader thread."""

    def __init__(self, example_dir: Path) -> None:
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        command = [
            sys.executable,
            "server.py",
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
            "--metrics-port",
            str(self.metrics_port),
        ]
        self.lines: List[str] = []
        self.serving = threading.Event()
        self.proc = subprocess.Popen(
            command,
            cwd=example_dir,
            env=example_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="example-server-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if SERVING_MARKER in line:
                self.serving.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def wait_ready(self) -> None:
        """Poll /v2/health/ready until 200 and serve() has started, the process exits, or READY_TIMEOUT_S passes.

        Health alone is not enough: the server is ready (no models yet) as soon as `with Triton()` starts it, before
        bind(); a client without a readiness wait of its own (curl) would get 404. serve() logs SERVING_MARKER
        after every bind().
        """
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode} before it was ready:\n{self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=2) as response:
                    if response.status == 200 and self.serving.is_set():
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)  # polling interval, not an assertion
        pytest.fail(f"server not ready after {READY_TIMEOUT_S} s:\n{self._tail()}")

    def interrupt_and_wait(self) -> int:
        """SIGINT the server we started (once it is serving) and return its exit code."""
        assert self.serving.wait(READY_TIMEOUT_S), f"server never logged {SERVING_MARKER!r}:\n{self._tail()}"
        self.proc.send_signal(signal.SIGINT)
        try:
            returncode = self.proc.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server still running {EXIT_TIMEOUT_S} s after SIGINT:\n{self._tail()}")
        self._close_output()
        return returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_output()

    def _close_output(self) -> None:
        self._reader.join(5.0)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()

    def _tail(self, lines: int = 60) -> str:
        return "".join(self.lines[-lines:])


def _run_script(example_dir: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, script, *args],
            cwd=example_dir,
            env=example_env(),
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script} did not finish in {CLIENT_TIMEOUT_S} s; output:\n{exc.stdout}\n{exc.stderr}")


def _skip_if_missing(module: Optional[str], example: str) -> None:
    if module is not None and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: the {example} example needs it (pip install {module})")


@pytest.fixture
def example_server(request):
    """Factory: start an example's server; it is killed at teardown if the test did not stop it."""
    servers: List[ServerProcess] = []

    def start(name: str) -> ServerProcess:
        server = ServerProcess(EXAMPLES_DIR / name)
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("example", SERVER_CLIENT_EXAMPLES, ids=[e.name for e in SERVER_CLIENT_EXAMPLES])
def test_server_client_example(example: ServerClientExample, protocol: str, example_server) -> None:
    _skip_if_missing(example.requires, example.name)
    server = example_server(example.name)
    url = server.http_url if protocol == "http" else server.grpc_url

    client = _run_script(EXAMPLES_DIR / example.name, "client.py", "--url", url, "--init-timeout-s", "30")

    assert client.returncode == 0, (
        f"client failed with {client.returncode}\n--- client stdout:\n{client.stdout}\n--- client stderr:\n"
        f"{client.stderr}\n--- server output:\n{server.output}"
    )
    returncode = server.interrupt_and_wait()
    assert returncode == 0, f"server exited with {returncode} after SIGINT:\n{server.output}"
    assert "Traceback" not in server.output, server.output


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(SINGLE_SCRIPT_EXAMPLES))
def test_single_script_example(name: str) -> None:
    result = _run_script(EXAMPLES_DIR / name, SINGLE_SCRIPT_EXAMPLES[name])
    assert result.returncode == 0, f"{name} failed with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_add_sub_with_curl(example_server) -> None:
    server = example_server("add_sub_python")

    result = subprocess.run(
        ["bash", "client_curl.sh", server.http_url],
        cwd=EXAMPLES_DIR / "add_sub_python",
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )

    assert result.returncode == 0, f"curl client failed:\n{result.stdout}\n{result.stderr}\n{server.output}"
    response = json.loads(result.stdout)
    assert response["model_name"] == "AddSub"
    assert response["id"] == "curl-1"
    outputs = {output["name"]: output for output in response["outputs"]}
    assert set(outputs) == {"add", "sub"}
    for name, expected in (("add", [4.0, 7.0]), ("sub", [-2.0, -3.0])):
        assert outputs[name]["datatype"] == "FP32"
        assert outputs[name]["shape"] == [2, 1]
        assert outputs[name]["data"] == expected  # JSON output data is flat, in row-major order
    assert server.interrupt_and_wait() == 0, server.output


# --- streaming (decoupled) examples -----------------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize("client", STREAMING_CLIENTS, ids=[f"{c.example}-{c.script}" for c in STREAMING_CLIENTS])
def test_streaming_example(client: StreamingClient, example_server) -> None:
    server = example_server(client.example)

    example_dir = EXAMPLES_DIR / client.example
    result = _run_script(example_dir, client.script, "--url", server.grpc_url, "--init-timeout-s", "30")

    assert result.returncode == 0, (
        f"{client.script} failed with {result.returncode}\n--- client stdout:\n{result.stdout}\n--- client stderr:\n"
        f"{result.stderr}\n--- server output:\n{server.output}"
    )
    assert "OK" in result.stderr + result.stdout  # the client got to its last line
    returncode = server.interrupt_and_wait()
    assert returncode == 0, f"server exited with {returncode} after SIGINT:\n{server.output}"
    assert "Traceback" not in server.output, server.output


def _sse_events(stdout: str) -> List[dict]:
    """The JSON payloads of the `data: {...}` lines a curl client printed."""
    return [json.loads(line[len("data: ") :]) for line in stdout.splitlines() if line.startswith("data: ")]


def _run_curl_client(name: str, server: ServerProcess) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", "client_curl.sh", server.http_url],
        cwd=EXAMPLES_DIR / name,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert result.returncode == 0, f"curl client failed:\n{result.stdout}\n{result.stderr}\n{server.output}"
    return result


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_streaming_text_with_curl(example_server) -> None:
    server = example_server("streaming_text")

    result = _run_curl_client("streaming_text", server)

    # Checked here too, independently of the script's own check: one SSE event per word, in order.
    events = _sse_events(result.stdout)
    expected = "how I wonder what you are up above the world so high like a diamond in the sky".split()
    assert [event["token"] for event in events] == expected
    assert all(event["id"] == "curl-1" and event["model_name"] == "FakeLLM" for event in events)
    assert server.interrupt_and_wait() == 0, server.output
    assert "Traceback" not in server.output, server.output


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_vllm_style_with_curl(example_server) -> None:
    server = example_server("vllm_style")

    result = _run_curl_client("vllm_style", server)

    answer = json.loads(result.stdout.splitlines()[0])  # /generate: one plain JSON object
    assert answer == {"model_name": "vllm_style", "model_version": "1", "text": "Once upon a time lorem ipsum dolor"}
    assert [event["text"] for event in _sse_events(result.stdout)] == [
        "Once upon a time lorem",
        "Once upon a time lorem ipsum",
        "Once upon a time lorem ipsum dolor",
    ]
    # /generate needs exactly one response: asking this model to stream there is a 400, and the server carries on.
    body = json.dumps({"prompt": "x", "max_tokens": 2, "stream": True}).encode()
    request = urllib.request.Request(f"{server.http_url}/v2/models/vllm_style/generate", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 400
    assert "exactly 1 response" in json.loads(error.value.read())["error"]
    _run_curl_client("vllm_style", server)
    assert server.interrupt_and_wait() == 0, server.output
    assert "Traceback" not in server.output, server.output


OWN_TEST_MODULES = {
    "model_repository": "test_model_repository_example.py",
    "triton_client_examples": "test_triton_client_examples.py",
}


def test_every_example_is_exercised() -> None:
    """A new examples/ directory must be added to the lists above (and have a README)."""
    directories = {p.name for p in EXAMPLES_DIR.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    covered = {e.name for e in SERVER_CLIENT_EXAMPLES} | set(SINGLE_SCRIPT_EXAMPLES)
    covered |= {c.example for c in STREAMING_CLIENTS} | set(STREAMING_CURL_EXAMPLES)
    # examples with a test module of their own
    for name, module in OWN_TEST_MODULES.items():
        assert (pathlib.Path(__file__).parent / module).is_file(), f"examples/{name} has no {module}"
        covered.add(name)
    assert directories == covered
    for name in directories:
        assert (EXAMPLES_DIR / name / "README.md").is_file(), f"examples/{name} has no README.md"
    for example in SERVER_CLIENT_EXAMPLES:
        assert (EXAMPLES_DIR / example.name / "server.py").is_file()
        assert (EXAMPLES_DIR / example.name / "client.py").is_file()
    for client in STREAMING_CLIENTS:
        assert (EXAMPLES_DIR / client.example / "server.py").is_file()
        assert (EXAMPLES_DIR / client.example / client.script).is_file()
    for name in STREAMING_CURL_EXAMPLES:
        assert (EXAMPLES_DIR / name / "client_curl.sh").is_file()
