"""Client for AddSubWithOptional: positional calls with fewer inputs, and named calls skipping ``w``."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.client import ModelClient

LOGGER = logging.getLogger("examples.add_sub_python_with_optional.client")


def _check(result, a, b, w=1.0, t=0.5):
    np.testing.assert_allclose(result["add"], w * (a + b) + t, rtol=1e-6)
    np.testing.assert_allclose(result["sub"], w * (a - b) + t, rtol=1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="localhost", help="http://host:port, grpc://host:port or host[:port]")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    batch_size = 3
    a = np.arange(batch_size * 2, dtype=np.float32).reshape(batch_size, 2)
    b = np.ones((batch_size, 2), dtype=np.float32)
    w = np.full((batch_size, 1), 3.0, dtype=np.float32)
    t = np.array([[10.0], [20.0], [30.0]], dtype=np.float32)

    with ModelClient(args.url, "AddSubWithOptional", init_timeout_s=args.init_timeout_s) as client:
        optional = {spec.name: spec.optional for spec in client.model_config.inputs}
        assert optional == {"a": False, "b": False, "w": True, "t": True}, optional

        # Positional inputs fill the model's inputs in order (a, b, w, t); the rest are not sent.
        _check(client.infer_batch(a, b), a, b)
        _check(client.infer_batch(a, b, w), a, b, w=3.0)
        _check(client.infer_batch(a, b, w, t), a, b, w=3.0, t=t)
        # Named inputs can leave out any optional input, here ``w``.
        _check(client.infer_batch(a=a, b=b, t=t), a, b, t=t)
        sample = client.infer_sample(a=a[0], b=b[0], w=w[0])
        _check(sample, a[0], b[0], w=3.0)
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
