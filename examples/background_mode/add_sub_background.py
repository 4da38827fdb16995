"""Background mode: ``run()`` starts serving and returns, the same script calls the model, then ``stop()``.

Handy in tests, notebooks and scripts. Ports default to 0: the OS picks free ones, read back from the Triton.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.client import ModelClient
from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.background_mode")


@batch
def _add_sub(**inputs):
    a_batch, b_batch = inputs.values()
    return {"add": a_batch + b_batch, "sub": a_batch - b_batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--grpc-port", type=int, default=0)
    parser.add_argument("--metrics-port", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    config = TritonConfig(http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    triton = Triton(config=config)
    triton.bind(
        model_name="AddSub",
        infer_func=_add_sub,
        inputs=[Tensor(dtype=np.float32, shape=(-1,)), Tensor(dtype=np.float32, shape=(-1,))],
        outputs=[Tensor(name="add", dtype=np.float32, shape=(-1,)), Tensor(name="sub", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(max_batch_size=128),
        strict=True,
    )
    triton.run()  # returns once the server and the model are ready
    try:
        assert triton.is_alive()
        a = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
        b = np.array([[0.5, 0.5], [1.0, 1.0]], dtype=np.float32)
        for url in (triton.http_url, triton.grpc_url):
            with ModelClient(url, "AddSub", init_timeout_s=10) as client:
                result = client.infer_batch(a, b)
            LOGGER.info("%s -> add=%s sub=%s", url, result["add"].tolist(), result["sub"].tolist())
            np.testing.assert_array_equal(result["add"], a + b)
            np.testing.assert_array_equal(result["sub"], a - b)
    finally:
        stopped = triton.stop()
    assert stopped, "stop() should return True the first time"
    assert not triton.is_alive()
    assert triton.stop() is False, "a second stop() is a no-op returning False"
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
