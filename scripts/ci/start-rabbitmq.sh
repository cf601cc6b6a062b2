#!/usr/bin/env bash
# Starts a RabbitMQ broker of its own on 127.0.0.1 with the AMQP 1.0 plugin, for the follow-up channel's
# tests and benchmark (helsenorge's message delivery is AMQP 1.0; docs/followup.md). Not the system
# service: its own node name, port, cookie and data folder (scripts/ci/rabbitmq-env.sh), so CI does not
# depend on how the machine is set up. Idempotent: installs Debian's rabbitmq-server if missing, starts
# the node (or only its broker application, after stop-rabbitmq.sh --app) if it is not running, and
# declares what the channel needs every time, so a second call only waits and prints the URL.
#
# What it declares (scripts/ci/rabbitmq-definitions.json, imported with rabbitmqctl):
#   queue    norpain.invitations              durable; where the channel publishes invitations
#   exchange norpain.dead-letter (fanout) → queue norpain.invitations.dead-letter (durable)
#   policy   norpain-dead-letter: every queue named norpain.invitations… (but the dead-letter queue)
#            dead-letters what a consumer rejects (a poison message) to that exchange, so nothing is
#            silently dropped
#   policy   norpain-bench: bench/dispatch's queues (norpain.bench.…) are removed a minute after use
#
# Environment (all optional):
#   NORPAIN_CI_DIR          working folder for data, logs and the cookie (default /var/tmp/norpain-ci)
#   AMQP_PORT               AMQP port on 127.0.0.1, 0-9-1 and 1.0 alike (default 5673, never the system's 5672)
#   RABBITMQ_START_TIMEOUT  seconds to wait for the broker (default 120)
# Prints the broker's URL on its last line: AMQP_URL=amqp://guest:guest@127.0.0.1:PORT
# (guest may log in from loopback only, which is all this broker listens on).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/ci/rabbitmq-env.sh
source "$ROOT/scripts/ci/rabbitmq-env.sh"
TIMEOUT="${RABBITMQ_START_TIMEOUT:-120}"

log() { echo "[start-rabbitmq] $*" >&2; }

# One start at a time, as start-hapi.sh: a second caller waits for the first.
mkdir -p "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
exec 9>"$RABBITMQ_DIR/start.lock"
flock 9

if [[ ! -x "$RABBITMQ_BIN/rabbitmq-server" ]]; then
  log "installing rabbitmq-server from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq rabbitmq-server >&2
fi

: >"$RABBITMQ_CONF_ENV_FILE"
cat >"$RABBITMQ_CONFIG_FILE" <<CONF
listeners.tcp.1 = 127.0.0.1:$AMQP_PORT
loopback_users.guest = true
# A CI broker on a shared machine: a nearly full /var/tmp must not block publishers with a disk alarm.
disk_free_limit.absolute = 50MB
log.file.level = warning
CONF
echo '[rabbitmq_amqp1_0].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"

started() { rabbitmq_ctl await_startup --timeout "$1" >/dev/null 2>&1; }

start=$(date +%s)
if started 1; then
  log "node $RABBITMQ_NODENAME already running on 127.0.0.1:$AMQP_PORT"
else
  if rabbitmq_ctl ping >/dev/null 2>&1; then
    log "node $RABBITMQ_NODENAME is up without its broker application: starting it"
    rabbitmq_ctl start_app >/dev/null
  else
    log "starting node $RABBITMQ_NODENAME on 127.0.0.1:$AMQP_PORT (logs: $RABBITMQ_LOG_BASE)"
    # The node must not inherit the lock (fd 9), or it would stay held as long as the broker runs.
    "$RABBITMQ_BIN/rabbitmq-server" -detached 9>&-
  fi
  # -detached returns at once; await_startup returns once the broker has booted (or fails when the
  # node is not reachable yet, right after -detached).
  until started "$TIMEOUT"; do
    if (($(date +%s) - start > TIMEOUT)); then
      log "the broker did not start within $TIMEOUT s; the end of its log:"
      tail -n 60 "$RABBITMQ_LOG_BASE"/*.log >&2 || true
      exit 1
    fi
    sleep 1
  done
  log "broker started after $(($(date +%s) - start)) s"
fi

rabbitmq_ctl import_definitions "$ROOT/scripts/ci/rabbitmq-definitions.json" >/dev/null
log "declared the invitation queue, the dead-letter exchange and queue, and the dead-letter policy"
echo "AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT"
