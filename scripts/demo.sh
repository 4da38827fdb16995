#!/usr/bin/env bash
# The main job: install pytriton_lite, start a demo server with an example model (add_sub) and answer it
# with real tritonclient HTTP and gRPC requests.
source "$(dirname "$0")/_venv.sh"
"$VPY" -m pip install --quiet -e .
exec "$VPY" -m pytriton_lite demo "$@"
