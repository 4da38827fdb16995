"""Models bound by both front ends' integration tests.

Imported as a sibling module: pytest's default ``prepend`` import mode puts this folder on ``sys.path``.
"""

from __future__ import annotations

import json

import numpy as np

from pytriton_lite.model_config import ModelConfig, Tensor


def bind_params(triton):
    def infer(requests):
        return [
            {"PARAMS": np.array([json.dumps(r.parameters, sort_keys=True).encode()], dtype=object)} for r in requests
        ]

    triton.bind(
        "params",
        infer,
        inputs=[Tensor(name="INPUT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="PARAMS", shape=(1,), dtype=bytes)],
        config=ModelConfig(batching=False),
    )


def bind_failing(triton):
    def infer(requests):
        raise ValueError("model exploded on purpose")

    triton.bind(
        "failing",
        infer,
        inputs=[Tensor(name="INPUT", shape=(1,), dtype=np.int32)],
        outputs=[Tensor(name="OUTPUT", shape=(1,), dtype=np.int32)],
        config=ModelConfig(batching=False),
    )
