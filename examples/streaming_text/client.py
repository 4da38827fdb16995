"""Streams FakeLLM's words with pytriton_lite's DecoupledModelClient (gRPC only) and checks them."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from pytriton_lite.client import DecoupledModelClient

LOGGER = logging.getLogger("examples.streaming_text.client")

PROMPT = "Twinkle twinkle little star"
EXPECTED = "how I wonder what you are up above the world so high like a diamond in the sky".split()
SECOND_PROMPT = "twinkle twinkle little star how I wonder what you are up above the world so high"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="grpc://localhost:8001", help="grpc://host:port (streams need gRPC)")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    # inference_timeout_s bounds the wait for each response, not the whole stream.
    client = DecoupledModelClient(args.url, "FakeLLM", init_timeout_s=args.init_timeout_s, inference_timeout_s=30)
    with client:
        LOGGER.info("prompt: %s", PROMPT)
        words = []
        # infer_sample sends one prompt and returns an iterator: each item is one response, as it arrives.
        for partial in client.infer_sample(prompt=np.array([PROMPT.encode("utf-8")], dtype=object)):
            word = partial["token"][0].decode("utf-8")  # the batch axis is removed by infer_sample
            LOGGER.info("word %d: %s", len(words) + 1, word)
            words.append(word)
        assert words == EXPECTED, words

        # infer_batch: two prompts in one request; each response carries one word per row, b"" once a row is done.
        prompts = np.array([[PROMPT.encode("utf-8")], [SECOND_PROMPT.encode("utf-8")]], dtype=object)
        rows = [[], []]
        for partial in client.infer_batch(prompt=prompts):
            assert partial["token"].shape == (2, 1), partial["token"].shape
            for row, token in zip(rows, partial["token"][:, 0]):
                if token:
                    row.append(token.decode("utf-8"))
        LOGGER.info("batch: %s", [" ".join(row) for row in rows])
        assert rows == [EXPECTED, ["like", "a", "diamond", "in", "the", "sky"]], rows
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
