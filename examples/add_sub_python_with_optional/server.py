"""Server for AddSubWithOptional: inputs ``a``, ``b`` and the optional ``w`` (weight) and ``t`` (offset).

add = w * (a + b) + t and sub = w * (a - b) + t, with w = 1 and t = 0.5 when the client leaves them out.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.decorators import batch, fill_optionals, first_value
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.add_sub_python_with_optional.server")


# fill_optionals works on the request list: it adds missing inputs (defaults have no batch axis) so that every
# request has the same inputs, which @batch requires. first_value turns the per-row ``w`` into one scalar.
@fill_optionals(w=np.array([1.0], dtype=np.float32), t=np.array([0.5], dtype=np.float32))
@batch
@first_value("w")
def _add_sub(a, b, w, t):
    return {"add": w * (a + b) + t, "sub": w * (a - b) + t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--verbose", "-v", action="store_true", default=False)
    args = parser.parse_args()
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    config = TritonConfig(http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    with Triton(config=config) as triton:
        LOGGER.info("Loading AddSubWithOptional model")
        triton.bind(
            model_name="AddSubWithOptional",
            infer_func=_add_sub,
            inputs=[
                Tensor(name="a", dtype=np.float32, shape=(-1,)),
                Tensor(name="b", dtype=np.float32, shape=(-1,)),
                Tensor(name="w", dtype=np.float32, shape=(1,), optional=True),
                Tensor(name="t", dtype=np.float32, shape=(1,), optional=True),
            ],
            outputs=[
                Tensor(name="add", dtype=np.float32, shape=(-1,)),
                Tensor(name="sub", dtype=np.float32, shape=(-1,)),
            ],
            config=ModelConfig(max_batch_size=128),
            strict=True,
        )
        LOGGER.info("Serving models")
        triton.serve()


if __name__ == "__main__":
    main()
