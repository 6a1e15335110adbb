#!/usr/bin/env bash
# The project's test command: installs lambdafleet with its test tools, then
# lint, type-check (against the installed layout) and the test suite.
# Needs a running Docker daemon and, for the offline runtime image build,
# debootstrap (root). Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
python3 -m pip install --quiet ".[test]"

echo "== ruff"
ruff check .

echo "== mypy"
# The parts install under one namespace (gateway/ -> lambdafleet.gateway, ...);
# type-check that layout exactly as it installs.
typecheck=$(mktemp -d)
trap 'rm -rf "$typecheck"' EXIT
python3 -m pip install --quiet --no-deps --target "$typecheck" .
(cd "$typecheck" && mypy --config-file "$OLDPWD/pyproject.toml" -p lambdafleet)

echo "== pytest"
python3 -m pytest "$@"
