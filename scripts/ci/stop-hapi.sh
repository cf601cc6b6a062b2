#!/usr/bin/env bash
# Stops what start-hapi.sh and start-postgres.sh started (by their pid file and data folder, nothing else).
set -euo pipefail
CI_DIR="${NORPAIN_CI_DIR:-/var/tmp/norpain-ci}"
PID_FILE="$CI_DIR/hapi/hapi.pid"
if [[ -s "$PID_FILE" ]]; then
  pid="$(cat "$PID_FILE")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  rm -f "$PID_FILE"
  echo "[stop-hapi] HAPI stopped" >&2
fi
if [[ "${1:-}" == "--with-postgres" && -s "$CI_DIR/pg/data/PG_VERSION" ]]; then
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [[ "$(id -u)" == "0" ]]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CI_DIR/pg/data" -m fast stop >/dev/null 2>&1 || true
  else
    "$PG_BIN/pg_ctl" -D "$CI_DIR/pg/data" -m fast stop >/dev/null 2>&1 || true
  fi
  echo "[stop-hapi] PostgreSQL stopped" >&2
fi
