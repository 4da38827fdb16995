"""Server for MultiInstance: one wrapper object per device; a list of callables = that many model instances.

Each instance runs in its own thread, so two requests can run at the same time. With PyTorch and GPUs the
instances use ``cuda:0``, ``cuda:1``, ... (sharing GPUs when there are fewer); otherwise the CPU (NumPy).
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import List

import numpy as np

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.multi_instance.server")

WEIGHTS = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)


def _devices(count: int) -> List[str]:
    try:
        import torch
    except ImportError:
        return ["cpu"] * count
    gpus = torch.cuda.device_count()
    if gpus == 0:
        return ["cpu"] * count
    return [f"cuda:{index % gpus}" for index in range(count)]  # one GPU each; they share when there are fewer


class _InferFuncWrapper:
    """The model of one instance: it holds its own copy of the weights on its own device."""

    def __init__(self, instance_id: int, device: str, work_s: float):
        self._instance_id = instance_id
        self._device = device
        self._work_s = work_s
        if device.startswith("cuda"):
            import torch

            self._weights = torch.from_numpy(WEIGHTS).to(device)
        else:
            self._weights = WEIGHTS.copy()

    def _matmul(self, x: np.ndarray) -> np.ndarray:
        if self._device.startswith("cuda"):
            import torch

            return (torch.from_numpy(x).to(self._device) @ self._weights).cpu().numpy()
        return x @ self._weights

    @batch
    def __call__(self, x):
        time.sleep(self._work_s)  # stands in for a model that keeps its device busy for a while
        rows = x.shape[0]
        return {
            "y": self._matmul(x),
            "instance": np.full((rows, 1), self._instance_id, dtype=np.int32),
            "device": np.array([[self._device.encode()]] * rows, dtype=object),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--work-s", type=float, default=0.05, help="Simulated time one batch keeps a device busy")
    parser.add_argument("--verbose", "-v", action="store_true", default=False)
    args = parser.parse_args()
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    devices = _devices(args.instances)
    instances = [_InferFuncWrapper(index, device, args.work_s) for index, device in enumerate(devices)]
    config = TritonConfig(http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    with Triton(config=config) as triton:
        LOGGER.info("Loading MultiInstance model with instances on %s", devices)
        triton.bind(
            model_name="MultiInstance",
            infer_func=instances,  # a list of callables: one instance each
            inputs=[Tensor(name="x", dtype=np.float32, shape=(16,))],
            outputs=[
                Tensor(name="y", dtype=np.float32, shape=(4,)),
                Tensor(name="instance", dtype=np.int32, shape=(1,)),
                Tensor(name="device", dtype=bytes, shape=(1,)),
            ],
            config=ModelConfig(max_batch_size=4),
            strict=True,
        )
        LOGGER.info("Serving models")
        triton.serve()


if __name__ == "__main__":
    main()
