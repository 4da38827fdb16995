"""Client for the AddSub model: sends a batch positionally and checks ``add`` and ``sub``."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.client import ModelClient

LOGGER = logging.getLogger("examples.add_sub_python.client")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="localhost", help="http://host:port, grpc://host:port or host[:port]")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    batch_size = 2
    a_batch = np.ones((batch_size, 1), dtype=np.float32)
    b_batch = np.full((batch_size, 1), 2.0, dtype=np.float32)

    LOGGER.info("a: %s", a_batch.tolist())
    LOGGER.info("b: %s", b_batch.tolist())
    with ModelClient(args.url, "AddSub", init_timeout_s=args.init_timeout_s) as client:
        # Positional inputs map onto the model's inputs in order: INPUT_1, INPUT_2.
        result_batch = client.infer_batch(a_batch, b_batch)

    for name, data in result_batch.items():
        LOGGER.info("%s: %s", name, data.tolist())
    assert set(result_batch) == {"add", "sub"}, sorted(result_batch)
    assert result_batch["add"].dtype == np.float32 and result_batch["add"].shape == (batch_size, 1)
    np.testing.assert_array_equal(result_batch["add"], a_batch + b_batch)
    np.testing.assert_array_equal(result_batch["sub"], a_batch - b_batch)
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
