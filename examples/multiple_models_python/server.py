"""Server with two models, Multiply2 and Multiply4, bound to one Triton."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.multiple_models_python.server")


@batch
def _multiply2(multiplicand):
    return [multiplicand * 2.0]


@batch
def _multiply4(multiplicand):
    return [multiplicand * 4.0]


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
        for model_name, infer_func in (("Multiply2", _multiply2), ("Multiply4", _multiply4)):
            LOGGER.info("Loading %s model", model_name)
            triton.bind(
                model_name=model_name,
                infer_func=infer_func,
                inputs=[Tensor(name="multiplicand", dtype=np.float32, shape=(-1,))],
                outputs=[Tensor(name="product", dtype=np.float32, shape=(-1,))],
                config=ModelConfig(max_batch_size=8),
            )
        LOGGER.info("Serving models")
        triton.serve()


if __name__ == "__main__":
    main()
