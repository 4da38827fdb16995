"""Client for the Identity models: checks that float64 values and bytes with NUL bytes come back unchanged."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.client import ModelClient

LOGGER = logging.getLogger("examples.identity_python.client")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="localhost", help="http://host:port, grpc://host:port or host[:port]")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the models")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    batch_size = 3
    floats = np.random.default_rng(0).normal(size=(batch_size, 5)).astype(np.float64)
    # dtype=object keeps each value as ``bytes``: a np.bytes_ array would drop the trailing NUL bytes.
    blobs = np.array([[b"\x00leading"], [b"in\x00side"], [b"trailing\x00\x00"]], dtype=object)

    for model_name in ("Identity", "IdentityUndecorated"):
        with ModelClient(args.url, model_name, init_timeout_s=args.init_timeout_s) as client:
            result = client.infer_batch(floats, blobs)
        LOGGER.info("%s: OUTPUT_2=%s", model_name, result["OUTPUT_2"].tolist())
        assert result["OUTPUT_1"].dtype == np.float64, result["OUTPUT_1"].dtype
        np.testing.assert_array_equal(result["OUTPUT_1"], floats)
        assert result["OUTPUT_2"].shape == blobs.shape, result["OUTPUT_2"].shape
        assert result["OUTPUT_2"].tolist() == blobs.tolist(), result["OUTPUT_2"].tolist()
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
