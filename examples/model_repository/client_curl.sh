#!/usr/bin/env bash
# The README's curl commands (JSON bodies, no client library), against a running server; prints each answer.
# Run it from this folder after build_models.py (the image bodies are in requests/).
# Usage: ./client_curl.sh [http://localhost:8000]
set -euo pipefail
URL="${1:-http://localhost:8000}"
CURL=(curl -sS --fail-with-body --max-time 30)

"${CURL[@]}" "${URL}/v2/health/ready" -o /dev/null -w '%{http_code}\n'
"${CURL[@]}" -X POST "${URL}/v2/repository/index"
echo
"${CURL[@]}" -X POST "${URL}/v2/models/text_generation/infer" \
  -d '{"inputs": [{"name": "prompt", "datatype": "BYTES", "shape": [1, 1], "data": ["once upon"]}]}'
echo
"${CURL[@]}" -X POST "${URL}/v2/models/mnist_mlp/infer" -d @requests/mnist_mlp.json
echo
"${CURL[@]}" -X POST "${URL}/v2/models/mnist_cnn/infer" -d @requests/mnist_cnn.json
echo
"${CURL[@]}" -X POST "${URL}/v2/models/mnist_ensemble/infer" -d @requests/mnist_ensemble.json
echo
