"""Start-to-ready, stop time and idle RSS of a pytriton_lite server (one model), in a fresh process per run.

    python bench/startup.py [--runs 5]

Each run is a new interpreter: it imports pytriton_lite, binds an identity model, calls run(), confirms
readiness with a real tritonclient HTTP call, measures RSS, then times stop(). Prints one line per run and
the medians. Targets (issue 2/5): ready < 0.3 s, stop < 0.5 s, idle RSS <= 120 MiB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, time
    t_import = time.perf_counter()
    import numpy as np
    from pytriton_lite.triton import Triton, TritonConfig
    from pytriton_lite.model_config import ModelConfig, Tensor
    import tritonclient.http as httpclient
    imported = time.perf_counter() - t_import

    def identity(requests):
        return [{"OUTPUT_1": r["INPUT_1"]} for r in requests]

    t0 = time.perf_counter()
    triton = Triton(config=TritonConfig(http_address="127.0.0.1", grpc_address="127.0.0.1",
                                        metrics_address="127.0.0.1", http_port=0, grpc_port=0, metrics_port=0))
    triton.bind("identity", identity, inputs=[Tensor(dtype=np.float32, shape=(-1,))],
                outputs=[Tensor(dtype=np.float32, shape=(-1,))], config=ModelConfig(max_batch_size=8))
    triton.run()
    ready = time.perf_counter() - t0
    client = httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}")
    assert client.is_server_ready() and client.is_model_ready("identity")
    client.close()
    with open("/proc/self/status") as f:
        rss_kib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    t1 = time.perf_counter()
    assert triton.stop()
    stopped = time.perf_counter() - t1
    print(json.dumps({"import_s": imported, "ready_s": ready, "stop_s": stopped, "rss_mib": rss_kib / 1024}))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for run in range(args.runs):
        out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"run {run + 1}: import {row['import_s']:.3f} s  start->ready {row['ready_s']:.3f} s  "
            f"stop {row['stop_s']:.3f} s  idle RSS {row['rss_mib']:.1f} MiB"
        )
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(
        f"median: import {med['import_s']:.3f} s  start->ready {med['ready_s']:.3f} s  stop {med['stop_s']:.3f} s  "
        f"idle RSS {med['rss_mib']:.1f} MiB   (targets: ready < 0.3 s, stop < 0.5 s, RSS <= 120 MiB)"
    )


if __name__ == "__main__":
    main()
