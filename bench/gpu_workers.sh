#!/usr/bin/env bash
# Front-end workers on the 16-core GPU machine (the `run` tool's nvidia-h200; never CI), issue 12 §3:
#   bash bench/gpu_workers.sh [--check]        # carry: .whl .gpu ; results in $OUT (default /tmp/gpu_workers_out)
# Installs the carried wheels (.whl/*.whl, Python 3.12) into /tmp/site, uses perf_analyzer 2.51 from .gpu/bin with
# .gpu/lib (libb64, libcudart 12), prints the MLP's direct-call limit (bench/gpu_workers_server.py --direct), then
# runs bench/workers_matrix.py --suite gpu: identity 16xFP32 HTTP/gRPC c=1 and c=256, the torch MLP HTTP/gRPC c=256,
# for frontend_workers 0,2,4,8 (12 too if 8 paid and time is left). $OUT gets run.log, table.md, rows.csv,
# servers.json, server-logs.txt (at most 8 files come back). --check: install, versions, a 2-worker server, one
# short perf_analyzer call and a 1 s direct-call figure (~1 min).
# With .pyt/pyt312.tar.xz carried too (bash bench/pack_pytriton.sh makes it), PyTriton 0.7 serves the same script first
# in every round (rows "PyTriton"): unpacked into /tmp/pyt, with a venv /tmp/pytv whose .pth files add it, /tmp/site
# and this python3's packages (torch): PyTriton's python-backend stub embeds its interpreter's environment.
# Env: BUDGET_S (default 400, the matrix's own bound), WORKERS (default 0,2,4,8), WINDOW_MS (default 1500).
set -u -o pipefail
OUT=${OUT:-/tmp/gpu_workers_out}; mkdir -p "$OUT"
cd "$(dirname "$0")/.." || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  > /tmp/pip.txt 2>&1 || { cat /tmp/pip.txt; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH=$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
PA=$PWD/.gpu/bin/perf_analyzer; chmod +x "$PA"
PYT_ARGS=()
if [ -f .pyt/pyt312.tar.xz ]; then
  mkdir -p /tmp/pyt && tar -xJf .pyt/pyt312.tar.xz -C /tmp/pyt && python3 -m venv --without-pip /tmp/pytv || exit 1
  PURE='import sysconfig; print(sysconfig.get_paths()["purelib"])'
  printf '%s\n' /tmp/pyt /tmp/site "$(python3 -c "$PURE")" > "$(/tmp/pytv/bin/python -c "$PURE")/bench.pth"
  /tmp/pytv/bin/python -c 'import pytriton, zmq, torch; print("PyTriton side by side:", pytriton.__file__)' \
    2>&1 | tee -a "$OUT/run.log" && PYT_ARGS=(--pytriton-python /tmp/pytv/bin/python)
fi
{
  date -u; nproc; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PA" --version 2>&1 | head -1
  python3 -c 'import sys,torch,grpc,google.protobuf as pb,numpy,uvicorn,tritonclient,pytriton_lite as p
print(sys.version.split()[0],"torch",torch.__version__,torch.cuda.is_available(),"grpcio",grpc.__version__,"protobuf",pb.__version__,"numpy",numpy.__version__,"uvicorn",uvicorn.__version__,"pytriton_lite",getattr(p,"__version__","?"))'
} 2>&1 | tee "$OUT/run.log"
if [ "${1:-}" = "--check" ]; then
  timeout 60 python3 bench/gpu_workers_server.py --direct --seconds 1 2>&1 | tee -a "$OUT/run.log"
  timeout 150 python3 bench/workers_matrix.py --suite gpu --workers 2 --cases 'id16_grpc_c1|mlp_http_c256' \
    --window-ms 1000 --max-trials 3 --pa "$PA" --pa-lib "$PWD/.gpu/lib" --pa-timeout-s 30 --out /tmp/gw "${PYT_ARGS[@]}" 2>&1 \
    | tee -a "$OUT/run.log"
  tail -n 15 /tmp/gw/server-w*.log > "$OUT/server-logs.txt" 2>&1
  exit 0
fi
timeout 60 python3 bench/gpu_workers_server.py --direct --seconds 2 2>&1 | tee -a "$OUT/run.log"
timeout $((${BUDGET_S:-400} + 120)) python3 bench/workers_matrix.py --suite gpu --workers "${WORKERS:-0,2,4,8}" \
  --extra-workers 12 --window-ms "${WINDOW_MS:-1500}" --max-trials 4 --pa "$PA" --pa-lib "$PWD/.gpu/lib" \
  --pa-timeout-s 40 --budget-s "${BUDGET_S:-400}" --out "$OUT" --log-dir /tmp/gw "${PYT_ARGS[@]}" 2>&1 \
  | tee -a "$OUT/run.log"
for f in /tmp/gw/server-w*.log; do echo "== $f"; tail -n 20 "$f"; done > "$OUT/server-logs.txt" 2>&1
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv >> "$OUT/run.log" 2>&1
