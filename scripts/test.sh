#!/usr/bin/env bash
# Install pytriton_lite with its test extras (and the CPU torch wheel for the torch example), lint, run all tests.
source "$(dirname "$0")/_venv.sh"
"$VPY" -m pip install --quiet -e '.[test]'
# torch is optional: without it the torch example test is skipped, not failed
"$VPY" -m pip install --quiet torch==2.13.0 || echo "torch==2.13.0 not installable here: torch tests will be skipped"
"$VPY" -m ruff check pytriton_lite tests examples bench
set +e
"$VPY" -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
