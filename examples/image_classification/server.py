"""Serves models/ (the "colour" image classifier: label_filename and format FORMAT_NCHW) on HTTP and gRPC."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.image_classification.server")
MODELS = Path(__file__).resolve().parent / "models"


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
        model_repository=MODELS, http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port
    )
    with Triton(config=config) as triton:
        LOGGER.info("Serving the models of %s", MODELS)
        triton.serve()


if __name__ == "__main__":
    main()
