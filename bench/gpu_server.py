"""GPU sanity server: a torch MLP on CUDA served by pytriton_lite with two instances (one wrapper object each).

    python bench/gpu_server.py --http-port 8000 --grpc-port 8001 [--device cuda:0] [--max-seconds 600]

Model "mlp": INPUT_1 FP32 [1024] -> OUTPUT_1 FP32 [1024], Linear(1024, 4096) -> GELU -> Linear(4096, 1024),
max_batch_size 256 with a 1 ms queue delay. Each instance owns its copy of the weights and its own CUDA stream,
the multi-instance wrapper-class pattern of PyTriton's examples. Prints READY when serving.
``BENCH_IMPL=pytriton`` in the environment: the same code on PyTriton 0.7 (bench/gpu_workers_server.py's side by side).
"""

from __future__ import annotations

import argparse
import signal
import threading

import numpy as np
import torch
from _impl import DynamicBatcher, ModelConfig, Tensor, Triton, TritonConfig, batch  # BENCH_IMPL picks the library


class _InferFuncWrapper:
    """One model instance: weights and a CUDA stream on ``device``."""

    def __init__(self, device: str) -> None:
        self.device = torch.device(device)
        torch.manual_seed(0)
        self.model = (
            torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1024))
            .to(self.device)
            .eval()
        )
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self.batch_sizes: list = []

    @batch
    def __call__(self, INPUT_1: np.ndarray) -> dict:
        self.batch_sizes.append(len(INPUT_1))
        with torch.inference_mode():
            if self.stream is not None:
                with torch.cuda.stream(self.stream):
                    x = torch.from_numpy(INPUT_1).to(self.device, non_blocking=True)
                    y = self.model(x)
                    out = y.to("cpu", non_blocking=False)
                self.stream.synchronize()
            else:
                out = self.model(torch.from_numpy(INPUT_1))
        return {"OUTPUT_1": out.numpy()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--grpc-port", type=int, default=8001)
    ap.add_argument("--metrics-port", type=int, default=8002)
    ap.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    args = ap.parse_args()
    instances = [_InferFuncWrapper(args.device) for _ in range(args.instances)]
    config = TritonConfig(
        http_address="127.0.0.1",
        grpc_address="127.0.0.1",
        metrics_address="127.0.0.1",
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with Triton(config=config) as triton:
        triton.bind(
            "mlp",
            instances,
            inputs=[Tensor(name="INPUT_1", dtype=np.float32, shape=(1024,))],
            outputs=[Tensor(name="OUTPUT_1", dtype=np.float32, shape=(1024,))],
            config=ModelConfig(max_batch_size=256, batcher=DynamicBatcher(max_queue_delay_microseconds=1000)),
        )
        print("READY", args.device, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "", flush=True)
        stop.wait(args.max_seconds)
    for i, inst in enumerate(instances):
        sizes = inst.batch_sizes
        if sizes:
            print(f"instance {i}: {len(sizes)} batches, mean batch {np.mean(sizes):.1f}, max {max(sizes)}")


if __name__ == "__main__":
    main()
