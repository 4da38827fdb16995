"""Client for MultiInstance: concurrent requests through FuturesModelClient; checks every instance served some."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.client import FuturesModelClient

LOGGER = logging.getLogger("examples.multi_instance.client")

WEIGHTS = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)  # the server's weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="localhost", help="http://host:port, grpc://host:port or host[:port]")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the model")
    parser.add_argument("--requests", type=int, default=16, help="Concurrent requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="At most this many rounds until every instance served")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    rng = np.random.default_rng(1)
    with FuturesModelClient(args.url, "MultiInstance", max_workers=8, init_timeout_s=args.init_timeout_s) as client:
        config = client.model_config().result()
        instance_count = sum(config.instance_group.values())
        LOGGER.info("Model has %d instances", instance_count)
        served = {}
        for round_index in range(args.rounds):
            # Each request fills a whole batch (max_batch_size=4), so concurrent requests need separate instances.
            batches = [rng.normal(size=(4, 16)).astype(np.float32) for _ in range(args.requests)]
            futures = [client.infer_batch(x=x) for x in batches]
            for x, future in zip(batches, futures):
                result = future.result()
                np.testing.assert_allclose(result["y"], x @ WEIGHTS, rtol=1e-4, atol=1e-4)
                for instance, device in zip(result["instance"][:, 0].tolist(), result["device"][:, 0].tolist()):
                    served[instance] = device.decode()
            LOGGER.info("Round %d: instances that served so far: %s", round_index, served)
            if len(served) == instance_count:
                break
    assert sorted(served) == list(range(instance_count)), f"not every instance served: {served}"
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
