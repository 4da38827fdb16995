"""Server for a vLLM-style model: ``batching=False, decoupled=True`` and an ``async def`` generator callable.

It mirrors the shape of PyTriton's vLLM example without vLLM or a GPU: a fake async "engine" produces words
(lorem ipsum, cycled) with an ``await`` per word, the way a real engine's ``async for`` would. Inputs: ``prompt``
(BYTES, required), ``max_tokens`` (INT32, optional, default 8) and ``stream`` (BOOL, optional, default false).
Output ``text`` (BYTES) is the prompt plus everything generated so far, as vLLM reports it. With ``stream``
true there is one response per word; otherwise a single response at the end, which is what HTTP ``/generate``
needs (it refuses a model that answers more than once).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import AsyncIterator, Dict, List

import numpy as np

from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.proxy.types import Request
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.vllm_style.server")

VOCABULARY = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
DEFAULT_MAX_TOKENS = 8
WORD_DELAY_S = 0.02  # stands in for the engine's per-token work


async def fake_engine(prompt: str, max_tokens: int) -> AsyncIterator[str]:
    """An async token source standing in for ``AsyncLLMEngine.generate``: one word per step."""
    for step in range(max_tokens):
        await asyncio.sleep(WORD_DELAY_S)
        yield VOCABULARY[step % len(VOCABULARY)]


async def generate(requests: List[Request]) -> AsyncIterator[List[Dict[str, np.ndarray]]]:
    """Each ``yield`` is one response: a list with one dict per request (here always one request)."""
    assert len(requests) == 1, "batching is disabled, so every call carries exactly one request"
    request = requests[0]
    prompt = request["prompt"][0].decode("utf-8")
    # Optional inputs are simply absent from the request when the client leaves them out.
    max_tokens = int(request["max_tokens"][0]) if "max_tokens" in request else DEFAULT_MAX_TOKENS
    stream = bool(request["stream"][0]) if "stream" in request else False

    text = prompt
    async for word in fake_engine(prompt, max_tokens):
        text = f"{text} {word}"
        if stream:
            yield [{"text": np.array([text.encode("utf-8")], dtype=object)}]
    if not stream:
        yield [{"text": np.array([text.encode("utf-8")], dtype=object)}]


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
        LOGGER.info("Loading vllm_style model")
        triton.bind(
            model_name="vllm_style",
            infer_func=generate,
            inputs=[
                Tensor(name="prompt", dtype=bytes, shape=(1,)),
                Tensor(name="max_tokens", dtype=np.int32, shape=(1,), optional=True),
                Tensor(name="stream", dtype=np.bool_, shape=(1,), optional=True),
            ],
            outputs=[Tensor(name="text", dtype=bytes, shape=(1,))],
            config=ModelConfig(batching=False, decoupled=True),
            strict=True,
        )
        LOGGER.info("Serving models")
        triton.serve()


if __name__ == "__main__":
    main()
