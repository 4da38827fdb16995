#!/usr/bin/env bash
# Calls AddSub with curl and JSON tensors (no client library): prints the JSON response.
# Usage: ./client_curl.sh [http://localhost:8000]
set -euo pipefail
URL="${1:-http://localhost:8000}"

curl -sS --fail-with-body --max-time 30 \
  -H "Content-Type: application/json" \
  -X POST "${URL}/v2/models/AddSub/infer" \
  -d '{
    "id": "curl-1",
    "inputs": [
      {"name": "INPUT_1", "datatype": "FP32", "shape": [2, 1], "data": [[1.0], [2.0]]},
      {"name": "INPUT_2", "datatype": "FP32", "shape": [2, 1], "data": [[3.0], [5.0]]}
    ]
  }'
echo
