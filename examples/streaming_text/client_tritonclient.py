"""Streams FakeLLM's words with tritonclient's gRPC stream API (no pytriton_lite import) and checks them.

Two requests share one stream. With ``enable_empty_final_response=True`` every data response carries
``triton_final_response=false`` and an empty response with ``triton_final_response=true`` (and the request's
id) tells that a request is complete, so the client knows when to stop reading.
"""

from __future__ import annotations

import argparse
import logging
import queue
import time
from typing import Dict, List

import numpy as np
import tritonclient.grpc as grpcclient

LOGGER = logging.getLogger("examples.streaming_text.client_tritonclient")

PROMPTS = {  # request id: (prompt, expected words)
    "rhyme": (
        "twinkle twinkle little star",
        "how I wonder what you are up above the world so high like a diamond in the sky",
    ),
    "other": ("hello there", "sorry I only know one rhyme"),
}
RESPONSE_TIMEOUT_S = 30.0


def _grpc_address(url: str) -> str:
    """tritonclient.grpc wants host:port without a scheme."""
    address = url.split("://", 1)[1] if "://" in url else url
    return address if ":" in address else f"{address}:8001"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="grpc://localhost:8001", help="grpc://host:port or host[:port]")
    parser.add_argument("--init-timeout-s", type=float, default=60.0, help="How long to wait for the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    responses: queue.Queue = queue.Queue()
    with grpcclient.InferenceServerClient(_grpc_address(args.url)) as client:
        deadline = time.monotonic() + args.init_timeout_s
        while not client.is_model_ready("FakeLLM"):
            assert time.monotonic() < deadline, "FakeLLM is not ready"
            time.sleep(0.1)

        # The callback runs on tritonclient's stream thread; hand everything over to this thread.
        client.start_stream(callback=lambda result, error: responses.put((result, error)))
        for request_id, (prompt, _) in PROMPTS.items():
            tensor = grpcclient.InferInput("prompt", [1, 1], "BYTES")  # FakeLLM batches: [batch, 1]
            tensor.set_data_from_numpy(np.array([[prompt.encode("utf-8")]], dtype=object))
            client.async_stream_infer("FakeLLM", [tensor], request_id=request_id, enable_empty_final_response=True)

        words: Dict[str, List[str]] = {request_id: [] for request_id in PROMPTS}
        pending = set(PROMPTS)
        counts = {request_id: 0 for request_id in PROMPTS}
        while pending:
            result, error = responses.get(timeout=RESPONSE_TIMEOUT_S)
            assert error is None, f"stream error: {error}"
            response = result.get_response()
            counts[response.id] += 1
            if response.parameters["triton_final_response"].bool_param:
                assert not response.outputs, "the final response is the empty one"
                pending.discard(response.id)
                LOGGER.info("request %s complete after %d responses", response.id, counts[response.id])
                continue
            word = result.as_numpy("token")[0, 0].decode("utf-8")
            LOGGER.info("%s: %s", response.id, word)
            words[response.id].append(word)
        client.stop_stream()

    for request_id, (_, expected) in PROMPTS.items():
        assert words[request_id] == expected.split(), (request_id, words[request_id])
        assert counts[request_id] == len(expected.split()) + 1, counts  # one per word + the empty final one
    LOGGER.info("OK")


if __name__ == "__main__":
    main()
