#!/usr/bin/env bash
# Calls the vLLM-style model over HTTP with curl, the way PyTriton's vLLM example does:
#   POST /generate         one JSON answer (the model answers once because "stream" is left out)
#   POST /generate_stream  server-sent events, one `data: {json}` per word ("stream": true)
# Top-level JSON keys naming model inputs become tensors; optional inputs may be left out.
# Prints the answers as they arrive, then checks them.
# Usage: ./client_curl.sh [http://localhost:8000]
set -euo pipefail
shopt -s lastpipe  # the while loop below runs in this shell, so `streamed` survives it
URL="${1:-http://localhost:8000}"

# Responses look like {"model_name":"vllm_style","model_version":"1","text":"Once upon a time lorem"}
text_of() { printf '%s\n' "$1" | sed -n 's/^\(data: \)\{0,1\}{.*"text": *"\([^"]*\)".*$/\2/p'; }

answer="$(curl -sS --fail-with-body --max-time 30 \
  -H "Content-Type: application/json" \
  -X POST "${URL}/v2/models/vllm_style/generate" \
  -d '{"prompt": "Once upon a time", "max_tokens": 3}')"
printf '%s\n' "${answer}"
expected="Once upon a time lorem ipsum dolor"
if [[ "$(text_of "${answer}")" != "${expected}" ]]; then
  echo "/generate: unexpected answer (expected the text '${expected}')" >&2
  exit 1
fi

streamed=""
curl -N -sS --fail-with-body --max-time 30 \
  -H "Content-Type: application/json" \
  -X POST "${URL}/v2/models/vllm_style/generate_stream" \
  -d '{"prompt": "Once upon a time", "max_tokens": 3, "stream": true}' |
while IFS= read -r line; do
  printf '%s\n' "${line}"
  text="$(text_of "${line}")"
  if [[ -n "${text}" ]]; then
    streamed="${streamed:+${streamed}|}${text}"
  fi
done
expected_stream="Once upon a time lorem|Once upon a time lorem ipsum|Once upon a time lorem ipsum dolor"
if [[ "${streamed}" != "${expected_stream}" ]]; then
  echo "/generate_stream: unexpected events '${streamed}' (expected '${expected_stream}')" >&2
  exit 1
fi
echo "OK"
