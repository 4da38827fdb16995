"""Other clients' latency while the HTTP front end decodes a large JSON body (issue 10, section 2).

    python bench/http_large_body_stall.py                    # codec off the loop above 1 MiB (the default)
    python bench/http_large_body_stall.py --offload-bytes 0  # everything on the serving loop (the baseline)

A server runs in a child process (127.0.0.1, a free port) with two identity models. Four probe clients
send GET /v2/health/ready on keep-alive connections in a loop while one client posts large JSON infer
bodies: a 4M-float FP32 tensor (~32 MB of JSON) and 16M empty strings (BYTES, ~48 MB). Prints the probes'
p50/p99/max latency during the large requests, and how long each large request took. Bounded: a fixed
number of large requests, each with a timeout, and probes that stop when they are done.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import List

SERVER = """
import sys, numpy as np
from pytriton_lite.config import TritonConfig
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.testing import running_triton

def identity(requests):
    return [{"OUTPUT": r["INPUT"]} for r in requests]

config = TritonConfig(allow_grpc=False, allow_metrics=False, http_offload_bytes=int(sys.argv[1]))
with running_triton(config) as triton:
    for name, dtype in (("floats", np.float32), ("strings", bytes)):
        triton.bind(name, identity, inputs=[Tensor(name="INPUT", shape=(-1,), dtype=dtype)],
                    outputs=[Tensor(name="OUTPUT", shape=(-1,), dtype=dtype)], config=ModelConfig(batching=False))
    print(triton.http_port, flush=True)
    sys.stdin.read()  # serve until the parent closes stdin
"""


def _bodies(scale: float) -> List[tuple]:
    floats = int(4_000_000 * scale)
    strings = int(16_000_000 * scale)
    float_body = json.dumps(
        {"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [floats], "data": [1.25] * floats}]}
    ).encode()
    string_body = (
        b'{"inputs":[{"name":"INPUT","datatype":"BYTES","shape":[%d],"data":[' % strings
        + b",".join([b'""'] * strings)
        + b"]}]}"
    )
    return [("floats", f"{floats:,} FP32", float_body), ("strings", f"{strings:,} empty strings", string_body)]


def _probe(port: int, stop: threading.Event, latencies: List[float], active: threading.Event) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    deadline = time.monotonic() + 300
    while not stop.is_set() and time.monotonic() < deadline:
        began = time.perf_counter()
        connection.request("GET", "/v2/health/ready")
        connection.getresponse().read()
        if active.is_set():
            latencies.append(time.perf_counter() - began)
        time.sleep(0.002)
    connection.close()


def _quantile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offload-bytes", type=int, default=1 << 20, help="0 = decode on the serving loop")
    parser.add_argument("--probes", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.0, help="body size factor (1.0 = the issue's cases)")
    args = parser.parse_args()

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTRITON_LITE_HTTP_OFFLOAD_BYTES", None)
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.offload_bytes)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        bodies = _bodies(args.scale)
        mode = "loop only" if args.offload_bytes == 0 else f"off the loop above {args.offload_bytes:,} bytes"
        print(f"HTTP codec: {mode}; {args.probes} probe clients (GET /v2/health/ready)")
        for model, label, body in bodies:
            latencies: List[float] = []
            stop, active = threading.Event(), threading.Event()
            probes = [threading.Thread(target=_probe, args=(port, stop, latencies, active)) for _ in range(args.probes)]
            for probe in probes:
                probe.start()
            time.sleep(0.5)  # probes connected and warm; only latencies during the large request count
            active.set()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            began = time.perf_counter()
            connection.request("POST", f"/v2/models/{model}/infer", body=body)
            response = connection.getresponse()
            response.read()
            took = time.perf_counter() - began
            active.clear()
            stop.set()
            for probe in probes:
                probe.join(60)
            connection.close()
            during = latencies or [float("nan")]
            print(
                f"{label:>24} ({len(body) / 1e6:.0f} MB JSON): status {response.status}, request {took:.2f} s; "
                f"others' latency p50 {statistics.median(during) * 1e3:.1f} ms, "
                f"p99 {_quantile(during, 0.99) * 1e3:.1f} ms, max {max(during) * 1e3:.1f} ms ({len(during)} probes)"
            )
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(30)


if __name__ == "__main__":
    main()
