"""Core microbenchmark, no network: requests/s through the batcher and instance threads for a no-op callable.

    python bench/core_bench.py [--requests 20000] [--concurrency 64]

For each batch size setting (max_batch_size 1, 8, 64), ``concurrency`` coroutines submit 1-row requests to
``DataPlane.infer`` on one event loop until ``requests`` are done; prints requests/s, mean batch size and
µs of wall and CPU time (all threads) per request. This is the core's own cost per request, without HTTP/gRPC.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from pytriton_lite.core.dataplane import InProcessDataPlane as DataPlane
from pytriton_lite.core.model import Model
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.types import InferenceRequest


def noop(requests):
    return [{"OUTPUT_1": r["INPUT_1"]} for r in requests]


async def measure(max_batch_size: int, total: int, concurrency: int) -> tuple:
    loop = asyncio.get_running_loop()
    dataplane = DataPlane(loop)
    model = Model(
        "noop",
        1,
        [noop],
        [Tensor(name="INPUT_1", shape=(16,), dtype=np.float32)],
        [Tensor(name="OUTPUT_1", shape=(16,), dtype=np.float32)],
        ModelConfig(max_batch_size=max_batch_size),
    )
    entry = dataplane.add_model(model)
    data = np.zeros((1, 16), dtype=np.float32)
    remaining = [total]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            await dataplane.infer(InferenceRequest("noop", inputs={"INPUT_1": data}))

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    stats = entry.stats
    dataplane.stop_models()
    return elapsed, cpu, stats.inference_count / max(1, stats.execution_count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    try:
        import uvloop

        new_loop = uvloop.new_event_loop
    except ImportError:
        new_loop = asyncio.new_event_loop
    print(f"{'max_batch_size':>14} {'requests/s':>12} {'avg batch':>10} {'us/request':>11} {'CPU us/request':>15}")
    for mbs in (1, 8, 64):
        loop = new_loop()
        elapsed, cpu, avg_batch = loop.run_until_complete(measure(mbs, args.requests, args.concurrency))
        loop.close()
        per, cpu_per = elapsed / args.requests * 1e6, cpu / args.requests * 1e6
        print(f"{mbs:>14} {args.requests / elapsed:>12,.0f} {avg_batch:>10.1f} {per:>11.1f} {cpu_per:>15.1f}")


if __name__ == "__main__":
    main()
