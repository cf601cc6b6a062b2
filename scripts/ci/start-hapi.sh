#!/usr/bin/env bash
# Builds (once) and starts the HAPI FHIR JPA server of docker/hapi on 127.0.0.1, on the PostgreSQL of
# start-postgres.sh, and waits until /fhir/metadata answers. Idempotent: a server already answering on
# the port is reused, and the jar is rebuilt only when docker/hapi changed since it was built.
# Maven's cache (~/.m2) is kept between runs on the same machine: a warm build needs no downloads.
#
# Environment (all optional):
#   NORPAIN_CI_DIR      working folder for logs and pid files (default /var/tmp/norpain-ci)
#   HAPI_PORT           port on 127.0.0.1 (default 8090)
#   HAPI_START_TIMEOUT  seconds to wait for /fhir/metadata (default 600)
#   HAPI_JAVA_OPTS      JVM options (default -Xms256m -Xmx1536m)
#   PGPORT, HAPI_DB_*   passed on to start-postgres.sh
# Safe to call twice at once (the second waits for the first): .ci/run can start it in the background
# before installing and linting, and call it again later to wait for it and get the URL.
# Prints the base URL on its last line: HAPI_URL=http://127.0.0.1:PORT/fhir
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODULE="$ROOT/docker/hapi"
JAR="$MODULE/target/norpain-hapi.jar"
CI_DIR="${NORPAIN_CI_DIR:-/var/tmp/norpain-ci}"
PORT="${HAPI_PORT:-8090}"
TIMEOUT="${HAPI_START_TIMEOUT:-600}"
JAVA_OPTS="${HAPI_JAVA_OPTS:--Xms256m -Xmx1536m}"
URL="http://127.0.0.1:$PORT/fhir"
LOG="$CI_DIR/hapi/hapi.log"
PID_FILE="$CI_DIR/hapi/hapi.pid"

log() { echo "[start-hapi] $*" >&2; }
answers() { curl -sf -m 5 -o /dev/null -H 'Accept: application/fhir+json' "$URL/metadata"; }

# One start at a time: .ci/run may start HAPI in the background early and call this again to wait for it.
mkdir -p "$CI_DIR/hapi"
exec 9>"$CI_DIR/hapi/start.lock"
flock 9

if answers; then
  log "already answering at $URL"
  echo "HAPI_URL=$URL"
  exit 0
fi

if ! command -v java >/dev/null || ! command -v mvn >/dev/null || ! command -v curl >/dev/null; then
  log "installing Java 17, Maven and curl from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq openjdk-17-jdk-headless maven curl >&2
fi

# The servers started here must not inherit the lock (fd 9), or it would stay held as long as they run.
JDBC_URL="$("$ROOT/scripts/ci/start-postgres.sh" 9>&- | sed -n 's/^HAPI_JDBC_URL=//p' | tail -1)"
[[ -n "$JDBC_URL" ]] || { log "start-postgres.sh gave no JDBC URL"; exit 1; }

# Rebuild when the jar is missing or anything in the module is newer than it.
if [[ ! -s "$JAR" ]] || [[ -n "$(find "$MODULE/pom.xml" "$MODULE/src" -newer "$JAR" -print -quit)" ]]; then
  log "building $JAR (mvn package; the first build downloads HAPI from Maven Central)"
  start=$(date +%s)
  (cd "$MODULE" && mvn -q -B package -DskipTests >&2)
  log "built in $(($(date +%s) - start)) s"
fi

# HAPI runs from a copy: rebuilding the jar must never change the classes under a running server.
RUN_JAR="$CI_DIR/hapi/norpain-hapi.jar"
if [[ -s "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  log "HAPI (pid $(cat "$PID_FILE")) is starting already; waiting for it"
else
  cp "$JAR" "$RUN_JAR"
  log "starting HAPI on 127.0.0.1:$PORT (log: $LOG)"
  # shellcheck disable=SC2086 # JAVA_OPTS is a list of options
  SERVER_ADDRESS=127.0.0.1 SERVER_PORT="$PORT" \
    SPRING_DATASOURCE_URL="$JDBC_URL" \
    SPRING_DATASOURCE_USERNAME="${HAPI_DB_USER:-hapi}" \
    SPRING_DATASOURCE_PASSWORD="${HAPI_DB_PASSWORD:-hapi}" \
    nohup java $JAVA_OPTS -jar "$RUN_JAR" \
    --spring.config.additional-location="file:$MODULE/application.yaml" \
    >"$LOG" 2>&1 </dev/null 9>&- &
  echo $! >"$PID_FILE"
fi

pid="$(cat "$PID_FILE")"
start=$(date +%s)
until answers; do
  if ! kill -0 "$pid" 2>/dev/null; then
    log "HAPI exited before it answered; the end of $LOG:"
    tail -n 60 "$LOG" >&2
    rm -f "$PID_FILE"
    exit 1
  fi
  if (($(date +%s) - start > TIMEOUT)); then
    log "HAPI did not answer within $TIMEOUT s; the end of $LOG:"
    tail -n 60 "$LOG" >&2
    exit 1
  fi
  sleep 2
done
log "HAPI answered after $(($(date +%s) - start)) s"
echo "HAPI_URL=$URL"
