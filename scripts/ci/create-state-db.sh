#!/usr/bin/env bash
# Creates the façade's own state database (STATE=postgres) in the local CI cluster that
# start-postgres.sh runs, beside HAPI's database and never inside it. Idempotent; run as root, after
# start-postgres.sh. Tests make a schema of their own in it, so runs never see each other's rows.
#
# Environment (all optional):
#   NORPAIN_CI_DIR   as for start-postgres.sh (default /var/tmp/norpain-ci)
#   PGPORT           default 54329
#   STATE_DB_NAME, STATE_DB_USER, STATE_DB_PASSWORD   default norpain_state / norpain / norpain
# Prints on its last line: STATE_DATABASE_URL=postgres://USER:PASSWORD@127.0.0.1:PORT/DB
set -euo pipefail

CI_DIR="${NORPAIN_CI_DIR:-/var/tmp/norpain-ci}"
PORT="${PGPORT:-54329}"
DB="${STATE_DB_NAME:-norpain_state}"
DB_USER="${STATE_DB_USER:-norpain}"
DB_PASSWORD="${STATE_DB_PASSWORD:-norpain}"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"

psql_admin() { runuser -u postgres -- "$PG_BIN/psql" -h "$CI_DIR/pg" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

if [[ "$(psql_admin -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" != "1" ]]; then
  psql_admin -d postgres -c "CREATE ROLE \"$DB_USER\" LOGIN PASSWORD '$DB_PASSWORD'"
fi
if [[ "$(psql_admin -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]]; then
  psql_admin -d postgres -c "CREATE DATABASE \"$DB\" OWNER \"$DB_USER\" ENCODING 'UTF8'"
fi
echo "STATE_DATABASE_URL=postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:$PORT/$DB"
