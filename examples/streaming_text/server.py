"""Server for FakeLLM: a decoupled (streaming) model that "generates" text one word at a time.

There are no weights to download: the "language model" knows a single rhyme by heart. Given a prompt made of
its first words it streams the rest of the rhyme, one word per response, with a short pause per word so that
the incremental delivery is visible; any other prompt gets a short apology. Input ``prompt`` and output
``token`` are BYTES; the callable is a generator under ``@batch``.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Iterator, List

import numpy as np

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig

LOGGER = logging.getLogger("examples.streaming_text.server")

RHYME = (
    "twinkle twinkle little star how I wonder what you are up above the world so high like a diamond in the sky"
).split()
APOLOGY = "sorry I only know one rhyme".split()
WORD_DELAY_S = 0.05  # "thinking" time per word; makes the streaming visible, not needed for correctness


def fake_llm(prompt: str) -> List[str]:
    """The words that follow ``prompt``: the rest of the rhyme when the prompt starts it, else an apology."""
    words = prompt.split()
    if words and [w.lower() for w in words] == [w.lower() for w in RHYME[: len(words)]]:
        return RHYME[len(words) :]
    return APOLOGY


@batch
def _generate(prompt: np.ndarray) -> Iterator[dict]:
    """One response per generated word. ``prompt`` is (batch, 1); rows that are done get b"" until all are."""
    replies = [fake_llm(row[0].decode("utf-8")) for row in prompt]
    for step in range(max(len(reply) for reply in replies)):
        time.sleep(WORD_DELAY_S)
        tokens = [[reply[step].encode("utf-8") if step < len(reply) else b""] for reply in replies]
        # @batch splits this (batch, 1) array back per request; each yield is streamed at once.
        yield {"token": np.array(tokens, dtype=object)}


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
        LOGGER.info("Loading FakeLLM model")
        triton.bind(
            model_name="FakeLLM",
            infer_func=_generate,
            inputs=[Tensor(name="prompt", dtype=bytes, shape=(1,))],
            outputs=[Tensor(name="token", dtype=bytes, shape=(1,))],
            config=ModelConfig(max_batch_size=8, decoupled=True),
            strict=True,
        )
        LOGGER.info("Serving models")
        triton.serve()


if __name__ == "__main__":
    main()
