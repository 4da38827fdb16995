#!/usr/bin/env bash
# GPU sanity run (on the device machine, via the `device` tool; never in CI): serve bench/gpu_server.py on CUDA and
# drive it with perf_analyzer over gRPC and HTTP. Expects .gpu/ (wheels, perf_analyzer, libb64, libcudart 12).
set -u
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD LD_LIBRARY_PATH=$PWD/.gpu/lib:${LD_LIBRARY_PATH:-}
PA=$PWD/.gpu/bin/perf_analyzer; chmod +x "$PA"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 - <<'PY' | tee "$OUT/cuda_tensor_check.txt"
# torch CUDA tensors through the server: the callable moves inputs to CUDA and back; a tritonclient call checks values
import numpy as np, torch, tritonclient.grpc as g
from pytriton_lite.decorators import batch
from pytriton_lite.model_config import ModelConfig, Tensor
from pytriton_lite.testing import running_triton
@batch
def f(x):
    t = torch.from_numpy(x).cuda()
    return {"y": (t * 2).cpu().numpy()}
with running_triton() as tr:
    tr.bind("cuda_double", f, [Tensor(name="x", shape=(-1,), dtype=np.float32)], [Tensor(name="y", shape=(-1,), dtype=np.float32)], config=ModelConfig(max_batch_size=8))
    c = g.InferenceServerClient(tr.grpc_url[7:]); a = np.arange(6, dtype=np.float32).reshape(2, 3)
    i = g.InferInput("x", a.shape, "FP32"); i.set_data_from_numpy(a)
    r = c.infer("cuda_double", [i]).as_numpy("y"); assert np.array_equal(r, a * 2); print("cuda tensor round trip OK", torch.cuda.get_device_name(0))
PY
PYTHONUNBUFFERED=1 python3 bench/gpu_server.py --http-port 18000 --grpc-port 18001 --metrics-port 18002 --max-seconds 400 > "$OUT/server.log" 2>&1 &
SPID=$!
for i in $(seq 1 120); do grep -q READY "$OUT/server.log" && break; sleep 0.5; done
cat "$OUT/server.log"
for C in 1 16 64 256; do
  timeout 120 "$PA" -m mlp -u 127.0.0.1:18001 -i grpc --shape INPUT_1:1024 --concurrency-range $C --async \
    --measurement-mode time_windows --measurement-interval 4000 --max-trials 6 -f "$OUT/grpc_c$C.csv" > "$OUT/grpc_c$C.log" 2>&1
  echo "== grpc c=$C"; grep -E "Throughput|p50|p99|Inference count|Execution count|Avg gRPC" "$OUT/grpc_c$C.log" | head -8
done
timeout 120 "$PA" -m mlp -u 127.0.0.1:18000 -i http --shape INPUT_1:1024 --concurrency-range 64 --async \
  --measurement-mode time_windows --measurement-interval 4000 --max-trials 6 -f "$OUT/http_c64.csv" > "$OUT/http_c64.log" 2>&1
echo "== http c=64"; grep -E "Throughput|p50|p99|Inference count|Execution count" "$OUT/http_c64.log" | head -6
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv | tee -a "$OUT/gpu.txt"
kill -TERM $SPID; wait $SPID; tail -4 "$OUT/server.log"
