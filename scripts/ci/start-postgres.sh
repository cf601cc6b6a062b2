#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the HAPI FHIR JPA server on 127.0.0.1, without Docker.
# Idempotent: installs PostgreSQL from Debian if it is missing, initialises the cluster once, starts it
# if it is not running, and creates the database and user if they do not exist.
# Runs as root (as CI does): the server itself runs as the "postgres" user, since PostgreSQL refuses root.
#
# Environment (all optional):
#   NORPAIN_CI_DIR   working folder for clusters, logs and pid files (default /var/tmp/norpain-ci)
#   PGPORT           port on 127.0.0.1 (default 54329, so it never collides with a system cluster)
#   HAPI_DB_NAME, HAPI_DB_USER, HAPI_DB_PASSWORD   (default hapi / hapi / hapi: a local test cluster)
#   HAPI_DB_FRESH=1  drop and recreate the database first (CI), when HAPI is not running
#   PG_FAST=1        (default) fsync and synchronous_commit off: a CI cluster that is thrown away after
#                    the run does not need crash safety; set PG_FAST=0 for benchmarks that should not flatter.
# Prints the JDBC URL on its last line: HAPI_JDBC_URL=jdbc:postgresql://127.0.0.1:PORT/DB
# (the NorPain server's HAPI_DATABASE_URL for it is postgres://USER:PASSWORD@127.0.0.1:PORT/DB)
set -euo pipefail

CI_DIR="${NORPAIN_CI_DIR:-/var/tmp/norpain-ci}"
PORT="${PGPORT:-54329}"
DB="${HAPI_DB_NAME:-hapi}"
DB_USER="${HAPI_DB_USER:-hapi}"
DB_PASSWORD="${HAPI_DB_PASSWORD:-hapi}"
PG_FAST="${PG_FAST:-1}"
DATA="$CI_DIR/pg/data"
LOG="$CI_DIR/pg/postgres.log"

log() { echo "[start-postgres] $*" >&2; }

find_pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [[ -n "$dir" && -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then echo "$dir"; fi
}

PG_BIN="$(find_pg_bin)"
if [[ -z "$PG_BIN" ]]; then
  log "PostgreSQL server not found: installing it from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # Debian may also create a default cluster on 5432; ours is separate (its own folder and port).
  apt-get install -y -qq postgresql >&2
  PG_BIN="$(find_pg_bin)"
  [[ -n "$PG_BIN" ]] || { log "PostgreSQL installation did not provide pg_ctl"; exit 1; }
fi

as_postgres() {
  if [[ "$(id -u)" == "0" ]]; then
    runuser -u postgres -- "$@"
  elif [[ "$(id -un)" == "postgres" ]]; then
    "$@"
  else
    log "run as root or as the postgres user"
    exit 1
  fi
}

mkdir -p "$CI_DIR/pg"
if [[ "$(id -u)" == "0" ]]; then chown postgres: "$CI_DIR/pg"; fi

if [[ ! -s "$DATA/PG_VERSION" ]]; then
  log "initialising a cluster in $DATA"
  as_postgres "$PG_BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
fi

if as_postgres "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  log "already running on 127.0.0.1:$PORT"
else
  OPTS="-c listen_addresses=127.0.0.1 -p $PORT -k $CI_DIR/pg -c max_connections=100"
  if [[ "$PG_FAST" == "1" ]]; then
    OPTS="$OPTS -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  log "starting on 127.0.0.1:$PORT (log: $LOG)"
  as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "$OPTS" -w -t 60 start >/dev/null
fi

psql_admin() { as_postgres "$PG_BIN/psql" -h "$CI_DIR/pg" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

if [[ "$(psql_admin -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" != "1" ]]; then
  psql_admin -d postgres -c "CREATE ROLE \"$DB_USER\" LOGIN PASSWORD '$DB_PASSWORD'"
fi
# HAPI_DB_FRESH=1 (CI) starts from an empty database, so that nothing an earlier run left on this machine
# can change what the tests see. Only while HAPI is down: start-hapi.sh reuses a running HAPI first.
if [[ "${HAPI_DB_FRESH:-0}" == "1" ]]; then
  log "dropping database $DB for a fresh start"
  psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)"
fi
if [[ "$(psql_admin -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]]; then
  psql_admin -d postgres -c "CREATE DATABASE \"$DB\" OWNER \"$DB_USER\" ENCODING 'UTF8'"
fi
# The physical-erasure test (test/consent/hapi-physical.test.ts) forces a CHECKPOINT before it scans the
# data folder, so that what is in shared buffers is in the files it reads.
psql_admin -d postgres -c "GRANT pg_checkpoint TO \"$DB_USER\""

echo "HAPI_JDBC_URL=jdbc:postgresql://127.0.0.1:$PORT/$DB"
