"""Server for the AddSub model: two float32 inputs (auto-named INPUT_1, INPUT_2), outputs ``add`` and ``sub``."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.add_sub_python.server")


@batch
def _add_sub(**inputs):
    a_batch, b_batch = inputs.values()
    return {"add": a_batch + b_batch, "sub": a_batch - b_batch}


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
        LOGGER.info("Loading AddSub model")
        triton.bind(
            model_name="AddSub",
            infer_func=_add_sub,
            inputs=[  # no names given: they become INPUT_1 and INPUT_2
                Tensor(dtype=np.float32, shape=(-1,)),
                Tensor(dtype=np.float32, shape=(-1,)),
            ],
            outputs=[
                Tensor(name="add", dtype=np.float32, shape=(-1,)),
                Tensor(name="sub", dtype=np.float32, shape=(-1,)),
            ],
            config=ModelConfig(max_batch_size=128),
            strict=True,
        )
        LOGGER.info("Serving models")
        triton.serve()


if __name__ == "__main__":
    main()
