#!/usr/bin/env python3
"""PyTriton peer server for the anchor benchmark (CPU only, numpy only).

Models (all @batch, Python backend via PyTriton proxy):
  identity_fp32 : INPUT_1 FP32 [-1] -> OUTPUT_1 (copy), max_batch_size 128,
                  DynamicBatcher(max_queue_delay_microseconds=0)  (PyTriton default batcher)
  add_sub       : INPUT0, INPUT1 FP32 [16] -> OUTPUT0 = a+b, OUTPUT1 = a-b, max_batch_size 64,
                  DynamicBatcher() default (delay 0)
  sleep_1ms     : INPUT_1 FP32 [-1] -> OUTPUT_1 (copy) after time.sleep(0.001) once per *call*
                  (i.e. per batch), max_batch_size 64, DynamicBatcher(max_queue_delay_microseconds=500)

Usage:
  <pytriton-venv>/bin/python pytriton_peer_server.py [--http-port 8000] [--grpc-port 8001]
      [--metrics-port 8002] [--ready-file PATH] [--max-seconds N]

Prints a line "STARTUP_S <seconds>" = wall time from the Triton().run() call until all three
models answer ready (run() itself blocks until the models are loaded; we also poll /ready).
By default the token-protected endpoints are opened (see --default-security).
Stops by itself after --max-seconds (default 3600) or on SIGINT/SIGTERM.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request

import numpy as np

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig, TritonSecurityConfig

T_IMPORTED = time.perf_counter()


@batch
def identity_fn(INPUT_1):
    return {"OUTPUT_1": INPUT_1}


@batch
def add_sub_fn(INPUT0, INPUT1):
    return {"OUTPUT0": INPUT0 + INPUT1, "OUTPUT1": INPUT0 - INPUT1}


@batch
def sleep_1ms_fn(INPUT_1):
    time.sleep(0.001)  # fixed cost per call (= per batch)
    return {"OUTPUT_1": INPUT_1}


def _model_ready(http_port: int, name: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/models/{name}/ready", timeout=1) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001 - not up yet, whatever the reason
        return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--grpc-port", type=int, default=8001)
    ap.add_argument("--metrics-port", type=int, default=8002)
    ap.add_argument("--ready-file", default=None, help="write JSON with startup timing here when ready")
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="stop by itself after this long")
    ap.add_argument("--log-verbose", type=int, default=0, help="tritonserver --log-verbose level")
    ap.add_argument(
        "--default-security",
        action="store_true",
        help="keep PyTriton 0.7 default (statistics/shared-memory/... endpoints need a random access token); "
        "perf_analyzer then fails with 'This API is restricted, expecting header triton-access-token'",
    )
    args = ap.parse_args()

    config = TritonConfig(
        http_address="127.0.0.1",
        grpc_address="127.0.0.1",
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        log_verbose=args.log_verbose,
        exit_on_error=True,
    )
    # PyTriton >= 0.7 protects statistics, shared-memory, model-repository, trace, logging endpoints with a
    # random token by default. perf_analyzer reads /v2/models/<m>/stats (HTTP: -H could pass the token,
    # gRPC: perf_analyzer ignores -H), so open them for the benchmark. Inference path is unaffected.
    security = None if args.default_security else TritonSecurityConfig(restricted_endpoints=[])
    triton = Triton(config=config, security_config=security)
    triton.bind(
        model_name="identity_fp32",
        infer_func=identity_fn,
        inputs=[Tensor(name="INPUT_1", dtype=np.float32, shape=(-1,))],
        outputs=[Tensor(name="OUTPUT_1", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(max_batch_size=128, batcher=DynamicBatcher(max_queue_delay_microseconds=0)),
    )
    triton.bind(
        model_name="add_sub",
        infer_func=add_sub_fn,
        inputs=[
            Tensor(name="INPUT0", dtype=np.float32, shape=(16,)),
            Tensor(name="INPUT1", dtype=np.float32, shape=(16,)),
        ],
        outputs=[
            Tensor(name="OUTPUT0", dtype=np.float32, shape=(16,)),
            Tensor(name="OUTPUT1", dtype=np.float32, shape=(16,)),
        ],
        config=ModelConfig(max_batch_size=64),
    )
    triton.bind(
        model_name="sleep_1ms",
        infer_func=sleep_1ms_fn,
        inputs=[Tensor(name="INPUT_1", dtype=np.float32, shape=(-1,))],
        outputs=[Tensor(name="OUTPUT_1", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(max_batch_size=64, batcher=DynamicBatcher(max_queue_delay_microseconds=500)),
    )

    t0 = time.perf_counter()
    triton.run()  # starts tritonserver child + proxy processes, loads models
    t_run = time.perf_counter() - t0
    deadline = time.monotonic() + 120
    names = ("identity_fp32", "add_sub", "sleep_1ms")
    while not all(_model_ready(args.http_port, n) for n in names):
        if time.monotonic() > deadline:
            print("models not ready after 120 s", flush=True)
            triton.stop()
            return 1
        time.sleep(0.05)
    t_ready = time.perf_counter() - t0
    info = {
        "import_to_run_call_s": round(t0 - T_IMPORTED, 3),
        "run_returned_s": round(t_run, 3),
        "startup_s": round(t_ready, 3),
        "pid": os.getpid(),
    }
    print("STARTUP_S", round(t_ready, 3), json.dumps(info), flush=True)
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            json.dump(info, f)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait(args.max_seconds)
    print("stopping", flush=True)
    triton.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
