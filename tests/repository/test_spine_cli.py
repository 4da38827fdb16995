"""``python -m pytriton_lite serve`` / ``pytriton-lite serve``: tritonserver's flags, the load log, the model
table and ready lines, SIGINT, and exit status 1 with tritonserver's message under --exit-on-error."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Dict, List

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from spine_support import identity_repository, use_fake_backends, write_model

from pytriton_lite.__main__ import _model_table, main, parser

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# the CLI with the spine's fake backend registered (the subprocess imports it from this folder)
BOOT = "import sys, spine_support; spine_support.register(); from pytriton_lite.__main__ import main; sys.exit(main())"
LOOPBACK = ["--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1"]
PORTS = ["--http-port=0", "--grpc-port=0", "--metrics-port=0"]


def test_flags_have_tritonserver_names_forms_and_defaults():
    args = parser().parse_args(["serve", "--model-repository=/m"])
    assert (args.model_control_mode, args.exit_on_error, args.strict_readiness) == ("none", True, True)
    assert (args.http_port, args.grpc_port, args.metrics_port, args.http_address) == (8000, 8001, 8002, "0.0.0.0")
    assert (args.repository_poll_secs, args.load_model, args.allow_metrics) == (15, None, True)
    args = parser().parse_args(
        [
            "serve",
            "--model-repository",
            "/m",
            "--model-control-mode=explicit",
            "--load-model=a",
            "--load-model",
            "b",
            "--exit-on-error",
            "false",
            "--strict-readiness=0",
            "--allow-grpc=false",
            "--allow-metrics",
            "--repository-poll-secs=2",
            "--log-verbose=1",
        ]
    )
    assert args.load_model == ["a", "b"] and args.model_repository == ["/m"]
    assert (args.exit_on_error, args.strict_readiness, args.allow_grpc, args.allow_metrics) == (
        False,
        False,
        False,
        True,
    )
    assert (args.repository_poll_secs, args.log_verbose) == (2, 1)
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--model-repository=/m", "--exit-on-error=maybe"])


def test_exit_on_error_exits_1_with_tritonserver_message(tmp_path, monkeypatch, capsys):
    use_fake_backends(monkeypatch)
    identity_repository(tmp_path, "good")
    write_model(tmp_path, "bad", 'backend: "pyhton"\n')
    status = main(["serve", f"--model-repository={tmp_path}", *PORTS, *LOOPBACK])
    assert status == 1
    assert capsys.readouterr().err.splitlines()[-1] == "error: creating server: Internal - failed to load all models"
    # the same repository twice: every name is in two repositories (not unique), so the start fails
    assert main(["serve", f"--model-repository={tmp_path}", f"--model-repository={tmp_path}", *PORTS, *LOOPBACK]) == 1
    assert main(["serve", f"--model-repository={tmp_path / 'nope'}", *PORTS, *LOOPBACK]) == 1
    assert "failed to stat file" in capsys.readouterr().err


def test_model_table():
    table = _model_table([{"name": "a", "version": "1", "state": "READY"}, {"name": "long_name"}])
    assert table.splitlines()[1] == "| Model     | Version | Status |"
    assert "| a         | 1       | READY  |" in table


class _Server:
    """A CLI process; its stderr is read on a thread; ``wait_for`` finds a line (bounded)."""

    def __init__(self, command: List[str], env: Dict[str, str], cwd: pathlib.Path = ROOT) -> None:
        self.process = subprocess.Popen(
            command, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: List[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = re.search(pattern, line)
                if match:
                    return match
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
            self._reader.join(10)
            if self.process.stderr is not None:
                self.process.stderr.close()


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def test_serve_logs_the_loads_serves_and_stops_on_sigint(tmp_path):
    identity_repository(tmp_path, "identity")
    write_model(tmp_path, "text_generation", 'backend: "python"\ninstance_group [{ count: 2, kind: KIND_CPU }]\n')
    server = _Server([sys.executable, "-c", BOOT, "serve", f"--model-repository={tmp_path}", *PORTS, *LOOPBACK], _env())
    try:
        http = int(server.wait_for(r"Started HTTPService at 127\.0\.0\.1:(\d+)").group(1))
        grpc_port = int(server.wait_for(r"Started GRPCInferenceService at 127\.0\.0\.1:(\d+)").group(1))
        server.wait_for(r"successfully loaded 'identity' version 1 \(backend python, 1 instances\) in \d+\.\d+ s")
        server.wait_for(r"successfully loaded 'text_generation' version 1 \(backend python, 2 instances\)")
        server.wait_for(r"pytriton_lite ready in")
        server.wait_for(r"\| identity\s+\| 1\s+\| READY\s+\|")
        body = json.dumps({"inputs": [{"name": "IN", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{http}/v2/models/identity/infer", data=body)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["outputs"][0]["data"] == [1, 2, 3]
        if shutil.which("curl"):
            out = subprocess.run(
                ["curl", "-s", "-X", "POST", f"http://127.0.0.1:{http}/v2/repository/index"],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            assert {row["name"] for row in json.loads(out.stdout)} == {"identity", "text_generation"}
            out = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                 f"http://127.0.0.1:{http}/v2/repository/models/identity/unload"],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            assert out.stdout == "503"  # NONE mode: Triton refuses
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        data = np.ones((2, 2), np.float32)
        tensor = grpcclient.InferInput("IN", data.shape, "FP32")
        tensor.set_data_from_numpy(data)
        assert client.infer("identity", [tensor]).as_numpy("OUT").tolist() == data.tolist()
        client.close()
    finally:
        status = server.stop()
    assert status == 0


def test_serve_with_a_broken_model_and_exit_on_error_false_is_live_not_ready(tmp_path):
    identity_repository(tmp_path, "good")
    write_model(tmp_path, "bad", 'backend: "pyhton"\n')
    command = [sys.executable, "-c", BOOT, "serve", f"--model-repository={tmp_path}", "--exit-on-error=false"]
    server = _Server([*command, *PORTS, *LOOPBACK, "--allow-grpc=false", "--allow-metrics=false"], _env())
    try:
        http = int(server.wait_for(r"Started HTTPService at 127\.0\.0\.1:(\d+)").group(1))
        server.wait_for(r"failed to load 'bad': unable to find backend library for backend 'pyhton'")
        assert not any("GRPCInferenceService" in line for line in server.lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/live", timeout=10) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=10)
        assert caught.value.code == 400
        caught.value.close()
    finally:
        assert server.stop() == 0


def test_serve_exits_1_naming_the_model_and_the_reason(tmp_path):
    write_model(
        tmp_path, "bad_init", versions={1: "def initialize(source, placements):\n    raise KeyError('scale')\n"}
    )
    server = _Server([sys.executable, "-c", BOOT, "serve", f"--model-repository={tmp_path}", *PORTS, *LOOPBACK], _env())
    try:
        assert server.process.wait(60) == 1
    finally:
        server.stop()
    text = "\n".join(server.lines)
    assert "load failed for model 'bad_init': version 1 is at UNAVAILABLE state: KeyError: 'scale'" in text
    assert server.lines[-1] == "error: creating server: Internal - failed to load all models"
    assert "Started HTTPService" not in text  # the ports never open


def test_console_script_is_installed():
    script = shutil.which("pytriton-lite", path=str(pathlib.Path(sys.executable).parent))
    if script is None:
        pytest.skip("pytriton-lite is not installed in this environment (pip install -e .)")
    out = subprocess.run([script, "serve", "--help"], capture_output=True, text=True, timeout=60, check=True)
    assert "--model-repository" in out.stdout and "--model-control-mode" in out.stdout


def test_serve_takes_several_repositories_and_restricts_no_api(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    identity_repository(first, "one")
    identity_repository(second, "two")
    command = [sys.executable, "-c", BOOT, "serve", f"--model-repository={first}", f"--model-repository={second}"]
    server = _Server([*command, *PORTS, *LOOPBACK], _env())
    try:
        http = int(server.wait_for(r"Started HTTPService at 127\.0\.0\.1:(\d+)").group(1))
        request = urllib.request.Request(f"http://127.0.0.1:{http}/v2/repository/index", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            rows = json.loads(response.read())
        assert {(row["name"], row["state"]) for row in rows} == {("one", "READY"), ("two", "READY")}
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2", timeout=10) as response:
            assert "model_repository" in json.loads(response.read())["extensions"]
        # tritonserver restricts no API by default: statistics answer without a token
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/models/stats", timeout=10) as response:
            assert {s["name"] for s in json.loads(response.read())["model_stats"]} == {"one", "two"}
    finally:
        status = server.stop()
    assert status == 0


def test_serve_takes_the_input_size_and_metrics_flags(tmp_path):
    identity_repository(tmp_path, "identity")
    flags = ["--http-max-input-size=2000", "--metrics-config=summary_latencies=true", "--allow-cpu-metrics=false"]
    server = _Server([sys.executable, "-c", BOOT, "serve", f"--model-repository={tmp_path}", *flags, *PORTS,
                      *LOOPBACK], _env())  # fmt: skip
    try:
        http = int(server.wait_for(r"Started HTTPService at 127\.0\.0\.1:(\d+)").group(1))
        metrics = int(server.wait_for(r"Started Metrics Service at 127\.0\.0\.1:(\d+)").group(1))
        server.wait_for(r"pytriton_lite ready in")
        small = json.dumps({"inputs": [{"name": "IN", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]})
        request = urllib.request.Request(f"http://127.0.0.1:{http}/v2/models/identity/infer", data=small.encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        big = json.dumps({"inputs": [{"name": "IN", "shape": [1, 600], "datatype": "FP32", "data": [1.5] * 600}]})
        request = urllib.request.Request(f"http://127.0.0.1:{http}/v2/models/identity/infer", data=big.encode())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 413
        refused.value.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as response:
            text = response.read().decode()
        assert 'nv_inference_request_summary_us_count{model="identity",version="1"} 1' in text
        assert "nv_cpu_utilization" not in text
    finally:
        status = server.stop()
    assert status == 0
