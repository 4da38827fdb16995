"""A/B of two pytriton_lite trees in one run: the same perf_analyzer cases against both, taking turns.

    cp -r pytriton_lite /tmp/base/pytriton_lite      # before the change
    python bench/ab_lite.py --base /tmp/base [--cases REGEX] [--rounds 3]

Starts ``bench/lite_server.py`` twice (``--base`` first on PYTHONPATH, then this checkout), runs each case on
both (the order alternates per round, so a noisy neighbour hits both alike) through ``perf_matrix.run_case``,
and prints infer/s, p50 and server CPU µs per inference (medians over rounds). Identity 16×FP32 at c=1 and
c=32 over HTTP and gRPC by default.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf_matrix as pm  # the harness next to this file

DEFAULT_CASES = r"^a_id16_(http|grpc)_c(1|32)$"


def cpu_us(row: Dict[str, str]) -> Optional[float]:
    cpu, ips = pm.num(row.get("server_cpu_pct")), pm.num(row.get("infer_per_s"))
    return cpu * 1e4 / ips if cpu is not None and ips else None


def median(rows: List[Dict[str, str]], case: str, server: str, key: str) -> Optional[float]:
    values = [
        cpu_us(r) if key == "cpu_us" else pm.num(r.get(key)) for r in rows if (r["case"], r["server"]) == (case, server)
    ]
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="a folder holding the baseline pytriton_lite package")
    ap.add_argument("--cases", default=DEFAULT_CASES)
    ap.add_argument("--window-ms", type=int, default=2000)
    ap.add_argument("--max-trials", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--pa", default=os.environ.get("PERF_ANALYZER", os.path.expanduser("~/.venvs/pa/bin/perf_analyzer"))
    )
    ap.add_argument("--out", default=os.path.join(pm.HERE, "results"))
    args = ap.parse_args()
    cases = [c for c, model, _ in pm.CASES if re.search(args.cases, c) and model == "identity_fp32"]
    out = os.path.join(args.out, "ab-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    script = os.path.join(pm.HERE, "lite_server.py")
    servers = []
    for name, path in (("base", os.path.abspath(args.base)), ("new", pm.REPO)):
        env = dict(os.environ, PYTHONPATH=path)
        servers.append(
            pm.Server(name, [sys.executable, script], env, os.path.join(out, f"{name}.log"), ("identity_fp32",))
        )
    rows: List[Dict[str, str]] = []
    try:
        for server in servers:
            server.start()
        for rnd in range(args.rounds):
            for case in cases:
                for server in servers if rnd % 2 == 0 else servers[::-1]:
                    row = pm.run_case(server, case, args, os.path.join(out, f"round{rnd}"))
                    row.update(server=server.name, case=case, round=str(rnd))
                    rows.append(row)
                    print(
                        f"{case:<18} {server.name:<5} infer/s {row.get('infer_per_s') or '-':>8}  "
                        f"p50 {row.get('p50_ms') or '-':>6} ms  CPU µs/inf {pm.fmt(cpu_us(row))}  "
                        f"[{row.get('stable')}] load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
    finally:
        for server in servers:
            server.stop()
    print("\n| case | infer/s base → new | p50 ms base → new | server CPU µs/inf base → new |\n|---|---|---|---|")
    for case in cases:
        cells = []
        for key, nd in (("infer_per_s", 0), ("p50_ms", 3), ("cpu_us", 0)):
            base, new = median(rows, case, "base", key), median(rows, case, "new", key)
            cells.append(f"{pm.fmt(base, nd)} → {pm.fmt(new, nd)}")
        print(f"| {case} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
