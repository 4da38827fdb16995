"""A 64 MiB FP32 identity over system shared memory vs the HTTP binary tensor extension (issue 13, section 2).

    python bench/shm_vs_binary.py                 # 64 MiB, 5 timed requests per case after 1 warm-up
    python bench/shm_vs_binary.py --mib 16 -n 10

A server runs in a child process (127.0.0.1, free ports) with an FP32 identity model. One tritonclient
client in this process sends the tensor and reads the result back, per case:

- ``http binary``: input and output in the body (the binary extension);
- ``grpc raw``: input and output as raw contents;
- ``http shm`` / ``grpc shm``: input and output in two registered ``/dev/shm`` regions (the request and
  response carry metadata only); the client writes the input into its region and reads the output from it.

Every result is checked against the input. Prints the median and best time per request and MB/s (MiB of
tensor moved per second, one direction: 64 MiB per request). Bounded: a fixed number of requests, each with
a timeout, and a child process that is killed if it outlives the run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
from typing import Callable, Dict, List

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm

SERVER = """
import sys
from pytriton_lite.config import TritonConfig
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.testing import running_triton
import numpy as np

def identity(requests):
    return [{"OUTPUT": r["INPUT"]} for r in requests]

config = TritonConfig(allow_metrics=False, http_max_input_size=int(sys.argv[1]))
with running_triton(config) as triton:
    triton.bind("identity", identity, inputs=[Tensor(name="INPUT", shape=(-1,), dtype=np.float32)],
                outputs=[Tensor(name="OUTPUT", shape=(-1,), dtype=np.float32)], config=ModelConfig(batching=False))
    print(triton.http_port, triton.grpc_port, flush=True)
    sys.stdin.read()  # until the parent closes it
"""
TIMEOUT_S = 60.0


def _timed(fn: Callable[[], None], warmup: int, n: int) -> List[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="tensor size in MiB")
    parser.add_argument("-n", type=int, default=5, help="timed requests per case")
    args = parser.parse_args()
    nbytes = args.mib << 20
    data = np.random.default_rng(0).random(nbytes // 4, dtype=np.float32)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(nbytes + (1 << 20))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    handles = []
    try:
        assert server.stdout is not None
        http_port, grpc_port = server.stdout.readline().split()
        http = httpclient.InferenceServerClient(f"127.0.0.1:{http_port}", network_timeout=TIMEOUT_S)
        grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        tag = uuid.uuid4().hex[:8]
        in_handle = shm.create_shared_memory_region(f"in_{tag}", f"/bench_in_{tag}", nbytes)
        out_handle = shm.create_shared_memory_region(f"out_{tag}", f"/bench_out_{tag}", nbytes)
        handles = [in_handle, out_handle]
        http.unregister_system_shared_memory()
        http.register_system_shared_memory("bench_in", f"/bench_in_{tag}", nbytes)
        http.register_system_shared_memory("bench_out", f"/bench_out_{tag}", nbytes)

        def binary(mod: object, client: object) -> Callable[[], None]:
            def run() -> None:
                inp = mod.InferInput("INPUT", [data.size], "FP32")  # type: ignore[attr-defined]
                if mod is httpclient:
                    inp.set_data_from_numpy(data, binary_data=True)
                    out = [mod.InferRequestedOutput("OUTPUT", binary_data=True)]  # type: ignore[attr-defined]
                else:
                    inp.set_data_from_numpy(data)
                    out = [mod.InferRequestedOutput("OUTPUT")]  # type: ignore[attr-defined]
                result = client.infer("identity", [inp], outputs=out)  # type: ignore[attr-defined]
                assert np.array_equal(result.as_numpy("OUTPUT"), data)

            return run

        def in_shm(mod: object, client: object) -> Callable[[], None]:
            def run() -> None:
                shm.set_shared_memory_region(in_handle, [data])
                inp = mod.InferInput("INPUT", [data.size], "FP32")  # type: ignore[attr-defined]
                inp.set_shared_memory("bench_in", nbytes)
                out = mod.InferRequestedOutput("OUTPUT")  # type: ignore[attr-defined]
                out.set_shared_memory("bench_out", nbytes)
                client.infer("identity", [inp], outputs=[out])  # type: ignore[attr-defined]
                got = shm.get_contents_as_numpy(out_handle, np.float32, [data.size])
                assert np.array_equal(got, data)

            return run

        cases: Dict[str, Callable[[], None]] = {
            "http binary": binary(httpclient, http),
            "grpc raw": binary(grpcclient, grpc),
            "http shm": in_shm(httpclient, http),
            "grpc shm": in_shm(grpcclient, grpc),
        }
        print(f"{args.mib} MiB FP32 identity, {args.n} requests per case (client and server on one host)")
        print(f"{'case':<12} {'median ms':>10} {'best ms':>9} {'MB/s':>8}")
        for name, fn in cases.items():
            times = _timed(fn, 1, args.n)
            median = statistics.median(times)
            print(f"{name:<12} {median * 1e3:>10.1f} {min(times) * 1e3:>9.1f} {nbytes / 2**20 / median:>8.0f}")
        http.unregister_system_shared_memory()
        http.close()
        grpc.close()
    finally:
        for handle in handles:
            shm.destroy_shared_memory_region(handle)
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
