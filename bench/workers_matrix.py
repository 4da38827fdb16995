"""perf_analyzer against pytriton_lite with front-end worker processes on and off, in one invocation.

    python bench/workers_matrix.py [--workers 0,1,2] [--quick] [--cases REGEX] [--window-ms 2000]
                                   [--suite local|gpu] [--pa PERF_ANALYZER] [--out DIR] [--budget-s N]

For each workers value it starts one server (``--suite local``: bench/lite_server.py; ``--suite gpu``:
bench/gpu_workers_server.py, identity + the torch MLP on CUDA) with ``PYTRITON_TRITON_CONFIG_FRONTEND_WORKERS=N``
(the env form of ``TritonConfig(frontend_workers=N)``, so the server scripts stay as they are), on free 127.0.0.1
ports, runs every case against it, and stops it. Rounds alternate the workers values so machine noise is shared.

Per case: infer/s and p50/p99 from perf_analyzer's CSV (``--async``, time windows, each call bounded by
``timeout``); server batch and CPU µs per inference from the model's statistics endpoint and /proc, both read
right before and after the perf_analyzer call: CPU = utime+stime of the server process and all its descendants
(the workers are its children), divided by the inference_count delta (warm-up included on both sides). Ratios
are against workers=0 of the same round. Start-to-ready per workers value: spawn of the script to every model
ready (HTTP) and the gRPC port accepting, and the script's own STARTUP_S (run() to ready).

``--pytriton-python PY`` (the gpu suite) also runs the same script on PyTriton 0.7 with the interpreter PY, whose
environment holds PyTriton and torch (``BENCH_IMPL=pytriton``; PY's LIBDIR first on LD_LIBRARY_PATH for PyTriton's
python-backend stub), first in every round: rows "PyTriton", and columns of lite/PyTriton ratios.

Writes DIR/{table.md, rows.csv, servers.json} and DIR/server-w<N>.log (default DIR:
bench/results/<stamp>-workers or -gpu-workers). ``--budget-s`` skips what would not fit (a workers value
whose server is not started yet); skipped items are listed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from perf_matrix import Server, machine, tree_pids  # noqa: E402  - same start/stop/readiness as the matrix


@dataclass(frozen=True)
class Case:
    name: str
    model: str
    protocol: str
    shape: str
    concurrency: int
    env: Tuple[Tuple[str, str], ...] = ()  # for perf_analyzer only


ONE_CHANNEL_EACH = (("TRITON_CLIENT_GRPC_CHANNEL_MAX_SHARE_COUNT", "1"),)

LOCAL_CASES = [
    Case("id16_http_c1", "identity_fp32", "http", "INPUT_1:16", 1),
    Case("id16_grpc_c1", "identity_fp32", "grpc", "INPUT_1:16", 1),
    Case("id16_http_c32", "identity_fp32", "http", "INPUT_1:16", 32),
    Case("id16_grpc_c32", "identity_fp32", "grpc", "INPUT_1:16", 32),
    Case("sleep1ms_http_c1", "sleep_1ms", "http", "INPUT_1:16", 1),
    Case("sleep1ms_grpc_c1", "sleep_1ms", "grpc", "INPUT_1:16", 1),
    Case("sleep1ms_http_c64", "sleep_1ms", "http", "INPUT_1:16", 64),
    Case("sleep1ms_grpc_c64", "sleep_1ms", "grpc", "INPUT_1:16", 64),
]
GPU_CASES = [
    Case("id16_http_c1", "identity_fp32", "http", "INPUT_1:16", 1),
    Case("id16_grpc_c1", "identity_fp32", "grpc", "INPUT_1:16", 1),
    Case("id16_http_c256", "identity_fp32", "http", "INPUT_1:16", 256),
    Case("id16_grpc_c256", "identity_fp32", "grpc", "INPUT_1:16", 256),
    Case("mlp_http_c256", "mlp", "http", "INPUT_1:1024", 256),
    Case("mlp_grpc_c256", "mlp", "grpc", "INPUT_1:1024", 256),
    # perf_analyzer's gRPC client shares one channel (one connection) between up to 6 of its clients by
    # default, so c=256 arrives on ~3 connections, i.e. ~3 workers (SO_REUSEPORT spreads connections); its
    # documented knob gives each client its own channel. Measured besides the default, never instead of it.
    Case("id16_grpc_c256_ch1", "identity_fp32", "grpc", "INPUT_1:16", 256, ONE_CHANNEL_EACH),
    Case("mlp_grpc_c256_ch1", "mlp", "grpc", "INPUT_1:1024", 256, ONE_CHANNEL_EACH),
]
SUITES = {
    "local": ("lite_server.py", ("identity_fp32", "add_sub", "sleep_1ms"), LOCAL_CASES, "0,1,2"),
    "gpu": ("gpu_workers_server.py", ("identity_fp32", "mlp"), GPU_CASES, "0,2,4,8"),
}
ENV_WORKERS = "PYTRITON_TRITON_CONFIG_FRONTEND_WORKERS"
PYT = -1  # the "workers" value of PyTriton 0.7's rows (--pytriton-python)


def label(w: int) -> str:
    return "PyTriton" if w == PYT else str(w)


CLK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """utime + stime (s) of one process (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(rest[11]) + int(rest[12])) / CLK


def tree_cpu_s(root: int) -> Dict[int, float]:
    """CPU s of root and each of its live descendants, by PID."""
    return {pid: proc_cpu_s(pid) for pid in tree_pids(root)}


def _is_zygote(pid: int, root: int) -> bool:
    """The process the workers are forked from (pytriton_lite/workers/zygote.py): idle, not a worker. Its
    forks share its command line, so it is the one whose parent is the server itself."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            named = b"workers.zygote" in f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            parent = int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return False
    return named and parent == root


def children_cpu_s() -> float:
    """CPU s of this process's reaped children: perf_analyzer's, once each call returns."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def model_counts(http_port: int, model: str) -> Tuple[int, int]:
    """(inference_count, execution_count) summed over the model's versions, from the statistics endpoint."""
    url = f"http://127.0.0.1:{http_port}/v2/models/{model}/stats"
    with urllib.request.urlopen(url, timeout=10) as r:
        stats = json.load(r)
    inf = sum(int(s.get("inference_count", 0)) for s in stats.get("model_stats", []))
    exe = sum(int(s.get("execution_count", 0)) for s in stats.get("model_stats", []))
    return inf, exe


def run_pa(server: Server, case: Case, args: argparse.Namespace, raw_dir: str) -> Dict[str, object]:
    """One perf_analyzer measurement (one looser retry if not stable), with server CPU and batch around it."""
    port = server.http_port if case.protocol == "http" else server.grpc_port
    csv_path = os.path.join(raw_dir, f"{case.name}.csv")
    log_path = os.path.join(raw_dir, f"{case.name}.log")
    env = dict(os.environ)
    libs = [p for p in (args.pa_lib, env.get("LD_LIBRARY_PATH")) if p]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
    env.update(case.env)
    row: Dict[str, object] = {"stable": "no"}
    inf0, exe0 = model_counts(server.http_port, case.model)
    root = server.proc.pid  # type: ignore[union-attr]
    cpu0, lg0, t0 = tree_cpu_s(root), children_cpu_s(), time.monotonic()
    with open(log_path, "w") as log:
        for stab in args.stability:
            if os.path.exists(csv_path):
                os.remove(csv_path)
            cmd = [
                args.pa, "-m", case.model, "-u", f"127.0.0.1:{port}", "-i", case.protocol,
                "--shape", case.shape, "--concurrency-range", str(case.concurrency), "--async",
                "--measurement-mode", "time_windows", "--measurement-interval", str(args.window_ms),
                "--max-trials", str(args.max_trials), "--stability-percentage", str(stab), "-f", csv_path,
            ]  # fmt: skip
            log.write(" ".join(cmd) + "\n")
            log.flush()
            try:
                rc = subprocess.run(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                    timeout=args.pa_timeout_s, check=False,
                ).returncode  # fmt: skip
            except subprocess.TimeoutExpired:  # subprocess.run kills it
                rc = 124
            if os.path.exists(csv_path) and os.path.getsize(csv_path) > 0:
                row["stable"] = f"{stab}%"
                break
    wall, cpu1, lg1 = time.monotonic() - t0, tree_cpu_s(root), children_cpu_s()
    deltas = {pid: t - cpu0.get(pid, 0.0) for pid, t in cpu1.items()}  # a restarted worker counts from 0
    cpu = sum(deltas.values())
    workers = sorted((d for pid, d in deltas.items() if pid != root and not _is_zygote(pid, root)), reverse=True)
    inf1, exe1 = model_counts(server.http_port, case.model)
    row["rc"] = rc
    try:
        with open(csv_path) as f:
            last = list(csv.DictReader(f))[-1]
        row["infer_per_s"] = float(last["Inferences/Second"])
        row["p50_ms"] = float(last["p50 latency"]) / 1000
        row["p99_ms"] = float(last["p99 latency"]) / 1000
    except (OSError, IndexError, KeyError, ValueError):
        with open(log_path, errors="replace") as f:
            row["error"] = " ".join(f.read().split()[-30:])
    d_inf, d_exe = inf1 - inf0, exe1 - exe0
    row["inferences"] = d_inf
    row["batch"] = d_inf / d_exe if d_exe else None
    row["cpu_us_per_inf"] = cpu * 1e6 / d_inf if d_inf else None
    row["server_cpu_cores"] = cpu / wall if wall else None
    # the serving process alone per inference: what caps throughput however many workers there are
    row["serving_us_per_inf"] = deltas.get(root, 0.0) * 1e6 / d_inf if d_inf else None
    row["serving_proc_cores"] = deltas.get(root, 0.0) / wall if wall else None  # the serving process alone
    # how evenly the kernel spread the connections: the busiest and the idlest worker
    row["worker_cores_max"] = workers[0] / wall if workers and wall else None
    row["worker_cores_min"] = workers[-1] / wall if workers and wall else None
    row["loadgen_cores"] = (lg1 - lg0) / wall if wall else None
    return row


def num(v: object) -> Optional[float]:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def median(rows: List[Dict[str, object]], key: str) -> Optional[float]:
    vals = [v for v in (num(r.get(key)) for r in rows) if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v: Optional[float], nd: int = 0) -> str:
    return "–" if v is None else f"{v:,.{nd}f}"


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


def render(rows: List[Dict[str, object]], cases: List[Case], workers: List[int]) -> str:
    head = ["case", "workers", "infer/s", "p50 ms", "p99 ms", "batch", "server cores (serving proc)"]
    head += ["worker cores max/min", "loadgen cores", "CPU µs/inf (serving proc)"]
    head += ["infer/s vs w0", "p50 vs w0", "CPU/inf vs w0"]
    with_pyt = PYT in workers
    if with_pyt:
        head += ["infer/s vs PyTriton", "p50 vs PyTriton"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    baseline = next((w for w in workers if w != PYT), None)
    for case in cases:
        base: Dict[str, Optional[float]] = {}
        pyt: Dict[str, Optional[float]] = {}
        for w in sorted(workers, key=lambda x: (x != PYT, x != baseline)):  # PyTriton, baseline, the others
            mine = [r for r in rows if r["case"] == case.name and r["workers"] == w]
            if not mine:
                continue
            m = {
                k: median(mine, k)
                for k in (
                    "infer_per_s",
                    "p50_ms",
                    "p99_ms",
                    "batch",
                    "server_cpu_cores",
                    "serving_proc_cores",
                    "worker_cores_max",
                    "worker_cores_min",
                    "loadgen_cores",
                    "cpu_us_per_inf",
                    "serving_us_per_inf",
                )
            }
            if w == baseline:
                base = m
            if w == PYT:
                pyt = m
            extra = [ratio(m["infer_per_s"], pyt.get("infer_per_s")), ratio(m["p50_ms"], pyt.get("p50_ms"))]
            lines.append(
                "| "
                + " | ".join(
                    [
                        case.name,
                        label(w),
                        fmt(m["infer_per_s"]),
                        fmt(m["p50_ms"], 2),
                        fmt(m["p99_ms"], 2),
                        fmt(m["batch"], 1),
                        f"{fmt(m['server_cpu_cores'], 2)} ({fmt(m['serving_proc_cores'], 2)})",
                        f"{fmt(m['worker_cores_max'], 2)} / {fmt(m['worker_cores_min'], 2)}",
                        fmt(m["loadgen_cores"], 2),
                        f"{fmt(m['cpu_us_per_inf'])} ({fmt(m['serving_us_per_inf'])})",
                        ratio(m["infer_per_s"], base.get("infer_per_s")),
                        ratio(m["p50_ms"], base.get("p50_ms")),
                        ratio(m["cpu_us_per_inf"], base.get("cpu_us_per_inf")),
                    ]
                    + (extra if with_pyt else [])
                )
                + " |"
            )
    lines.append("")
    lines.append(
        f"Ratios against workers={baseline}"
        + (" and against PyTriton 0.7 (its own run of the same script)" if with_pyt else "")
        + ". batch = inference_count / execution_count delta over the call; "
        "server cores = CPU time of the server process and its worker children / wall time of the call, in "
        "brackets the serving process alone; worker cores max/min = the busiest and the idlest worker (how "
        "evenly SO_REUSEPORT spread the connections); loadgen cores = perf_analyzer's CPU time / the same wall time; "
        "CPU µs/inf = that CPU time / inferences served in the call (perf_analyzer's warm-up included), in brackets "
        "the serving process's alone (1e6 / it bounds infer/s however many workers serve)."
    )
    return "\n".join(lines)


def render_servers(facts: Dict[int, Dict[str, object]]) -> str:
    lines = [
        "| workers | spawn→ready s | STARTUP_S (start call → ready) | stop s | idle RSS MiB (PSS) / processes |",
        "|---|---|---|---|---|",
    ]
    for w, f in sorted(facts.items()):
        idle: Dict[str, object] = f.get("idle") or {}  # type: ignore[assignment]
        lines.append(
            f"| {label(w)} | {f.get('spawn_to_ready_s', '–')} | {f.get('startup_s_self_reported') or '–'} | "
            f"{f.get('stop_s', '–')}{' (SIGKILL)' if f.get('stop_forced') else ''} | "
            f"{idle.get('rss_mib', '–')} ({idle.get('pss_mib', '–')}) / {idle.get('processes', '–')} |"
        )
    return "\n".join(lines)


def not_paying(rows: List[Dict[str, object]], cases: List[Case], done: List[int]) -> str:
    """Why one more workers value is not worth a run ("" = it may be): the last value measured raised no
    loaded case's infer/s by 10 % over the one before it."""
    if len(done) < 2:
        return "fewer than two values measured"
    last, prev = done[-1], done[-2]

    def ips(c: Case, w: int) -> float:
        return median([r for r in rows if r["case"] == c.name and r["workers"] == w], "infer_per_s") or 0.0

    gain = max([ips(c, last) / (ips(c, prev) or 1.0) for c in cases if c.concurrency > 1] or [0.0])
    return "" if gain >= 1.10 else f"workers={last} gained at most {gain:.2f}× over {prev}"


def venv_cudart(pa: str) -> str:
    """The libcudart 12 folder of perf_analyzer's venv ("" if none), as ../shared/bench/run_perf.sh finds it."""
    lib = os.path.join(os.path.dirname(os.path.dirname(pa)), "lib")
    if not os.path.isdir(lib):
        return ""
    found = [os.path.join(lib, d, "site-packages", "nvidia", "cuda_runtime", "lib") for d in sorted(os.listdir(lib))]
    return next((p for p in found if os.path.isdir(p)), "")


def print_row(row: Dict[str, object]) -> None:
    print(
        f"{row['case']:<18} w={label(row['workers']):<2} infer/s {fmt(num(row.get('infer_per_s'))):>8}  "
        f"p50 {fmt(num(row.get('p50_ms')), 2):>6} ms  p99 {fmt(num(row.get('p99_ms')), 2):>7} ms  "
        f"batch {fmt(num(row.get('batch')), 1):>5}  cores {fmt(num(row.get('server_cpu_cores')), 2):>5} "
        f"(main {fmt(num(row.get('serving_proc_cores')), 2)}, loadgen {fmt(num(row.get('loadgen_cores')), 2)})  "
        f"CPU µs/inf {fmt(num(row.get('cpu_us_per_inf'))):>5} (main {fmt(num(row.get('serving_us_per_inf')))})  "
        f"[{row['stable']}] load {row['load1']}" + (f"  ERROR {row['error']}" if row.get("error") else ""),
        flush=True,
    )


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=sorted(SUITES), default="local")
    ap.add_argument("--workers", default=None, help="comma-separated frontend_workers values (first = baseline)")
    ap.add_argument("--cases", default=".", help="regex on case names")
    ap.add_argument("--window-ms", type=int, default=3000)
    ap.add_argument("--max-trials", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=1, help="figures become medians over rounds")
    ap.add_argument("--quick", action="store_true", help="1 s windows, 4 trials (~3 min for the local suite)")
    ap.add_argument("--pa-timeout-s", type=float, default=90.0, help="bound on each perf_analyzer call")
    ap.add_argument("--budget-s", type=float, default=0.0, help="stop starting servers after this long (0: no bound)")
    ap.add_argument("--extra-workers", default="", help="values tried only if budget is left and the last value paid")
    default_pa = os.environ.get("PERF_ANALYZER", os.path.expanduser("~/.venvs/pa/bin/perf_analyzer"))
    ap.add_argument("--pa", default=default_pa)
    ap.add_argument("--pa-lib", default=None, help="LD_LIBRARY_PATH entry for perf_analyzer (libcudart 12)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--log-dir", default=None, help="where the server-w<N>.log files go (default: --out)")
    ap.add_argument("--pytriton-python", default=None, help="a Python with PyTriton 0.7: measure it too")
    args = ap.parse_args()
    return args


def write_outputs(out_dir: str, text: str, rows: List[Dict[str, object]], facts: Dict[int, Dict[str, object]]) -> None:
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write(text)
    cols = ["round", "workers", "case", "load1", "infer_per_s", "p50_ms", "p99_ms", "batch", "server_cpu_cores",
            "serving_proc_cores", "worker_cores_max", "worker_cores_min", "loadgen_cores", "cpu_us_per_inf",
            "serving_us_per_inf", "inferences", "stable", "rc", "error"]  # fmt: skip
    with open(os.path.join(out_dir, "rows.csv"), "w", newline="") as f:
        w_ = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w_.writeheader()
        w_.writerows(rows)
    with open(os.path.join(out_dir, "servers.json"), "w") as f:
        json.dump({str(k): v for k, v in facts.items()}, f, indent=1)


class Runner:
    """Starts one server per workers value, measures every case against it, keeps rows and facts."""

    def __init__(
        self, args: argparse.Namespace, script: str, models: tuple, cases: List[Case], out_dir: str, raw_root: str
    ) -> None:
        self.args, self.script, self.models, self.cases = args, script, models, cases
        self.log_dir, self.raw_root = args.log_dir or out_dir, raw_root
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = REPO + (os.pathsep + self.env["PYTHONPATH"] if self.env.get("PYTHONPATH") else "")
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.rows: List[Dict[str, object]] = []
        self.facts: Dict[int, Dict[str, object]] = {}
        self.skipped: List[str] = []
        self.t_start = time.monotonic()
        self.per_server_s: List[float] = []

    def pytriton_env(self) -> Dict[str, str]:
        """PyTriton's server: BENCH_IMPL=pytriton, first on LD_LIBRARY_PATH the LIBDIR of its interpreter (for its
        python-backend stub, which embeds that interpreter's environment: PYTHONPATH does not reach it) and the
        wheel's bundled libraries (tritonserver runs from a copy in PyTriton's workspace, away from them)."""
        env = dict(self.env)
        env["BENCH_IMPL"] = "pytriton"
        env.pop(ENV_WORKERS, None)
        query = (
            "import os, sysconfig, pytriton; print(sysconfig.get_config_var('LIBDIR')); "
            "print(os.path.join(os.path.dirname(os.path.dirname(pytriton.__file__)), 'nvidia_pytriton.libs'))"
        )
        found = subprocess.run(
            [self.args.pytriton_python, "-c", query], capture_output=True, text=True, check=False, timeout=60
        )
        if found.returncode:  # measure() skips it, as a server that does not start
            last = (found.stderr.strip().splitlines() or ["?"])[-1]
            raise RuntimeError(f"{self.args.pytriton_python} cannot import pytriton: {last}")
        libs = found.stdout.split()
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (*libs, env.get("LD_LIBRARY_PATH")) if p)
        return env

    def skip(self, why: str) -> bool:
        self.skipped.append(why)
        print(f"# skipped {why}", flush=True)
        return False

    def measure(self, w: int, rnd: int) -> bool:
        if self.args.budget_s and self.per_server_s:
            left, need = self.args.budget_s - (time.monotonic() - self.t_start), max(self.per_server_s)
            if left < need * 1.1:
                return self.skip(f"workers={label(w)} round {rnd} ({left:.0f} s left, a server took {need:.0f} s)")
        t0 = time.monotonic()
        env = dict(self.env)
        if w == PYT:
            try:
                env = self.pytriton_env()
            except RuntimeError as exc:
                return self.skip(f"workers={label(w)} round {rnd} ({exc})")
        else:
            env[ENV_WORKERS] = str(w)
        log = os.path.join(self.log_dir, f"server-w{label(w)}.log")
        python = self.args.pytriton_python if w == PYT else sys.executable
        server = Server(f"w{w}", [python, os.path.join(HERE, self.script)], env, log, self.models)
        ports = f"http {server.http_port} grpc {server.grpc_port}"
        print(f"# workers={label(w)} round {rnd}: starting ({ports})", flush=True)
        try:
            server.start()
            print(f"#   ready: spawn→ready {server.facts['spawn_to_ready_s']} s, STARTUP_S "
                  f"{server.facts['startup_s_self_reported']}, idle {server.facts['idle']}", flush=True)  # fmt: skip
            raw = os.path.join(self.raw_root, f"r{rnd}-w{w}")
            os.makedirs(raw, exist_ok=True)
            for case in self.cases:
                row = run_pa(server, case, self.args, raw)
                row.update({"round": rnd, "workers": w, "case": case.name, "load1": round(os.getloadavg()[0], 2)})
                self.rows.append(row)
                print_row(row)
        except RuntimeError as exc:  # did not start: measure the other values rather than nothing
            return self.skip(f"workers={label(w)} round {rnd} ({exc})")
        finally:
            server.stop()
            if server.facts.get("spawn_to_ready_s") is not None and w not in self.facts:
                self.facts[w] = server.facts
            self.per_server_s.append(time.monotonic() - t0)
        return True


def main() -> int:
    args = parse_args()
    script, models, all_cases, default_workers = SUITES[args.suite]
    workers = [int(w) for w in (args.workers or default_workers).split(",") if w.strip()]
    extra = [int(w) for w in args.extra_workers.split(",") if w.strip()]
    if args.quick:
        args.window_ms, args.max_trials = min(args.window_ms, 1000), min(args.max_trials, 4)
    args.stability = (25, 50)
    if not os.path.exists(args.pa):
        raise SystemExit(f"perf_analyzer not found at {args.pa} (bench/README.md, Prerequisites)")
    if args.pa_lib is None:
        args.pa_lib = venv_cudart(args.pa)
    cases = [c for c in all_cases if re.search(args.cases, c.name)]
    suffix = "workers" if args.suite == "local" else "gpu-workers"
    out_dir = args.out or os.path.join(HERE, "results", f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}")
    os.makedirs(out_dir, exist_ok=True)
    if args.log_dir:
        os.makedirs(args.log_dir, exist_ok=True)
    raw_root = tempfile.mkdtemp(prefix="workers_matrix_")
    mach = machine()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"# {mach}\n# suite {args.suite} workers {workers} cases {len(cases)} window {args.window_ms} ms "
          f"trials {args.max_trials} rounds {args.rounds} out {out_dir}", flush=True)  # fmt: skip

    run = Runner(args, script, models, cases, out_dir, raw_root)
    rows, facts, skipped, t_start = run.rows, run.facts, run.skipped, run.t_start
    measure = run.measure

    try:
        for rnd in range(1, args.rounds + 1):
            order = workers if rnd % 2 else list(reversed(workers))  # alternate who goes first
            if args.pytriton_python:
                order = [PYT, *order]
            for w in order:
                measure(w, rnd)
        # "12 if it pays": an extra value only when the last one raised some loaded case's infer/s by >= 10 %
        for w in extra:
            why = not_paying(rows, cases, [x for x in workers if x in facts and x != PYT])
            if why:
                run.skip(f"workers={w} ({why})")
                break
            if measure(w, 1):
                workers.append(w)
    finally:
        shutil.rmtree(raw_root, ignore_errors=True)
    elapsed = time.monotonic() - t_start

    shown = ([PYT] if PYT in facts else []) + [w for w in workers if w in facts]
    table = render(rows, cases, shown)
    srv = render_servers(facts)
    cmdline = "python bench/workers_matrix.py " + " ".join(sys.argv[1:])
    header = (
        f"Run {started}, `{cmdline}`, {len(cases)} cases × workers {workers}, {args.rounds} round(s), "
        f"window {args.window_ms} ms, {elapsed / 60:.1f} min.\n"
        f"Machine: {mach}; load average at end {os.getloadavg()[0]:.2f}.\n"
    )
    text = header + "\n" + table + "\n\n" + srv + "\n"
    if skipped:
        text += "\nSkipped: " + "; ".join(skipped) + "\n"
    write_outputs(out_dir, text, rows, facts)
    print("\n" + text)
    print(f"# wrote {out_dir}/table.md, rows.csv, servers.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
