"""A user's own server script, packaged into an image built on pytriton_lite's (see Dockerfile here).

It serves ``Scale`` (one float32 input, ``OUTPUT = 2 * INPUT``) on all addresses, as a container must, and stops
cleanly on SIGTERM (what ``docker stop`` and Kubernetes send), draining for ``--exit-timeout-secs``.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.docker.server")


@batch
def _scale(INPUT: np.ndarray) -> dict:
    return {"OUTPUT": INPUT * 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--address", default="0.0.0.0", help="0.0.0.0 inside a container; 127.0.0.1 on a laptop")
    parser.add_argument("--exit-timeout-secs", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    config = TritonConfig(
        http_address=args.address,
        grpc_address=args.address,
        metrics_address=args.address,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        exit_timeout_secs=args.exit_timeout_secs,
    )
    with Triton(config=config) as triton:
        triton.bind(
            model_name="Scale",
            infer_func=_scale,
            inputs=[Tensor(name="INPUT", dtype=np.float32, shape=(-1,))],
            outputs=[Tensor(name="OUTPUT", dtype=np.float32, shape=(-1,))],
            config=ModelConfig(max_batch_size=64),
            strict=True,
        )
        triton.serve()  # SIGINT or SIGTERM: drain, then exit 0


if __name__ == "__main__":
    main()
