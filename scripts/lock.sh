#!/usr/bin/env bash
# Rewrite constraints.txt, the lock every install of lambdafleet uses (the
# README's install command, scripts/test.sh, the Dockerfile, CI): the exact
# releases of every runtime, test and build dependency, resolved today, with
# the oldest SDK we answer (boto3 1.43.11, awscli 1.45.11) for the tests.
# scripts/test-newest.sh runs the suite against the newest releases instead.
# Usage: bash scripts/lock.sh   (then review the diff and run the tests)
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
pip="$work/venv/bin/pip"
"$pip" install --quiet --upgrade pip
# Build requirements (pyproject's [build-system]) are locked too: protoc's
# version in grpcio-tools must not be newer than the protobuf runtime.
"$pip" install --quiet setuptools wheel "grpcio-tools>=1.70" "mypy-protobuf>=3.6"
"$pip" install --quiet ".[test]" "boto3==1.43.11" "awscli==1.45.11"
{
    echo "# The lock: exact releases for every install of lambdafleet (runtime, tests,"
    echo "# build). Written by scripts/lock.sh; use it with"
    echo "#   PIP_CONSTRAINT=constraints.txt pip install .   (the variable reaches the build step too)"
    "$pip" freeze --all --exclude lambdafleet --exclude pip | sort -f
} >constraints.txt
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) pins)"
