#!/usr/bin/env bash
# Streams FakeLLM over HTTP with curl: POST /generate_stream answers with server-sent events, one
# `data: {json}` line per generated word, sent as the word is produced (-N turns off curl's buffering).
# Prints every event as it arrives, then checks the words.
# Usage: ./client_curl.sh [http://localhost:8000]
set -euo pipefail
shopt -s lastpipe  # the while loop below runs in this shell, so `words` survives it
URL="${1:-http://localhost:8000}"
EXPECTED="how I wonder what you are up above the world so high like a diamond in the sky"

# Top-level JSON keys naming a model input become tensors; the others become request parameters.
# Each event looks like: data: {"id":"curl-1","model_name":"FakeLLM","model_version":"1","token":"how"}
words=""
curl -N -sS --fail-with-body --max-time 30 \
  -H "Content-Type: application/json" \
  -X POST "${URL}/v2/models/FakeLLM/generate_stream" \
  -d '{"id": "curl-1", "prompt": "twinkle twinkle little star"}' |
while IFS= read -r line; do
  printf '%s\n' "${line}"
  word="$(printf '%s\n' "${line}" | sed -n 's/^data: .*"token": *"\([^"]*\)".*$/\1/p')"
  if [[ -n "${word}" ]]; then
    words="${words:+${words} }${word}"
  fi
done

if [[ "${words}" != "${EXPECTED}" ]]; then
  echo "unexpected words: '${words}' (expected '${EXPECTED}')" >&2
  exit 1
fi
echo "OK: ${words}"
