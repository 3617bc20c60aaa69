#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server for its tests:
#   scripts/with-postgres.sh make test
# STEWARD_TEST_POSTGRES_URL points at the server while the command runs; the
# server and its data are removed afterwards, also when the command fails.
set -euo pipefail
# shellcheck source=scripts/postgres.sh
. "$(dirname "$0")/postgres.sh"
trap pg_stop EXIT
pg_start
"$@"
