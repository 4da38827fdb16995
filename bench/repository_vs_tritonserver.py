"""One python-backend model repository, served by pytriton_lite and by the real tritonserver, same perf_analyzer cases.

    python bench/repository_vs_tritonserver.py [--quick] [--runs 5] [--rounds 1] [--window-ms 3000] [--cases TEXT]
                                               [--skip-startup] [--no-ceiling] [--pyt-venv ~/.venvs/pyt] [--pa PA]

Default ~5 min on 2 cores, --quick (1 s windows, 3 start runs, no text_generation over HTTP) ~2 min.

The tritonserver is the 2.51 binary inside the nvidia-pytriton 0.7.0 wheel (it carries the python backend only),
started on the repository directly as ../shared/bench/README.md shows (a backends folder with the python stub of
the venv's interpreter, LD_LIBRARY_PATH = the interpreter's LIBDIR + the wheel's libs, the venv first on PATH so
the stub finds numpy). pytriton_lite is `python -m pytriton_lite serve --model-repository DIR`.

1. Writes, in a temporary folder, a repository of `identity_fp32` (16 x FP32, max_batch_size 128, dynamic
   batching, python backend) and `text_generation` (copied from examples/model_repository), and a 10-model
   repository of python identity models (bench/repository_startup.py's) for start-to-ready.
2. Start-to-ready: process start until /v2/health/ready is 200 and every model answers ready, for the 10-model
   repository, --runs times per server, servers alternating; medians.
3. perf_analyzer (--async, time windows, bounded by --max-trials and a timeout, one looser retry) on the servers
   running side by side, case by case, the servers taking turns within a case (order flipped every round). For
   the identity cases the no-op ceiling (../shared/bench/ceiling_server.py, same uvicorn + grpc.aio stack as
   pytriton_lite) runs too, unless --no-ceiling; it needs starlette in $CEILING_DEPS (bench/README.md).
4. Prints a table with the ratios pytriton_lite / tritonserver against issue 9's targets (c=1 p50 <= 0.3x,
   c=32 infer/s >= 3x, start-to-ready <= 1 s for 10 models) and writes bench/results/<stamp>-repo-vs-triton/.

Not a test: it prints figures. Servers run in their own sessions and are stopped by PID (SIGTERM, then SIGKILL to
their process group after a timeout) at the end and on any error.
"""

from __future__ import annotations

import argparse
import csv
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Sequence, Tuple

from perf_matrix import CEILING_LAUNCHER, SHARED_BENCH, alive, free_port, machine, tree_memory_mib, tree_pids
from repository_startup import build as build_startup_repository

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TEXT_GENERATION = os.path.join(REPO, "examples", "model_repository", "models", "text_generation")

IDENTITY_CONFIG = """backend: "python"
max_batch_size: 128
input [ { name: "INPUT_1" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT_1" data_type: TYPE_FP32 dims: [ 16 ] } ]
dynamic_batching { }
instance_group [ { count: 1 kind: KIND_CPU } ]
"""
IDENTITY_MODEL = """import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "INPUT_1").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT_1", data)]))
        return responses
"""
BENCH_MODELS = ("identity_fp32", "text_generation")
STARTUP_MODELS = 10
# label, model, protocol, concurrency
CASES: List[Tuple[str, str, str, int]] = [
    ("identity HTTP c=1", "identity_fp32", "http", 1),
    ("identity HTTP c=32", "identity_fp32", "http", 32),
    ("identity gRPC c=1", "identity_fp32", "grpc", 1),
    ("identity gRPC c=32", "identity_fp32", "grpc", 32),
    ("text_generation gRPC c=1", "text_generation", "grpc", 1),
    ("text_generation gRPC c=32", "text_generation", "grpc", 32),
    ("text_generation HTTP c=1", "text_generation", "http", 1),
    ("text_generation HTTP c=32", "text_generation", "http", 32),
]
QUICK_SKIP = ("text_generation HTTP",)
PROMPT = "once upon"  # perf_analyzer --string-data: every BYTES element is this prompt
# the ceiling (../shared/bench/ceiling_server.py through perf_matrix's launcher): a no-op echo server on the same
# uvicorn + grpc.aio stack as pytriton_lite, identity only; what any server on that stack can reach at best
SERVERS = ("lite", "triton", "ceiling")
STARTUP_SERVERS = ("lite", "triton")
# pip install --target ~/.venvs/starlette --no-deps starlette (uvicorn, anyio, grpcio, tritonclient: from our venv)
CEILING_DEPS = os.path.expanduser(os.environ.get("CEILING_DEPS", "~/.venvs/starlette"))
LABELS = {"lite": "pytriton_lite", "triton": "tritonserver", "ceiling": "ceiling"}
P50_TARGET, IPS_TARGET, READY_TARGET_S = 0.3, 3.0, 1.0


def build_bench_repository(root: pathlib.Path) -> pathlib.Path:
    repository = root / "bench_models"
    (repository / "identity_fp32" / "1").mkdir(parents=True)
    (repository / "identity_fp32" / "config.pbtxt").write_text(IDENTITY_CONFIG)
    (repository / "identity_fp32" / "1" / "model.py").write_text(IDENTITY_MODEL)
    shutil.copytree(TEXT_GENERATION, repository / "text_generation", ignore=shutil.ignore_patterns("__pycache__"))
    return repository


class Launcher:
    """How to start one kind of server on a repository (command line and environment)."""

    def __init__(self, name: str, work: pathlib.Path, pyt_venv: str) -> None:
        self.name = name
        self.env = dict(os.environ)
        if name in ("lite", "ceiling"):
            self.env["PYTHONPATH"] = REPO + (os.pathsep + self.env["PYTHONPATH"] if self.env.get("PYTHONPATH") else "")
            if name == "ceiling":  # it needs starlette, which pytriton_lite does not: a side folder (CEILING_DEPS)
                self.env["PYTHONPATH"] = CEILING_DEPS + os.pathsep + self.env["PYTHONPATH"]
            return
        py = os.path.join(os.path.expanduser(pyt_venv), "bin", "python")
        if not os.path.exists(py):
            raise SystemExit(f"no {py}: install nvidia-pytriton==0.7.0 there (../shared/bench/README.md)")
        probe = (
            "import sys, sysconfig; print('%d.%d' % sys.version_info[:2]); print(sysconfig.get_config_var('LIBDIR'))"
        )
        version, libdir = subprocess.run(
            [py, "-c", probe], capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
        site = subprocess.run(
            [py, "-c", "import pytriton, os; print(os.path.dirname(pytriton.__file__))"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        wheel = os.path.join(site, "tritonserver")
        self.binary = os.path.join(wheel, "bin", "tritonserver")
        # the python stub of this interpreter's version must sit beside libtriton_python.so
        self.backends = work / "backends"
        shutil.copytree(os.path.join(wheel, "backends"), self.backends)
        shutil.copy2(
            os.path.join(wheel, "python_backend_stubs", version, "triton_python_backend_stub"), self.backends / "python"
        )
        self.env.pop("PYTHONPATH", None)  # our packages must not leak into the stub's interpreter
        libs = os.path.abspath(os.path.join(site, "..", "nvidia_pytriton.libs"))
        self.env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, libs, self.env.get("LD_LIBRARY_PATH")) if p)
        self.env["PATH"] = os.path.join(os.path.expanduser(pyt_venv), "bin") + os.pathsep + self.env.get("PATH", "")

    def command(self, repository: pathlib.Path, ports: Sequence[int]) -> List[str]:
        if self.name == "lite":
            cmd = [sys.executable, "-m", "pytriton_lite", "serve", "--model-repository", str(repository)]
            for kind, port in zip(("http", "grpc", "metrics"), ports):
                cmd += [f"--{kind}-port", str(port), f"--{kind}-address", "127.0.0.1"]
            return cmd
        if self.name == "ceiling":
            return [
                sys.executable,
                "-c",
                CEILING_LAUNCHER,
                SHARED_BENCH,
                "--http-port",
                str(ports[0]),
                "--grpc-port",
                str(ports[1]),
            ]
        cmd = [self.binary, f"--model-repository={repository}", f"--backend-directory={self.backends}"]
        for kind, port in zip(("http", "grpc", "metrics"), ports):
            cmd += [f"--{kind}-port={port}", f"--{kind}-address=127.0.0.1"]
        return cmd + ["--exit-timeout-secs=10"]


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Running:
    """One server process on a repository, in its own session (stub processes stay in its process group)."""

    def __init__(self, launcher: Launcher, repository: pathlib.Path, models: Sequence[str], log_path: str) -> None:
        self.name = launcher.name
        self.models = list(models)
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        self._log = open(log_path, "w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            launcher.command(repository, (self.http_port, self.grpc_port, self.metrics_port)),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=launcher.env,
            cwd=REPO,
            start_new_session=True,
        )
        self.log_path = log_path

    def ready(self) -> bool:
        base = f"http://127.0.0.1:{self.http_port}/v2"
        return _ok(f"{base}/health/ready") and all(_ok(f"{base}/models/{m}/ready") for m in self.models)

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        """Seconds from process start until the server and every model are ready."""
        deadline = self.started + timeout_s
        while not self.ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout_s} s; see {self.log_path}")
            time.sleep(0.005)
        return time.perf_counter() - self.started

    def stop(self, timeout_s: float = 30.0) -> float:
        """SIGTERM by PID; seconds until every process of the tree is gone (SIGKILL to the group past timeout)."""
        pids = tree_pids(self.proc.pid) if self.proc.poll() is None else []
        started = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        try:  # our session id is our child's PID: whatever it left behind (stubs) goes with it
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait(10)
        self._log.close()
        return elapsed


def tree_cpu_s(root: int) -> float:
    ticks = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def perf_env(pa: str) -> Dict[str, str]:
    env = dict(os.environ)
    # perf_analyzer of the tritonclient 2.51.0 wheel links libcudart.so.12 even without a GPU
    venv = os.path.dirname(os.path.dirname(pa))
    found = sorted(pathlib.Path(venv).glob("lib/python3*/site-packages/nvidia/cuda_runtime/lib"))
    if found:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(found[0]), env.get("LD_LIBRARY_PATH")) if p)
    return env


def run_perf(
    server: Running, model: str, protocol: str, concurrency: int, args: argparse.Namespace, out: str
) -> Dict[str, object]:
    """One perf_analyzer measurement; {} when it did not stabilise (also after the looser retry)."""
    os.makedirs(out, exist_ok=True)
    port = server.http_port if protocol == "http" else server.grpc_port
    csv_path, log_path = os.path.join(out, "pa.csv"), os.path.join(out, "pa.log")
    extra = ["--string-data", PROMPT] if model == "text_generation" else ["--shape", "INPUT_1:16"]
    cpu0, t0 = tree_cpu_s(server.proc.pid), time.perf_counter()
    stable = ""
    with open(log_path, "w") as log:
        for stability in (25, 50):
            cmd = [args.pa, "-m", model, "-u", f"127.0.0.1:{port}", "-i", protocol]
            cmd += ["--concurrency-range", str(concurrency), "--async", "--measurement-mode", "time_windows"]
            cmd += ["--measurement-interval", str(args.window_ms), "--max-trials", str(args.max_trials)]
            cmd += ["--stability-percentage", str(stability), "-f", csv_path, *extra]
            log.write(" ".join(cmd) + "\n")
            log.flush()
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=args.pa_env
            )
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            if os.path.exists(csv_path) and os.path.getsize(csv_path):
                stable = f"{stability}%"
                break
    cpu_pct = 100 * (tree_cpu_s(server.proc.pid) - cpu0) / (time.perf_counter() - t0)
    if not stable:
        return {}
    with open(csv_path) as f:
        row = list(csv.DictReader(f))[-1]
    ips = float(row["Inferences/Second"])
    return {
        "infer_per_s": ips,
        "p50_ms": float(row["p50 latency"]) / 1000,
        "p99_ms": float(row["p99 latency"]) / 1000,
        "server_cpu_pct": cpu_pct,
        "cpu_us_per_inf": cpu_pct * 1e4 / ips if ips else None,
        "stable": stable,
    }


def measure_startup(
    launchers: Dict[str, Launcher], repository: pathlib.Path, runs: int, logs: str
) -> Dict[str, List[float]]:
    models = sorted(p.name for p in repository.iterdir() if (p / "config.pbtxt").exists())
    times: Dict[str, List[float]] = {name: [] for name in launchers}
    for run in range(runs):
        for name in launchers:
            server = Running(launchers[name], repository, models, os.path.join(logs, f"startup-{name}-{run}.log"))
            try:
                ready = server.wait_ready()
            finally:
                stop = server.stop()
            times[name].append(ready)
            print(f"start-to-ready {LABELS[name]:<14} run {run + 1}: {ready:.3f} s (stop {stop:.2f} s)", flush=True)
    return times


def fmt(value: Optional[object], digits: int) -> str:
    return "–" if not isinstance(value, (int, float)) else f"{value:,.{digits}f}"


def _ratio(a: object, b: object) -> Optional[float]:
    return a / b if isinstance(a, float) and isinstance(b, float) and b else None


def render(
    table: List[Tuple[str, Dict[str, Dict[str, object]]]], startup: Dict[str, List[float]], n_models: int
) -> str:
    lines = [
        "| case | infer/s lite / triton / ceiling | p50 ms lite / triton / ceiling | p99 ms lite / triton | "
        "server CPU µs/inf lite / triton | lite/triton | ceiling/triton | target | met? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, per in table:
        lite, triton, ceiling = per.get("lite", {}), per.get("triton", {}), per.get("ceiling", {})
        cells = [label]
        for key, digits, who in (
            ("infer_per_s", 0, (lite, triton, ceiling)),
            ("p50_ms", 2, (lite, triton, ceiling)),
            ("p99_ms", 2, (lite, triton)),
            ("cpu_us_per_inf", 0, (lite, triton)),
        ):
            cells.append(" / ".join(fmt(w.get(key), digits) for w in who))
        c1 = label.endswith("c=1")
        key = "p50_ms" if c1 else "infer_per_s"
        r, rc = _ratio(lite.get(key), triton.get(key)), _ratio(ceiling.get(key), triton.get(key))
        cells.append("–" if r is None else f"{r:.2f}× ({'p50' if c1 else 'infer/s'})")
        cells.append("–" if rc is None else f"{rc:.2f}×")
        cells.append(f"{'≤' if c1 else '≥'} {P50_TARGET if c1 else IPS_TARGET}×")
        cells.append("–" if r is None else ("yes" if (r <= P50_TARGET if c1 else r >= IPS_TARGET) else "**no**"))
        lines.append("| " + " | ".join(cells) + " |")
    runs = max((len(v) for v in startup.values()), default=0)
    if not runs:
        return "\n".join(lines)
    lines.append("")
    lines.append(
        f"| start-to-ready, {n_models} python models, {runs} runs | pytriton_lite median (min–max) | "
        "tritonserver median (min–max) | lite/triton | target | met? |"
    )
    lines.append("|---|---|---|---|---|---|")
    med = {n: statistics.median(v) for n, v in startup.items() if v}
    cells = ["process start → /v2/health/ready 200 and every model ready"]
    for n in STARTUP_SERVERS:
        v = startup.get(n) or []
        cells.append(f"{med[n]:.3f} s ({min(v):.3f}–{max(v):.3f})" if v else "–")
    lite_ready = med.get("lite")
    cells.append(f"{lite_ready / med['triton']:.3f}×" if lite_ready and med.get("triton") else "–")
    cells.append(f"≤ {READY_TARGET_S} s")
    cells.append("–" if lite_ready is None else ("yes" if lite_ready <= READY_TARGET_S else "**no**"))
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_matrix(
    servers: List[Running], cases: List[Tuple[str, str, str, int]], args: argparse.Namespace, out_dir: str
) -> List[Dict[str, object]]:
    """Every case on every server that has its model, servers taking turns (order flipped every round)."""
    rows: List[Dict[str, object]] = []
    for rnd in range(args.rounds):
        order = servers if rnd % 2 == 0 else servers[::-1]
        for label, model, protocol, concurrency in cases:
            for server in order:
                if model not in server.models:
                    continue
                raw = os.path.join(out_dir, "raw", f"round{rnd + 1}", server.name, label.replace(" ", "_"))
                row = run_perf(server, model, protocol, concurrency, args, raw)
                rows.append({"round": rnd + 1, "server": server.name, "case": label, **row})
                print(
                    f"{label:<27} {LABELS[server.name]:<14} infer/s {fmt(row.get('infer_per_s'), 0):>7}  "
                    f"p50 {fmt(row.get('p50_ms'), 2):>6} ms  p99 {fmt(row.get('p99_ms'), 2):>6} ms  "
                    f"server CPU {fmt(row.get('server_cpu_pct'), 0):>4} %  "
                    f"[{row.get('stable') or 'not stable'}]  load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    return rows


def summarise(
    rows: List[Dict[str, object]], cases: List[Tuple[str, str, str, int]]
) -> List[Tuple[str, Dict[str, Dict[str, object]]]]:
    """Median per (case, server) over rounds."""
    table = []
    for label, _, _, _ in cases:
        per: Dict[str, Dict[str, object]] = {}
        for name in SERVERS:
            mine = [r for r in rows if r["case"] == label and r["server"] == name]
            per[name] = {}
            for key in ("infer_per_s", "p50_ms", "p99_ms", "cpu_us_per_inf"):
                vals = [float(v) for v in (r.get(key) for r in mine) if isinstance(v, (int, float))]
                if vals:
                    per[name][key] = statistics.median(vals)
        table.append((label, per))
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="start-to-ready runs per server (default 5)")
    ap.add_argument("--rounds", type=int, default=1, help="perf rounds; figures are medians over rounds")
    ap.add_argument("--window-ms", type=int, default=3000)
    ap.add_argument("--max-trials", type=int, default=6)
    ap.add_argument("--quick", action="store_true", help="1 s windows, 4 trials, 3 start runs, no text_generation HTTP")
    ap.add_argument("--cases", default="", help="only cases whose label contains this text")
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false", help="leave out the no-op ceiling column")
    ap.add_argument("--pyt-venv", default="~/.venvs/pyt")
    ap.add_argument(
        "--pa", default=os.environ.get("PERF_ANALYZER", os.path.expanduser("~/.venvs/pa/bin/perf_analyzer"))
    )
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    cases = [c for c in CASES if args.cases in c[0]]
    if args.quick:
        args.window_ms, args.max_trials, args.runs = (
            min(args.window_ms, 1000),
            min(args.max_trials, 4),
            min(args.runs, 3),
        )
        cases = [c for c in cases if not c[0].startswith(QUICK_SKIP)]
    if not os.path.exists(args.pa):
        raise SystemExit(f"perf_analyzer not found at {args.pa} (see ../shared/bench/README.md)")
    args.pa_env = perf_env(args.pa)
    out_dir = os.path.join(args.out, time.strftime("%Y%m%d-%H%M%S") + "-repo-vs-triton")
    os.makedirs(out_dir, exist_ok=True)
    started_at, mach, t_start = time.strftime("%Y-%m-%d %H:%M:%S"), machine(), time.monotonic()
    print(f"# {mach}\n# {len(cases)} cases, window {args.window_ms} ms, out {out_dir}", flush=True)

    rows: List[Dict[str, object]] = []
    startup: Dict[str, List[float]] = {n: [] for n in STARTUP_SERVERS}
    if args.ceiling and not os.path.isdir(os.path.join(CEILING_DEPS, "starlette")):
        print(f"# ceiling skipped: no starlette in {CEILING_DEPS} (pip install --target it --no-deps starlette)")
        args.ceiling = False
    names = [n for n in SERVERS if n != "ceiling" or args.ceiling]
    with tempfile.TemporaryDirectory(prefix="repo-vs-triton-") as tmp:
        work = pathlib.Path(tmp)
        launchers = {name: Launcher(name, work, args.pyt_venv) for name in names}
        if not args.skip_startup:
            pair = {n: launchers[n] for n in STARTUP_SERVERS}
            startup = measure_startup(pair, build_startup_repository(work, STARTUP_MODELS), args.runs, out_dir)
        repository = build_bench_repository(work)
        servers: List[Running] = []
        try:
            for name in names:
                models = ("identity_fp32",) if name == "ceiling" else BENCH_MODELS
                server = Running(launchers[name], repository, models, os.path.join(out_dir, f"server-{name}.log"))
                servers.append(server)
                ready = server.wait_ready()
                idle = tree_memory_mib(server.proc.pid)
                print(f"# {LABELS[name]} ready in {ready:.2f} s on the bench repository, idle {idle}", flush=True)
            rows = run_matrix(servers, cases, args, out_dir)
        finally:
            for server in servers:
                server.stop()

    table = summarise(rows, cases)
    md = render(table, startup, STARTUP_MODELS)
    cmdline = "python bench/repository_vs_tritonserver.py " + " ".join(sys.argv[1:])
    header = (
        f"Run {started_at}, `{cmdline}`, {len(cases)} cases, {args.rounds} round(s), window {args.window_ms} ms, "
        f"{(time.monotonic() - t_start) / 60:.1f} min.\nMachine: {mach}; load average at end "
        f"{os.getloadavg()[0]:.2f}.\n"
    )
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write(header + "\n" + md + "\n")
    keys = ["round", "server", "case", "infer_per_s", "p50_ms", "p99_ms", "server_cpu_pct", "cpu_us_per_inf", "stable"]
    with open(os.path.join(out_dir, "rows.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        for name, values in startup.items():
            for run, value in enumerate(values):
                writer.writerow(
                    {
                        "round": run + 1,
                        "server": name,
                        "case": f"start-to-ready {STARTUP_MODELS} models",
                        "p50_ms": value * 1000,
                    }
                )
    print("\n" + header + "\n" + md + f"\n\n# wrote {out_dir}/table.md, rows.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
