"""Server for ParamsAndHeaders: scales add/sub results by a request parameter and a forwarded HTTP header."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.use_parameters_and_headers.server")


def _infer_with_params_and_headers(requests):
    # Undecorated on purpose: decorators such as @batch do not pass Request.parameters on.
    responses = []
    for request in requests:
        a_batch, b_batch = request.values()
        # Headers matching http_header_forward_pattern arrive as strings, parameters keep their JSON type.
        scaled_add = (a_batch + b_batch) / float(request.parameters["header_divisor"])
        scaled_sub = (a_batch - b_batch) * float(request.parameters["parameter_multiplier"])
        responses.append({"scaled_add": scaled_add, "scaled_sub": scaled_sub})
    return responses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--verbose", "-v", action="store_true", default=False)
    args = parser.parse_args()
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    config = TritonConfig(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        # Headers (HTTP) and metadata keys (gRPC) whose names match reach Request.parameters.
        http_header_forward_pattern="header.*",
        grpc_header_forward_pattern="header.*",
    )
    with Triton(config=config) as triton:
        LOGGER.info("Loading ParamsAndHeaders model")
        triton.bind(
            model_name="ParamsAndHeaders",
            infer_func=_infer_with_params_and_headers,
            inputs=[
                Tensor(dtype=np.float32, shape=(-1,)),
                Tensor(dtype=np.float32, shape=(-1,)),
            ],
            outputs=[
                Tensor(name="scaled_add", dtype=np.float32, shape=(-1,)),
                Tensor(name="scaled_sub", dtype=np.float32, shape=(-1,)),
            ],
            config=ModelConfig(max_batch_size=128),
            strict=True,
        )
        LOGGER.info("Serving models")
        triton.serve()


if __name__ == "__main__":
    main()
