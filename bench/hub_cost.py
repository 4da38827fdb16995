"""The serving process's CPU per inference with front-end workers, HTTP and gRPC left out.

    python bench/hub_cost.py [--requests 40000] [--window 256] [--channels 1] [--rows 1] [--delay-us 0]
                             [--rounds 3] [--gc-threshold N]

With front-end workers the serving process only reads request frames from its workers' channels, queues them
with the batcher, runs the model and writes the responses back, so its CPU time per inference bounds the
throughput however many workers parse HTTP and gRPC (1e6 / µs per inference = requests/s on one core).
This measures that path alone: a ``Triton`` serving identity 16xFP32 (``@batch``, max batch 256) to
``--channels`` ``WorkerHub`` channels whose other ends are driver processes standing in for workers; together
they keep ``--window`` requests in flight (each names its output, as perf_analyzer does) and check every
answer. Printed per round: requests/s, the serving process's CPU µs per inference (all its threads; in
brackets its serving loop thread alone), the average batch, and the drivers' CPU µs per inference (a worker's
channel side, without HTTP/gRPC).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig
from pytriton_lite.types import InferenceRequest
from pytriton_lite.workers import wire
from pytriton_lite.workers.channel import BlockingCaller, Channel
from pytriton_lite.workers.hub import WorkerHub, _Worker

MODEL = "identity_fp32"


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def drive(sock: socket.socket, report: int, count: int, window: int, rows: int, per_frame: int) -> None:
    """The stand-in worker: ``count`` requests, ``window`` in flight, every answer checked. Like a worker's
    channel it answers a frame of k responses with one frame of k new requests."""
    reader = BlockingCaller(sock)  # its frame reader only
    data = np.arange(rows * 16, dtype=np.float32).reshape(rows, 16)
    encode_many = getattr(wire, "encode_many", None)  # absent in trees before BATCH frames (A/B runs)
    sent = done = 0
    cpu0 = cpu_s()

    def send(n: int) -> None:
        nonlocal sent
        messages = []
        for _ in range(n):
            sent += 1
            request = InferenceRequest(MODEL, "", {"INPUT_1": data}, requested_outputs=["OUTPUT_1"], id=str(sent))
            messages.append((wire.INFER, sent, wire.pack_request(request)))
        parts: List[Any] = []
        for at in range(0, len(messages), per_frame):
            some = messages[at : at + per_frame]
            parts += encode_many(some) if encode_many is not None else [p for m in some for p in wire.encode(m)]
        sock.sendall(b"".join(bytes(memoryview(p).cast("B")) for p in parts))

    send(min(window, count))
    while done < count:
        frame = reader._read()
        messages = frame[1] if frame[0] == getattr(wire, "BATCH", None) else [frame]
        for message in messages:
            if message[0] != wire.OK:
                raise SystemExit(f"driver: unexpected answer {message[:3]}")
            if not np.array_equal(wire.unpack_response(message[2]).outputs["OUTPUT_1"], data):
                raise SystemExit("driver: wrong answer")
        done += len(messages)
        if sent < count:
            send(min(len(messages), count - sent))
    os.write(report, f"{cpu_s() - cpu0:.6f}\n".encode())


def identity_model(delay_us: float) -> Any:
    @batch
    def identity(INPUT_1: np.ndarray) -> Dict[str, np.ndarray]:
        if delay_us:
            time.sleep(delay_us / 1e6)
        return {"OUTPUT_1": INPUT_1}

    return identity


def thread_cpu_s(tid: int) -> float:
    """utime + stime of one thread of this process, from /proc (clock ticks)."""
    with open(f"/proc/self/task/{tid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(args: argparse.Namespace) -> Dict[str, float]:
    """One server, ``--channels`` drivers (each a worker's stand-in with its share of requests and window)."""
    pairs, drivers, reports = [], [], []
    share = {"requests": args.requests // args.channels, "window": max(1, args.window // args.channels)}
    for _ in range(args.channels):
        ours, theirs = socket.socketpair()
        report_r, report_w = os.pipe()
        command = [sys.executable, os.path.abspath(__file__), "--drive", f"{theirs.fileno()},{report_w}"]
        command += [f"--{k}={share[k]}" for k in ("requests", "window")]
        command += [f"--rows={args.rows}", f"--per-frame={args.per_frame}"]
        drivers.append(subprocess.Popen(command, pass_fds=(theirs.fileno(), report_w)))
        theirs.close()
        os.close(report_w)
        pairs.append(ours)
        reports.append(report_r)
    config = TritonConfig(http_address="127.0.0.1", grpc_address="127.0.0.1", http_port=0, grpc_port=0, metrics_port=0)
    triton = Triton(config=config)
    try:
        triton.bind(
            MODEL,
            identity_model(args.delay_us),
            inputs=[Tensor(name="INPUT_1", dtype=np.float32, shape=(-1,))],
            outputs=[Tensor(name="OUTPUT_1", dtype=np.float32, shape=(-1,))],
            config=ModelConfig(max_batch_size=256, batcher=DynamicBatcher(max_queue_delay_microseconds=0)),
        )
        triton.run()
        dataplane, loop = triton._dataplane, triton._loop
        assert dataplane is not None and loop is not None
        hub = WorkerHub(dataplane, config, 0)
        workers = [_Worker(i) for i in range(args.channels)]

        async def attach() -> None:
            for worker, sock in zip(workers, pairs):
                _, worker.channel = await loop.create_unix_connection(
                    functools.partial(Channel, functools.partial(hub._on_message, worker), lambda: None), sock=sock
                )

        async def native_id() -> int:
            return threading.get_native_id()

        loop_tid = asyncio.run_coroutine_threadsafe(native_id(), loop).result(10)
        if args.gc_freeze:
            gc.freeze()  # what exists now (the ballast, imports) leaves the collector's scans
        before = dataplane.statistics(MODEL)[0]
        gc0 = [g["collections"] for g in gc.get_stats()]
        cpu0, loop0, t0 = cpu_s(), thread_cpu_s(loop_tid), time.perf_counter()
        asyncio.run_coroutine_threadsafe(attach(), loop).result(10)
        lines = []
        for report in reports:
            with os.fdopen(report) as f:
                lines.append(f.readline())
        wall, cpu, loop_cpu = time.perf_counter() - t0, cpu_s() - cpu0, thread_cpu_s(loop_tid) - loop0
        statuses = [driver.wait(60) for driver in drivers]
        if any(statuses) or not all(lines):
            raise SystemExit(f"a driver failed (exit statuses {statuses})")
        after = dataplane.statistics(MODEL)[0]
        collections = [g["collections"] - c for g, c in zip(gc.get_stats(), gc0)]
    finally:
        triton.stop()
        for sock in pairs:
            sock.close()
    n = after.inference_count - before.inference_count
    executions = after.execution_count - before.execution_count
    return {
        "infer_per_s": n / wall,
        "serving_us": cpu * 1e6 / n,
        "loop_us": loop_cpu * 1e6 / n,
        "batch": n / executions if executions else 0.0,
        "driver_us": sum(float(line) for line in lines) * 1e6 / n,
        "gc_per_1k": [c * 1000 / n for c in collections],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=40000)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--rows", type=int, default=1)
    ap.add_argument("--delay-us", type=float, default=0.0, help="the model sleeps this long per batch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--channels", type=int, default=1, help="drivers (workers' stand-ins), sharing the window")
    ap.add_argument("--per-frame", type=int, default=1 << 30, help="at most this many requests per frame")
    ap.add_argument("--gc-threshold", type=int, default=0, help="gc.set_threshold(N) in the serving process first")
    ap.add_argument("--ballast", type=int, default=0, help="N long-lived objects the collector tracks (a big heap)")
    ap.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the server runs")
    ap.add_argument("--drive", default="", help=argparse.SUPPRESS)  # the driver process: "socket fd,report fd"
    args = ap.parse_args()
    if args.drive:
        sock_fd, report_fd = (int(fd) for fd in args.drive.split(","))
        drive(socket.socket(fileno=sock_fd), report_fd, args.requests, args.window, args.rows, args.per_frame)
        return
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold)
    ballast = [[i] for i in range(args.ballast)]  # like a framework's modules and tensors' Python objects
    rows = []
    for i in range(1, args.rounds + 1):
        row = one_round(args)
        rows.append(row)
        print(
            f"round {i}: {row['infer_per_s']:>9,.0f} infer/s  serving CPU {row['serving_us']:6.1f} µs/inf "
            f"(its loop thread {row['loop_us']:5.1f})  "
            f"batch {row['batch']:5.1f}  driver CPU {row['driver_us']:6.1f} µs/inf  "
            f"GC runs per 1k inf (gen 0/1/2) {'/'.join(f'{c:.1f}' for c in row['gc_per_1k'])}",
            flush=True,
        )
    del ballast
    us = statistics.median(r["serving_us"] for r in rows)
    print(f"median serving CPU {us:.1f} µs/inference: one core bounds the serving process to {1e6 / us:,.0f}/s")


if __name__ == "__main__":
    main()
