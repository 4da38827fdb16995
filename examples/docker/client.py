"""Client for the Scale model of the docker example: sends a batch and checks ``OUTPUT == 2 * INPUT``."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.client import ModelClient

LOGGER = logging.getLogger("examples.docker.client")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="localhost", help="http://host:port, grpc://host:port or host[:port]")
    parser.add_argument("--init-timeout-s", type=float, default=60.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    with ModelClient(args.url, "Scale", init_timeout_s=args.init_timeout_s) as client:
        result = client.infer_batch(INPUT=data)
    np.testing.assert_array_equal(result["OUTPUT"], data * 2)
    LOGGER.info("OK: %s", result["OUTPUT"].tolist())


if __name__ == "__main__":
    main()
