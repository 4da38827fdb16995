"""Client for the Linear model: checks the output shape and that the model is affine, f(a+b) = f(a) + f(b) - f(0)."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.client import ModelClient

LOGGER = logging.getLogger("examples.linear_random_pytorch.client")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="localhost", help="http://host:port, grpc://host:port or host[:port]")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    rng = np.random.default_rng(0)
    batch_size = 16
    a = rng.normal(size=(batch_size, 20)).astype(np.float32)
    b = rng.normal(size=(batch_size, 20)).astype(np.float32)
    zero = np.zeros((batch_size, 20), dtype=np.float32)

    with ModelClient(args.url, "Linear", init_timeout_s=args.init_timeout_s) as client:
        config = client.model_config
        assert [spec.name for spec in config.inputs] == ["INPUT_1"], config.inputs
        assert [spec.name for spec in config.outputs] == ["OUTPUT_1"], config.outputs
        f_a, f_b, f_0, f_ab = (client.infer_batch(x)["OUTPUT_1"] for x in (a, b, zero, a + b))
        single = client.infer_sample(a[0])["OUTPUT_1"]

    LOGGER.info("f(a)[0][:5] = %s", f_a[0][:5].tolist())
    assert f_a.shape == (batch_size, 30) and f_a.dtype == np.float32, (f_a.shape, f_a.dtype)
    assert single.shape == (30,), single.shape
    np.testing.assert_allclose(single, f_a[0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(f_a, f_b), "different inputs gave the same output"
    np.testing.assert_allclose(f_ab, f_a + f_b - f_0, rtol=1e-4, atol=1e-4)
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
