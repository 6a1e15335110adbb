#!/usr/bin/env bash
# The test command against the newest release of every dependency (no lock),
# in a fresh .venv-newest: drift in what a user's pip resolves shows up here
# before it reaches a user. Usage: bash scripts/test-newest.sh [pytest args...]
set -euo pipefail
LAMBDAFLEET_NEWEST=1 exec bash "$(dirname "$0")/test.sh" "$@"
