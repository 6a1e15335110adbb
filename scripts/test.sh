#!/usr/bin/env bash
# The project's test command: lint, type-check and the test suite, in the
# project's virtual environment (.venv, created when missing).
# Needs a running Docker daemon and, for the offline runtime image build,
# debootstrap (as root). Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
export PATH="$PWD/.venv/bin:$PATH"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet ".[test]"

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
