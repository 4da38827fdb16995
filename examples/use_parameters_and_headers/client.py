"""Client for ParamsAndHeaders: sends a request parameter and an HTTP header and checks both were used."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.client import ModelClient

LOGGER = logging.getLogger("examples.use_parameters_and_headers.client")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="localhost", help="http://host:port, grpc://host:port or host[:port]")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    batch_size = 2
    a_batch = np.full((batch_size, 1), 7.0, dtype=np.float32)
    b_batch = np.full((batch_size, 1), 2.0, dtype=np.float32)

    with ModelClient(args.url, "ParamsAndHeaders", init_timeout_s=args.init_timeout_s) as client:
        for multiplier, divisor in ((2, 3), (5, 4)):
            result = client.infer_batch(
                a_batch,
                b_batch,
                parameters={"parameter_multiplier": multiplier},  # goes in the request body
                headers={"header_divisor": str(divisor)},  # HTTP header / gRPC metadata, forwarded by pattern
            )
            LOGGER.info(
                "multiplier=%s divisor=%s -> %s", multiplier, divisor, {k: v.tolist() for k, v in result.items()}
            )
            np.testing.assert_allclose(result["scaled_add"], (a_batch + b_batch) / divisor, rtol=1e-6)
            np.testing.assert_allclose(result["scaled_sub"], (a_batch - b_batch) * multiplier, rtol=1e-6)
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
