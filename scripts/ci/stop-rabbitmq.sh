#!/usr/bin/env bash
# Stops the broker start-rabbitmq.sh started (by its node name, nothing else). With --app only the broker
# application stops and the Erlang node stays up: to clients that is a broker outage, and
# start-rabbitmq.sh brings it back in a second or two (the follow-up channel's restart tests use this).
# Durable queues and their persistent messages survive either way.
set -euo pipefail
# shellcheck source=scripts/ci/rabbitmq-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/rabbitmq-env.sh"
if ! rabbitmq_ctl ping >/dev/null 2>&1; then
  echo "[stop-rabbitmq] node $RABBITMQ_NODENAME is not running" >&2
  exit 0
fi
if [[ "${1:-}" == "--app" ]]; then
  rabbitmq_ctl stop_app >/dev/null
  echo "[stop-rabbitmq] broker application stopped (node $RABBITMQ_NODENAME still up)" >&2
else
  rabbitmq_ctl stop >/dev/null
  echo "[stop-rabbitmq] node $RABBITMQ_NODENAME stopped" >&2
fi
