#!/usr/bin/env bash
# Pack PyTriton 0.7 for the GPU machine (Python 3.12) into .pyt/pyt312.tar.xz, for bench/gpu_workers.sh's side by side.
#   bash bench/pack_pytriton.sh [SITE]   # SITE: a site-packages holding nvidia-pytriton 0.7.0 (default ~/.venvs/pyt's)
# The wheel (55 MB) and the other carried files exceed the device's 64 MiB carry limit, so this keeps what a 3.12 run
# needs: pytriton (with only the 3.12 python-backend stub), nvidia_pytriton.libs (without the bundled libpython3.13),
# sh, importlib_metadata, and pyzmq's cp312 wheel (downloaded). About 28 MB. Run here, in the repo root; carry `.pyt`.
set -eu
SITE=${1:-$(ls -d ~/.venvs/pyt/lib/python3*/site-packages | head -1)}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$WORK/whl" pyzmq==27.3.0
mkdir -p "$WORK/site" .pyt
python3 -m zipfile -e "$WORK"/whl/pyzmq-*.whl "$WORK/site/"
for d in pytriton nvidia_pytriton.libs nvidia_pytriton-0.7.0.dist-info sh importlib_metadata; do cp -r "$SITE/$d" "$WORK/site/"; done
( cd "$WORK/site" && rm -rf pytriton/tritonserver/python_backend_stubs/3.{8,9,10,11,13} nvidia_pytriton.libs/libpython3-*.so* \
  && find . -name __pycache__ -prune -exec rm -rf {} + )
tar -cJf .pyt/pyt312.tar.xz -C "$WORK/site" .
ls -la .pyt/pyt312.tar.xz
