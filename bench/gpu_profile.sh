#!/usr/bin/env bash
# Where the time goes with front-end workers on the 16-core GPU machine (the `run` tool; never CI): serve
# bench/gpu_workers_server.py with WORKERS (default 8) front-end workers, load identity 16xFP32 over gRPC at c=256
# with perf_analyzer, and sample the serving process and one worker with py-spy (carried in .gpu/bin).
# Env: WORKERS (8), PROTO (grpc|http), MODEL (identity_fp32|mlp) and DIM (16; 1024 for the mlp).
#   bash bench/gpu_profile.sh        # carry: .whl .gpu ; $OUT gets perf.log, serving.txt, worker.txt
set -u -o pipefail
OUT=${OUT:-/tmp/gpu_profile_out}; mkdir -p "$OUT"
cd "$(dirname "$0")/.." || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  > /tmp/pip.txt 2>&1 || { cat /tmp/pip.txt; exit 1; }
export PYTHONPATH=/tmp/site:$PWD:$PWD/bench PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=$PWD/.gpu/lib
PA=$PWD/.gpu/bin/perf_analyzer; SPY=$PWD/.gpu/bin/py-spy; chmod +x "$PA" "$SPY"
PROTO=${PROTO:-grpc}; PORT=$([ "$PROTO" = grpc ] && echo 18001 || echo 18000)
PYTRITON_TRITON_CONFIG_FRONTEND_WORKERS=${WORKERS:-8} python3 bench/gpu_workers_server.py --http-port 18000 \
  --grpc-port 18001 --metrics-port 18002 --max-seconds 200 > "$OUT/server.log" 2>&1 &
SPID=$!
for i in $(seq 1 200); do grep -q STARTUP_S "$OUT/server.log" && break; sleep 0.2; done
ZPID=$(pgrep -f 'workers[.]zygote' | head -1); WPID=$(pgrep -P "$ZPID" | head -1)
echo "serving $SPID zygote $ZPID worker $WPID" > "$OUT/pids.txt"
timeout 60 "$PA" -m "${MODEL:-identity_fp32}" -u 127.0.0.1:$PORT -i $PROTO --shape "INPUT_1:${DIM:-16}" \
  --concurrency-range 256 --async \
  --measurement-mode time_windows --measurement-interval 12000 --max-trials 3 --stability-percentage 900 \
  > "$OUT/perf.log" 2>&1 &
PAPID=$!
sleep 4
top -b -n 2 -d 3 -w 200 | awk '/^top -/{n++} n==2' | head -32 > "$OUT/top.txt" &
"$SPY" record -p $SPID -d 6 -r 200 -f raw -o /tmp/serving.raw --nonblocking --threads > /dev/null 2>&1 &
"$SPY" record -p "$WPID" -d 6 -r 200 -f raw -o /tmp/worker.raw --nonblocking > /dev/null 2>&1
sleep 1
wait $PAPID
for k in serving worker; do
  python3 - "$k" <<'PY' > "$OUT/$k.txt"
import collections, sys
# py-spy raw: "frame;frame;... count"; own = leaf frame, total = any frame on the stack
own, total, n = collections.Counter(), collections.Counter(), 0
for line in open(f"/tmp/{sys.argv[1]}.raw"):
    stack, _, c = line.rstrip().rpartition(" "); c = int(c); n += c
    frames = stack.split(";"); own[frames[-1]] += c
    for f in set(frames): total[f] += c
print(f"samples {n}")
print("== own (leaf) top 30"); [print(f"{v/n*100:5.1f}% {k}") for k, v in own.most_common(30)]
print("== total top 40"); [print(f"{v/n*100:5.1f}% {k}") for k, v in total.most_common(40)]
PY
done
grep -E "Throughput|p50|Avg" "$OUT/perf.log" | head -6
kill -TERM $SPID; wait $SPID
