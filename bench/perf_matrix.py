"""perf_analyzer matrix: pytriton_lite vs the framework ceiling vs PyTriton 0.7, in one invocation.

    python bench/perf_matrix.py [--servers lite,ceiling,pytriton] [--cases REGEX] [--window-ms 3000]
                                [--rounds 1] [--quick] [--all] [--pyt-venv ~/.venvs/pyt] [--pa PERF_ANALYZER]

Starts each server as a subprocess on free 127.0.0.1 ports (lite: bench/lite_server.py, ceiling:
../shared/bench/ceiling_server.py, pytriton: ../shared/bench/pytriton_peer_server.py in its own venv), then
runs the 15 cases of ../shared/bench/run_perf.sh case by case, alternating servers within each case
(lite, ceiling, pytriton), so machine noise hits all of them alike. Each perf_analyzer run goes through
run_perf.sh -c '^case$' (bounded by `timeout` and --max-trials, one looser retry). The ceiling serves only
identity_fp32, so it takes the identity cases only. Servers are stopped by PID at the end and on errors.

Prints one table (per case: figures per server, ratios lite/PyTriton and lite/ceiling) and writes
bench/results/<stamp>/{matrix.csv, matrix.md, servers.md, raw/...}; matrix.md is what goes into
docs/performance.md. With --rounds N every figure is the median over N rounds (the CSV keeps every row).
--all also runs bench/startup.py and bench/core_bench.py and appends their output.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED_BENCH = os.path.abspath(os.path.join(REPO, "..", "shared", "bench"))
RUN_PERF = os.path.join(SHARED_BENCH, "run_perf.sh")

# name, model, bytes per request one way (the case names of run_perf.sh, which owns shapes/protocol/concurrency)
CASES = [
    ("a_id16_http_c1", "identity_fp32", 64),
    ("a_id16_http_c8", "identity_fp32", 64),
    ("a_id16_http_c32", "identity_fp32", 64),
    ("a_id16_grpc_c1", "identity_fp32", 64),
    ("a_id16_grpc_c8", "identity_fp32", 64),
    ("a_id16_grpc_c32", "identity_fp32", 64),
    ("b_id1MiB_http_c1", "identity_fp32", 1048576),
    ("b_id1MiB_http_c8", "identity_fp32", 1048576),
    ("b_id1MiB_grpc_c1", "identity_fp32", 1048576),
    ("b_id1MiB_grpc_c8", "identity_fp32", 1048576),
    ("c_addsub_grpc_c1", "add_sub", 128),
    ("c_addsub_grpc_c16", "add_sub", 128),
    ("d_sleep1ms_grpc_c1", "sleep_1ms", 64),
    ("d_sleep1ms_grpc_c16", "sleep_1ms", 64),
    ("d_sleep1ms_grpc_c64", "sleep_1ms", 64),
]
# --quick: one case per target row of issue 5, short windows
QUICK_CASES = r"^(a_id16_http_c1|a_id16_grpc_c32|b_id1MiB_grpc_c8|d_sleep1ms_grpc_c64)$"
# ceiling_server.py (read-only, shared) fails perf_analyzer's HTTP mode twice: it lacks GET /v2 (server metadata,
# asked once at start) and its infer handler drops the request "id", which perf_analyzer --async requires back
# ("model id was not returned in the response"). The launcher adds the route and an infer handler that is the
# ceiling's own plus the id echo (one dict lookup); gRPC is served unchanged.
CEILING_LAUNCHER = """
import json
import sys
sys.path.insert(0, sys.argv.pop(1))
import ceiling_server as c
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

async def server_metadata(request):
    return JSONResponse({"name": "ceiling", "version": "0", "extensions": []})

async def infer(request):
    body = await request.body()
    hlen = request.headers.get("inference-header-content-length")
    if hlen is None:
        req = json.loads(body)
        inp = req["inputs"][0]
        out = {"name": "OUTPUT_1", "datatype": "FP32", "shape": inp["shape"], "data": inp["data"]}
        resp = {"model_name": c.MODEL, "model_version": "1", "outputs": [out]}
        if "id" in req:
            resp["id"] = req["id"]
        return JSONResponse(resp)
    hlen = int(hlen)
    req = json.loads(body[:hlen])
    inp = req["inputs"][0]
    raw = body[hlen:]
    resp = {"model_name": c.MODEL, "model_version": "1",
            "outputs": [{"name": "OUTPUT_1", "datatype": "FP32", "shape": inp["shape"],
                         "parameters": {"binary_data_size": len(raw)}}]}
    if "id" in req:
        resp["id"] = req["id"]
    header = json.dumps(resp).encode()
    return Response(header + raw, 200, headers={
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream"})

routes = c.app.router.routes
for i, r in enumerate(routes):
    if r.path.endswith("/infer"):
        routes[i] = Route(r.path, infer, methods=["POST"])
routes.append(Route("/v2", server_metadata))
c.main()
"""
SERVER_ORDER = ("lite", "ceiling", "pytriton")
LABELS = {"lite": "lite", "ceiling": "ceiling", "pytriton": "PyTriton"}
FIELDS = (
    "infer_per_s",
    "p50_ms",
    "p99_ms",
    "MiB_per_s_each_way",
    "avg_server_batch",
    "server_cpu_pct",
    "loadgen_cpu_pct",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_pids(root: int) -> List[int]:
    """root and all its descendants, from /proc."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def tree_memory_mib(root: int) -> Dict[str, float]:
    """Sum of RSS and PSS over the process tree (PSS counts shared pages once)."""
    rss = pss = 0
    pids = tree_pids(root)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return {"rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1), "processes": len(pids)}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False


@dataclass
class Server:
    name: str
    cmd: List[str]
    env: Dict[str, str]
    log_path: str
    models: tuple
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    proc: Optional[subprocess.Popen] = None
    facts: Dict[str, object] = field(default_factory=dict)

    def argv(self) -> List[str]:
        ports = ["--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port)]
        if self.name != "ceiling":  # the ceiling has no metrics port / ready file / time limit flags
            ports += ["--metrics-port", str(self.metrics_port), "--max-seconds", "3600"]
        return self.cmd + ports

    def start(self, timeout_s: float = 180.0) -> None:
        self._log = open(self.log_path, "w")
        t0 = time.perf_counter()
        # own session: a leftover grandchild (tritonserver, stub processes) can still be found by our PID
        self.proc = subprocess.Popen(
            self.argv(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=REPO,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout_s} s; see {self.log_path}")
            time.sleep(0.05)
        self.facts["spawn_to_ready_s"] = round(time.perf_counter() - t0, 3)
        m = None
        while self.name != "ceiling" and time.monotonic() < deadline:  # the script prints after its own poll
            with open(self.log_path) as f:
                m = re.search(r"STARTUP_S ([\d.]+)", f.read())
            if m:
                break
            time.sleep(0.05)
        self.facts["startup_s_self_reported"] = float(m.group(1)) if m else None
        time.sleep(1.0)  # settle before the idle memory sample
        self.facts["idle"] = tree_memory_mib(self.proc.pid)

    def _ready(self) -> bool:
        for model in self.models:
            try:
                url = f"http://127.0.0.1:{self.http_port}/v2/models/{model}/ready"
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status != 200:
                        return False
            except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
                return False
        try:
            socket.create_connection(("127.0.0.1", self.grpc_port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self, timeout_s: float = 60.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is not None:  # died early: take down what it left in its session (tritonserver, stubs)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self._log.close()
            return
        self.facts["after_load"] = tree_memory_mib(self.proc.pid)
        pids = tree_pids(self.proc.pid)
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own session id == our child's PID
            self.proc.wait(10)
            self.facts["stop_forced"] = True
        # the stop time counts until every process of the tree is gone
        deadline = time.monotonic() + 20
        while any(alive(p) for p in pids[1:]) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.facts["stop_s"] = round(time.perf_counter() - t0, 3)
        for pid in pids[1:]:
            if alive(pid):
                self.facts["stop_leftovers"] = self.facts.get("stop_leftovers", 0) + 1
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self._log.close()


def make_servers(names: List[str], args: argparse.Namespace, out_dir: str) -> List[Server]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    all_models = ("identity_fp32", "add_sub", "sleep_1ms")
    servers = []
    for name in names:
        log = os.path.join(out_dir, f"server-{name}.log")
        if name == "lite":
            servers.append(Server(name, [sys.executable, os.path.join(HERE, "lite_server.py")], env, log, all_models))
        elif name == "ceiling":
            servers.append(
                Server(name, [sys.executable, "-c", CEILING_LAUNCHER, SHARED_BENCH], env, log, ("identity_fp32",))
            )
        elif name == "pytriton":
            py = os.path.join(os.path.expanduser(args.pyt_venv), "bin", "python")
            if not os.path.exists(py):
                print(f"# pytriton skipped: no {py} (see ../shared/bench/README.md to install it)")
                continue
            libdir = subprocess.run(
                [py, "-c", "import sysconfig;print(sysconfig.get_config_var('LIBDIR'))"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout.strip()
            penv = dict(os.environ)  # its own venv: our PYTHONPATH must not leak into it
            penv.pop("PYTHONPATH", None)
            # the python-backend stub must load this interpreter's libpython first (README of ../shared/bench)
            penv["LD_LIBRARY_PATH"] = libdir + (
                os.pathsep + penv["LD_LIBRARY_PATH"] if penv.get("LD_LIBRARY_PATH") else ""
            )
            servers.append(
                Server(name, [py, os.path.join(SHARED_BENCH, "pytriton_peer_server.py")], penv, log, all_models)
            )
        else:
            raise SystemExit(f"unknown server {name!r} (choose from {', '.join(SERVER_ORDER)})")
    return servers


def run_case(server: Server, case: str, args: argparse.Namespace, raw_dir: str) -> Dict[str, str]:
    out = os.path.join(raw_dir, server.name, case)
    cmd = [
        "bash",
        RUN_PERF,
        "-H",
        str(server.http_port),
        "-G",
        str(server.grpc_port),
        "-o",
        out,
        "-l",
        server.name,
        "-c",
        f"^{case}$",
        "-s",
        str(server.proc.pid),
        "-p",
        args.pa,
        "-w",
        str(args.window_ms),
        "-t",
        str(args.max_trials),
    ]
    # run_perf.sh bounds each perf_analyzer attempt with `timeout 120`, two attempts at most
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(300)
    except BaseException:  # timeout or Ctrl-C: take perf_analyzer down with the script (its own session)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        raise
    try:
        with open(os.path.join(out, "summary.csv")) as f:
            rows = list(csv.DictReader(f))
    except OSError:
        rows = []
    return rows[-1] if rows else {"stable": "no"}


def num(v: object) -> Optional[float]:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def fmt(v: Optional[float], nd: int = 0) -> str:
    if v is None:
        return "–"
    return f"{v:,.{nd}f}"


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


def summarise(rows: List[Dict[str, str]], servers: List[str], cases: List[str]) -> List[Dict[str, object]]:
    """Median per (case, server) over rounds."""
    table = []
    for case in cases:
        entry: Dict[str, object] = {"case": case}
        for s in servers:
            mine = [r for r in rows if r["case"] == case and r["server"] == s]
            for r in mine:  # CPU time per inference: less sensitive than infer/s to the load generator's share
                cpu, ips = num(r.get("server_cpu_pct")), num(r.get("infer_per_s"))
                r["cpu_us_per_inf"] = str(cpu * 1e4 / ips) if cpu is not None and ips else ""
            for k in FIELDS + ("cpu_us_per_inf",):
                vals = [num(r.get(k)) for r in mine]
                vals = [v for v in vals if v is not None]
                entry[f"{s}.{k}"] = statistics.median(vals) if vals else None
        table.append(entry)
    return table


def render_markdown(table: List[Dict[str, object]], servers: List[str]) -> str:
    short = {"lite": "L", "ceiling": "C", "pytriton": "P"}
    tag = "/".join(short[s] for s in servers)
    head = [
        "case",
        f"infer/s {tag}",
        f"p50 ms {tag}",
        f"p99 ms {tag}",
        f"MiB/s {tag}",
        f"batch {tag}",
        f"server CPU % {tag}",
        f"CPU µs/inf {tag}",
    ]
    has_p, has_c = "pytriton" in servers, "ceiling" in servers
    if "lite" in servers and has_p:
        head += ["L/P infer/s", "L/P p50"]
    if "lite" in servers and has_c:
        head += ["L/C infer/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    specs = [
        ("infer_per_s", 0),
        ("p50_ms", 2),
        ("p99_ms", 2),
        ("MiB_per_s_each_way", 1),
        ("avg_server_batch", 2),
        ("server_cpu_pct", 0),
        ("cpu_us_per_inf", 0),
    ]
    for e in table:
        cells = [str(e["case"])]
        for k, nd in specs:
            cells.append(" / ".join(fmt(e.get(f"{s}.{k}"), nd) for s in servers))  # type: ignore[arg-type]
        lite_ips, lite_p50 = e.get("lite.infer_per_s"), e.get("lite.p50_ms")
        if "lite" in servers and has_p:
            cells += [
                ratio(lite_ips, e.get("pytriton.infer_per_s")),  # type: ignore[arg-type]
                ratio(lite_p50, e.get("pytriton.p50_ms")),
            ]  # type: ignore[arg-type]
        if "lite" in servers and has_c:
            cells.append(ratio(lite_ips, e.get("ceiling.infer_per_s")))  # type: ignore[arg-type]
        lines.append("| " + " | ".join(cells) + " |")
    names = {"L": "pytriton_lite", "C": "framework ceiling", "P": "PyTriton 0.7.0"}
    legend = ", ".join(f"{short[s]} = {names[short[s]]}" for s in servers)
    lines.append("")
    lines.append(
        f"{legend}; – = not served (ceiling: identity only) or not stable. MiB/s is each way. "
        "batch = server Inference count / Execution count. server CPU % = the server's process tree, "
        "100 = one core; CPU µs/inf = server CPU time per inference."
    )
    return "\n".join(lines)


def render_servers(servers: List[Server]) -> str:
    lines = [
        "| server | spawn→ready s | STARTUP_S (self) | stop s | idle RSS MiB (PSS) / processes | "
        "RSS after load MiB (PSS) |",
        "|---|---|---|---|---|---|",
    ]
    for s in servers:
        f = s.facts
        idle, load = f.get("idle") or {}, f.get("after_load") or {}
        stop = f.get("stop_s", "–")
        if f.get("stop_forced"):
            stop = f"{stop} (SIGKILL)"
        lines.append(
            f"| {LABELS[s.name]} | {f.get('spawn_to_ready_s', '–')} | "
            f"{f.get('startup_s_self_reported') or '–'} | {stop} | "
            f"{idle.get('rss_mib', '–')} ({idle.get('pss_mib', '–')}) / {idle.get('processes', '–')} | "
            f"{load.get('rss_mib', '–')} ({load.get('pss_mib', '–')}) |"
        )
    lines.append("")
    lines.append(
        "spawn→ready: from Popen of the script (interpreter start, imports, bind, run) to every model "
        "answering ready over HTTP and the gRPC port accepting; STARTUP_S: the script's own figure from "
        "the run() call; stop: SIGTERM to the last process of the tree gone; RSS summed over the tree."
    )
    return "\n".join(lines)


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem} MiB RAM, Python {sys.version.split()[0]}, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )


def run_side_bench(script: str, extra: List[str], out_dir: str) -> str:
    cmd = [sys.executable, os.path.join(HERE, script)] + extra
    print(f"# {' '.join(cmd)}", flush=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=env, check=False)
    text = res.stdout + (f"\n(stderr)\n{res.stderr[-2000:]}" if res.returncode else "")
    print(text, flush=True)
    with open(os.path.join(out_dir, script.replace(".py", ".txt")), "w") as f:
        f.write(text)
    return f"`python bench/{script} {' '.join(extra)}`\n\n```\n{text.strip()}\n```\n"


def render_only(out_dir: str) -> int:
    """Rebuild matrix.md from a finished run's matrix.csv (keeps its header lines)."""
    with open(os.path.join(out_dir, "matrix.csv")) as f:
        rows = list(csv.DictReader(f))
    names = [s for s in SERVER_ORDER if any(r["server"] == s for r in rows)]
    cases = [c for c, _, _ in CASES if any(r["case"] == c for r in rows)]
    md_path = os.path.join(out_dir, "matrix.md")
    header = ""
    if os.path.exists(md_path):
        with open(md_path) as f:
            header = "".join(line for line in f if line.startswith(("Run ", "Machine: ")))
    md = render_markdown(summarise(rows, names, cases), names)
    with open(md_path, "w") as f:
        f.write(header + "\n" + md + "\n")
    print(header + "\n" + md)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="lite,ceiling,pytriton")
    ap.add_argument("--cases", default=".", help="regex on case names (see CASES)")
    ap.add_argument("--window-ms", type=int, default=3000)
    ap.add_argument("--max-trials", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=1, help="repeat the matrix; figures are medians over rounds")
    ap.add_argument("--quick", action="store_true", help=f"cases {QUICK_CASES}, 1 s windows, 4 trials")
    ap.add_argument("--all", action="store_true", help="also run bench/startup.py and bench/core_bench.py")
    ap.add_argument("--pyt-venv", default="~/.venvs/pyt")
    default_pa = os.environ.get("PERF_ANALYZER", os.path.expanduser("~/.venvs/pa/bin/perf_analyzer"))
    ap.add_argument("--pa", default=default_pa)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--render", metavar="DIR", help="only rewrite DIR/matrix.md from DIR/matrix.csv (no run)")
    args = ap.parse_args()
    if args.render:
        return render_only(args.render)
    if args.quick:
        args.cases = QUICK_CASES if args.cases == "." else args.cases
        args.window_ms, args.max_trials = min(args.window_ms, 1000), min(args.max_trials, 4)
    if not os.path.exists(args.pa):
        raise SystemExit(f"perf_analyzer not found at {args.pa} (see ../shared/bench/README.md)")
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    cases = [c for c, _, _ in CASES if re.search(args.cases, c)]
    out_dir = os.path.join(args.out, time.strftime("%Y%m%d-%H%M%S"))
    raw_dir = os.path.join(out_dir, "raw")
    os.makedirs(raw_dir, exist_ok=True)
    started_at = time.strftime("%Y-%m-%d %H:%M:%S")
    mach = machine()
    print(
        f"# {mach}\n# cases: {len(cases)}  window {args.window_ms} ms  trials {args.max_trials}  "
        f"rounds {args.rounds}  out {out_dir}",
        flush=True,
    )

    servers = make_servers([s for s in SERVER_ORDER if s in wanted], args, out_dir)
    rows: List[Dict[str, str]] = []
    t_start = time.monotonic()
    try:
        for s in list(servers):
            print(f"# starting {s.name} (http {s.http_port} grpc {s.grpc_port})", flush=True)
            try:
                s.start()
            except RuntimeError as exc:
                if s.name != "pytriton":
                    raise
                # the optional peer: measure the others rather than nothing
                print(f"# pytriton skipped: {exc}", flush=True)
                s.stop()
                servers.remove(s)
                continue
            print(f"#   ready in {s.facts['spawn_to_ready_s']} s, idle {s.facts['idle']}", flush=True)
        model_of = {c: m for c, m, _ in CASES}
        for rnd in range(1, args.rounds + 1):
            for case in cases:
                for s in servers:
                    if model_of[case] not in s.models:
                        continue
                    row = run_case(s, case, args, os.path.join(raw_dir, f"round{rnd}"))
                    row.update(
                        {"server": s.name, "case": case, "round": str(rnd), "load1": f"{os.getloadavg()[0]:.2f}"}
                    )  # other jobs on the machine = noise
                    rows.append(row)
                    print(
                        f"{case:<22} {s.name:<9} infer/s {row.get('infer_per_s') or '-':>9}  "
                        f"p50 {row.get('p50_ms') or '-':>7} ms  p99 {row.get('p99_ms') or '-':>7} ms  "
                        f"batch {row.get('avg_server_batch') or '-':>5}  "
                        f"srv cpu {row.get('server_cpu_pct') or '-':>5}%"
                        f"  [{row.get('stable')}]  load {row['load1']}",
                        flush=True,
                    )
    finally:
        for s in servers:
            s.stop()
    elapsed = time.monotonic() - t_start

    names = [s.name for s in servers]
    table = summarise(rows, names, cases)
    md = render_markdown(table, names)
    srv_md = render_servers(servers)
    first = ["round", "server", "case", "load1"]
    cols = first + [k for k in (rows[0].keys() if rows else []) if k not in first]
    with open(os.path.join(out_dir, "matrix.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    cmdline = "python bench/perf_matrix.py " + " ".join(sys.argv[1:])
    header = (
        f"Run {started_at}, `{cmdline}`, {len(cases)} cases × {len(names)} servers, "
        f"{args.rounds} round(s), window {args.window_ms} ms, {elapsed / 60:.1f} min.\n"
        f"Machine: {mach}; load average at end {os.getloadavg()[0]:.2f}.\n"
    )
    with open(os.path.join(out_dir, "matrix.md"), "w") as f:
        f.write(header + "\n" + md + "\n")
    with open(os.path.join(out_dir, "servers.md"), "w") as f:
        f.write(srv_md + "\n")
    with open(os.path.join(out_dir, "servers.json"), "w") as f:
        json.dump({s.name: s.facts for s in servers}, f, indent=1)
    print()
    print(header)
    print(md)
    print()
    print(srv_md)
    if args.all:
        side = run_side_bench("startup.py", ["--runs", "5"], out_dir)
        side += "\n" + run_side_bench("core_bench.py", [], out_dir)
        with open(os.path.join(out_dir, "side.md"), "w") as f:
            f.write(side)
    print(f"\n# wrote {out_dir}/matrix.md, matrix.csv, servers.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
