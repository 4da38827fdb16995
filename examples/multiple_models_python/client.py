"""Client for Multiply2 and Multiply4: one request to each model of the same server."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.client import ModelClient

LOGGER = logging.getLogger("examples.multiple_models_python.client")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="localhost", help="http://host:port, grpc://host:port or host[:port]")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the models")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    batch = np.arange(8, dtype=np.float32).reshape(4, 2)
    for model_name, factor in (("Multiply2", 2.0), ("Multiply4", 4.0)):
        with ModelClient(args.url, model_name, init_timeout_s=args.init_timeout_s) as client:
            result = client.infer_batch(multiplicand=batch)
        LOGGER.info("%s: %s", model_name, result["product"].tolist())
        np.testing.assert_array_equal(result["product"], batch * factor)
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
