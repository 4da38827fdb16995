"""Start-to-ready of `python -m pytriton_lite serve` on a repository of N python-backend models.

    python bench/repository_startup.py [--models 10] [--runs 5]

Each run writes nothing new: the repository (N identity models, `backend: "python"`, dynamic batching, one
CPU instance each) is generated once in a temporary folder. A run starts the CLI as a fresh process on free
loopback ports, polls `/v2/health/ready` until 200 (every model loaded and ready), checks one inference per
model with tritonclient, then stops the server with SIGINT (by its PID) and times its exit. Prints one line per
run and the medians. Target (issue 9): ready within 1 s for 10 models.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np
import tritonclient.http as httpclient

from pytriton_lite.testing import find_free_port

CONFIG = """
backend: "python"
max_batch_size: 8
input [ {{ name: "INPUT" data_type: TYPE_FP32 dims: [ -1 ] }} ]
output [ {{ name: "OUTPUT" data_type: TYPE_FP32 dims: [ -1 ] }} ]
dynamic_batching {{ }}
instance_group [ {{ count: 1 kind: KIND_CPU }} ]
"""

MODEL = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT", data)]))
        return out
"""


def build(root: pathlib.Path, models: int) -> pathlib.Path:
    repository = root / "models"
    for index in range(models):
        folder = repository / f"identity_{index}"
        (folder / "1").mkdir(parents=True)
        (folder / "config.pbtxt").write_text(CONFIG.format())
        (folder / "1" / "model.py").write_text(MODEL)
    return repository


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def one_run(repository: pathlib.Path, models: int) -> dict:
    ports = [find_free_port() for _ in range(3)]
    command = [sys.executable, "-m", "pytriton_lite", "serve", "--model-repository", str(repository)]
    for kind, port in zip(("http", "grpc", "metrics"), ports):
        command += [f"--{kind}-port", str(port), f"--{kind}-address", "127.0.0.1"]
    url = f"http://127.0.0.1:{ports[0]}"
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + 60
        while not _ready(url):
            if proc.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit(f"server did not get ready (exit code {proc.poll()})")
            time.sleep(0.005)
        ready = time.perf_counter() - started
        client = httpclient.InferenceServerClient(url[len("http://") :])
        data = np.arange(4, dtype=np.float32).reshape(1, 4)
        for index in range(models):
            inp = httpclient.InferInput("INPUT", data.shape, "FP32")
            inp.set_data_from_numpy(data)
            assert np.array_equal(client.infer(f"identity_{index}", [inp]).as_numpy("OUTPUT"), data)
        client.close()
        stop_started = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        return {"ready_s": ready, "stop_s": time.perf_counter() - stop_started}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repository = build(pathlib.Path(tmp), args.models)
        results = []
        for run in range(args.runs):
            result = one_run(repository, args.models)
            results.append(result)
            print(f"run {run + 1}: ready {result['ready_s']:.3f} s, stop {result['stop_s']:.3f} s", flush=True)
    ready = statistics.median(r["ready_s"] for r in results)
    stop = statistics.median(r["stop_s"] for r in results)
    print(f"median over {args.runs} runs, {args.models} python models: ready {ready:.3f} s, stop {stop:.3f} s")
    print(f"(cpu count {os.cpu_count()}, python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
