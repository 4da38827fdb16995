"""Server for the Linear model: a randomly initialised ``torch.nn.Linear(20, 30)`` on CUDA when present, else CPU."""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.linear_random_pytorch.server")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
MODEL = torch.nn.Linear(20, 30).to(DEVICE).eval()


@batch
def _infer_fn(**inputs):
    (input1_batch,) = inputs.values()
    with torch.inference_mode():
        output1_batch = MODEL(torch.from_numpy(input1_batch).to(DEVICE))
    return [output1_batch.cpu().numpy()]  # a list maps onto the declared outputs by position


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--verbose", "-v", action="store_true", default=False)
    args = parser.parse_args()
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    config = TritonConfig(http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    with Triton(config=config) as triton:
        LOGGER.info("Loading Linear model on %s", DEVICE)
        triton.bind(
            model_name="Linear",
            infer_func=_infer_fn,
            inputs=[Tensor(dtype=np.float32, shape=(20,))],
            outputs=[Tensor(dtype=np.float32, shape=(30,))],
            config=ModelConfig(max_batch_size=128),
        )
        LOGGER.info("Serving models")
        triton.serve()


if __name__ == "__main__":
    main()
