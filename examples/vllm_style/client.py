"""Calls the vLLM-style model with pytriton_lite's AsyncioDecoupledModelClient (gRPC only) and checks the text."""

from __future__ import annotations

import argparse
import asyncio
import logging

import numpy as np

from pytriton_lite.client import AsyncioDecoupledModelClient

LOGGER = logging.getLogger("examples.vllm_style.client")

PROMPT = "Once upon a time"


def _prompt(text: str) -> np.ndarray:
    return np.array([text.encode("utf-8")], dtype=object)


async def run(url: str, init_timeout_s: float) -> None:
    async with AsyncioDecoupledModelClient(
        url, "vllm_style", init_timeout_s=init_timeout_s, inference_timeout_s=30
    ) as client:
        # stream=True: one response per generated word, each the text so far.
        texts = []
        async for partial in client.infer_sample(
            prompt=_prompt(PROMPT), max_tokens=np.array([4], dtype=np.int32), stream=np.array([True])
        ):
            texts.append(partial["text"][0].decode("utf-8"))
            LOGGER.info("partial %d: %s", len(texts), texts[-1])
        assert texts == [
            "Once upon a time lorem",
            "Once upon a time lorem ipsum",
            "Once upon a time lorem ipsum dolor",
            "Once upon a time lorem ipsum dolor sit",
        ], texts

        # Both optional inputs left out: max_tokens defaults to 8 and stream to false, so one response.
        results = [partial async for partial in client.infer_sample(prompt=_prompt(PROMPT))]
        assert len(results) == 1, results
        text = results[0]["text"][0].decode("utf-8")
        LOGGER.info("non-streaming: %s", text)
        assert text == "Once upon a time lorem ipsum dolor sit amet consectetur adipiscing elit", text
    LOGGER.info("OK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="grpc://localhost:8001", help="grpc://host:port (streams need gRPC)")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(run(args.url, args.init_timeout_s))


if __name__ == "__main__":
    main()
