"""Soak: N requests from C concurrent clients, HTTP and gRPC mixed, every answer checked; prints what was lost.

    python bench/soak.py                     # 100,000 requests, 64 clients (half HTTP, half gRPC), ~2 min here
    python bench/soak.py --requests 20000 --clients 16

The server runs in this process on 127.0.0.1 (ephemeral ports) with one batching identity model that also adds
each request's id, so a response that went to the wrong request is caught, not only a missing one. Bounded in
count and time (``--max-seconds``). Prints requests/s, failures, mismatches, the server's own success count and
the process RSS before and after (a leak shows as growth that does not level off across runs).
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from typing import Dict, List

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from pytriton_lite.decorators import batch
from pytriton_lite.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton_lite.triton import Triton, TritonConfig, TritonSecurityConfig


@batch
def _add_id(x: np.ndarray, rid: np.ndarray) -> Dict[str, np.ndarray]:
    return {"y": x + rid}


def _rss_mib() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _client(kind: str, url: str, count: int, offset: int, deadline: float, out: Dict[str, int]) -> None:
    module = httpclient if kind == "http" else grpcclient
    client = module.InferenceServerClient(url)
    ok = failed = wrong = 0
    x = np.arange(16, dtype=np.float32).reshape(1, 16)
    try:
        for i in range(count):
            if time.monotonic() > deadline:
                break
            rid = float(offset + i)
            a = module.InferInput("x", [1, 16], "FP32")
            a.set_data_from_numpy(x)
            b = module.InferInput("rid", [1, 1], "FP32")
            b.set_data_from_numpy(np.array([[rid]], dtype=np.float32))
            try:
                y = client.infer("soak", [a, b]).as_numpy("y")
            except Exception:  # noqa: BLE001 - a failure is what the soak counts
                failed += 1
                continue
            if y is not None and np.array_equal(y, x + rid):
                ok += 1
            else:
                wrong += 1
    finally:
        client.close()
    with _LOCK:
        out["ok"] += ok
        out["failed"] += failed
        out["wrong"] += wrong


_LOCK = threading.Lock()


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)

    config = TritonConfig(
        http_address="127.0.0.1", grpc_address="127.0.0.1", metrics_address="127.0.0.1",
        http_port=0, grpc_port=0, metrics_port=0,
    )  # fmt: skip
    with Triton(config=config, security_config=TritonSecurityConfig(restricted_endpoints=[])) as triton:
        triton.bind(
            "soak",
            _add_id,
            inputs=[Tensor(name="x", dtype=np.float32, shape=(16,)), Tensor(name="rid", dtype=np.float32, shape=(1,))],
            outputs=[Tensor(name="y", dtype=np.float32, shape=(16,))],
            config=ModelConfig(max_batch_size=64, batcher=DynamicBatcher(max_queue_delay_microseconds=200)),
        )
        rss_before = _rss_mib()
        per_client = args.requests // args.clients
        out = {"ok": 0, "failed": 0, "wrong": 0}
        deadline = time.monotonic() + args.max_seconds
        threads = []
        for index in range(args.clients):
            kind = "http" if index % 2 == 0 else "grpc"
            url = f"127.0.0.1:{triton.http_port if kind == 'http' else triton.grpc_port}"
            offset = index * per_client
            threads.append(
                threading.Thread(target=_client, args=(kind, url, per_client, offset, deadline, out), daemon=True)
            )
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(1.0, deadline - time.monotonic() + 30))
        elapsed = time.monotonic() - started
        stats = httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}")
        served = stats.get_inference_statistics("soak")["model_stats"][0]
        stats.close()
        rss_after = _rss_mib()
    sent = per_client * args.clients
    print(
        f"soak: {sent} requests from {args.clients} clients (HTTP and gRPC) in {elapsed:.1f} s "
        f"({out['ok'] / elapsed:,.0f} req/s): {out['ok']} correct, {out['failed']} failed, {out['wrong']} wrong, "
        f"{sent - out['ok'] - out['failed'] - out['wrong']} not sent (time bound); server counted "
        f"{served['inference_stats']['success']['count']} successes in {served['execution_count']} executions; "
        f"RSS {rss_before:.0f} -> {rss_after:.0f} MiB (clients and server in one process)"
    )
    return 0 if out["ok"] == sent else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
