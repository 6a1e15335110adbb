#!/usr/bin/env bash
# The project's test command: lint, type-check and the test suite, in the
# project's virtual environment (.venv, created when missing), installed from
# the lock (constraints.txt).
# Needs a running Docker daemon and, for the offline runtime image build,
# debootstrap (as root). Usage: bash scripts/test.sh [pytest args...]
#
# LAMBDAFLEET_NEWEST=1 (what scripts/test-newest.sh sets) installs the newest
# release of every dependency instead, into a fresh .venv-newest, so that
# drift in what users' pip resolves is found by us first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${LAMBDAFLEET_NEWEST:-0}" = 1 ]; then
    venv=.venv-newest
    rm -rf "$venv"
    python3 -m venv "$venv"
    # No lock: the newest releases, build requirements included.
    export PIP_CONSTRAINT=""
else
    venv=.venv
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    # The lock applies to the build step's isolated environment too (only the
    # variable reaches it, not a -c option).
    export PIP_CONSTRAINT="$PWD/constraints.txt"
fi
export PATH="$PWD/$venv/bin:$PATH"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet ".[test]"
if [ "${LAMBDAFLEET_NEWEST:-0}" = 1 ]; then
    echo "== newest releases"
    python -m pip freeze | grep -iE '^(boto3|botocore|awscli|grpcio|protobuf|tornado|docker|regex)=='
fi

echo "== ruff"
ruff check .

echo "== mypy"
# The parts install under one namespace (gateway/ -> lambdafleet.gateway, ...);
# type-check that layout exactly as it installs.
typecheck=$(mktemp -d)
trap 'rm -rf "$typecheck"' EXIT
python -m pip install --quiet --no-deps --target "$typecheck" .
(cd "$typecheck" && mypy --config-file "$OLDPWD/pyproject.toml" -p lambdafleet)

echo "== pytest"
python -m pytest "$@"
