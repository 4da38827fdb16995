"""The GPU-machine server of bench/gpu_workers.sh: identity 16×FP32 and the torch MLP of bench/gpu_server.py.

    python bench/gpu_workers_server.py [--http-port 8000] [--grpc-port 8001] [--metrics-port 8002]
                                       [--device cuda:0] [--instances 2] [--max-seconds 600]
    python bench/gpu_workers_server.py --direct [--seconds 3]     # the MLP's direct-call limit, no server

Models: ``identity_fp32`` (INPUT_1 FP32 [-1], max_batch_size 128, queue delay 0: bench/lite_server.py's) and
``mlp`` (bench/gpu_server.py's ``_InferFuncWrapper``: Linear(1024, 4096) -> GELU -> Linear(4096, 1024) on CUDA,
``--instances`` instances with their own weights and stream, max_batch_size 256, 1 ms queue delay).
``frontend_workers`` comes from ``PYTRITON_TRITON_CONFIG_FRONTEND_WORKERS`` (TritonConfig.from_env), as
bench/workers_matrix.py sets it. Statistics are open (no token) so perf_analyzer can read them. It serves with
``triton.serve()``, as a user's script does (pytriton_lite raises the GC threshold while serve() serves, see
docs/scaling.md; ``PYTRITON_LITE_GC_THRESHOLD=0`` measures without), and prints ``STARTUP_S <s>`` (serve() called
to every model ready over HTTP) once serving. ``BENCH_GC_THRESHOLD=N``: ``gc.set_threshold(N)`` first, in
either library's process.
``BENCH_IMPL=pytriton``: the same script on PyTriton 0.7 (its ``Triton``, ``@batch`` and config classes; the API is
the same), for bench/workers_matrix.py's side-by-side row; PyTriton's endpoints are opened the same way.

``--direct``: rows/s calling the MLP's ``@batch`` callable directly with one 256-row request, one thread per
instance (1 and then all ``--instances``), host-to-device and back included: the ceiling any server can reach.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import threading
import time
import urllib.request
from typing import Any, List

import numpy as np
import torch
from _impl import DynamicBatcher, ModelConfig, Tensor, Triton, TritonConfig, TritonSecurityConfig, batch
from gpu_server import _InferFuncWrapper


@batch
def identity_fn(INPUT_1: np.ndarray) -> dict:
    return {"OUTPUT_1": INPUT_1}


def _rows(model: Any, x: np.ndarray, stop: float, counts: list, i: int) -> None:
    while time.perf_counter() < stop:
        model([{"INPUT_1": x}])
        counts[i] += len(x)


def direct_limit(device: str, instances: int, seconds: float) -> None:
    models: List[Any] = [_InferFuncWrapper(device) for _ in range(instances)]  # Any: wrapt hides the signature
    x = np.random.default_rng(0).standard_normal((256, 1024), dtype=np.float32)
    for m in models:  # warm-up: cuBLAS handles, kernels
        for _ in range(5):
            m([{"INPUT_1": x}])
    for n in (1, instances) if instances > 1 else (1,):
        counts = [0] * n
        stop = time.perf_counter() + seconds
        threads = [threading.Thread(target=_rows, args=(models[i], x, stop, counts, i)) for i in range(n)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        print(f"DIRECT instances={n} batch=256 rows/s {sum(counts) / wall:,.0f} ({sum(counts)} rows in {wall:.2f} s)")


def _ready(port: int, names: tuple) -> bool:
    for name in names:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{name}/ready", timeout=1) as r:
                if r.status != 200:
                    return False
        except Exception:  # noqa: BLE001 - not up yet
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--grpc-port", type=int, default=8001)
    ap.add_argument("--metrics-port", type=int, default=8002)
    ap.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("--direct", action="store_true", help="print the MLP's direct-call limit and exit")
    ap.add_argument("--seconds", type=float, default=3.0, help="--direct: measuring time per figure")
    args = ap.parse_args()
    if args.direct:
        direct_limit(args.device, args.instances, args.seconds)
        return
    if os.environ.get("BENCH_GC_THRESHOLD"):
        gc.set_threshold(int(os.environ["BENCH_GC_THRESHOLD"]))
    instances = [_InferFuncWrapper(args.device) for _ in range(args.instances)]
    config = TritonConfig(
        http_address="127.0.0.1",
        grpc_address="127.0.0.1",
        metrics_address="127.0.0.1",
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
    )
    # SIGTERM as SIGINT: PyTriton's serve() stops on KeyboardInterrupt; pytriton_lite's handles both itself
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    triton = Triton(config=config, security_config=TritonSecurityConfig(restricted_endpoints=[]))
    triton.bind(
        "identity_fp32",
        identity_fn,
        inputs=[Tensor(name="INPUT_1", dtype=np.float32, shape=(-1,))],
        outputs=[Tensor(name="OUTPUT_1", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(max_batch_size=128, batcher=DynamicBatcher(max_queue_delay_microseconds=0)),
    )
    triton.bind(
        "mlp",
        instances,
        inputs=[Tensor(name="INPUT_1", dtype=np.float32, shape=(1024,))],
        outputs=[Tensor(name="OUTPUT_1", dtype=np.float32, shape=(1024,))],
        config=ModelConfig(max_batch_size=256, batcher=DynamicBatcher(max_queue_delay_microseconds=1000)),
    )
    t0 = time.perf_counter()

    def report_ready() -> None:
        while not _ready(args.http_port, ("identity_fp32", "mlp")) and time.perf_counter() - t0 < 120:
            time.sleep(0.02)
        print("STARTUP_S", round(time.perf_counter() - t0, 3), args.device, flush=True)

    threading.Thread(target=report_ready, daemon=True).start()
    limit = threading.Timer(args.max_seconds, triton.stop)
    limit.daemon = True
    limit.start()
    try:
        triton.serve()  # as a user's script serves: blocks until SIGINT/SIGTERM (or the time limit)
    except KeyboardInterrupt:
        pass
    finally:
        limit.cancel()
        triton.stop()
    for i, inst in enumerate(instances):
        sizes = inst.batch_sizes
        if sizes:
            print(f"instance {i}: {len(sizes)} batches, mean batch {np.mean(sizes):.1f}, max {max(sizes)}", flush=True)


if __name__ == "__main__":
    main()
