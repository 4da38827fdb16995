"""Server for the Identity model: returns a float64 tensor and a bytes tensor exactly as received."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.identity_python.server")


@batch
def _identity(INPUT_1, INPUT_2):
    # BYTES inputs arrive as dtype=object arrays of ``bytes``, so NUL bytes inside values survive.
    return {"OUTPUT_1": INPUT_1, "OUTPUT_2": INPUT_2}


def _identity_undecorated(requests):
    """The same model without ``@batch``: one dict of outputs per request."""
    return [{"OUTPUT_1": request["INPUT_1"], "OUTPUT_2": request["INPUT_2"]} for request in requests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--verbose", "-v", action="store_true", default=False)
    args = parser.parse_args()
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    inputs = [
        Tensor(name="INPUT_1", dtype=np.float64, shape=(-1,)),
        Tensor(name="INPUT_2", dtype=bytes, shape=(1,)),
    ]
    outputs = [
        Tensor(name="OUTPUT_1", dtype=np.float64, shape=(-1,)),
        Tensor(name="OUTPUT_2", dtype=bytes, shape=(1,)),
    ]
    config = TritonConfig(http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    with Triton(config=config) as triton:
        LOGGER.info("Loading Identity and IdentityUndecorated models")
        model_config = ModelConfig(max_batch_size=64)
        triton.bind("Identity", _identity, inputs, outputs, config=model_config, strict=True)
        triton.bind("IdentityUndecorated", _identity_undecorated, inputs, outputs, config=model_config)
        LOGGER.info("Serving models")
        triton.serve()


if __name__ == "__main__":
    main()
