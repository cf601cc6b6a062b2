# shellcheck shell=bash
# Sourced by start-rabbitmq.sh and stop-rabbitmq.sh: where the CI broker lives and how rabbitmqctl reaches
# it. Everything the node and rabbitmqctl read comes from $RABBITMQ_DIR, never from /etc/rabbitmq or
# /var/lib/rabbitmq, so the CI broker is independent of any system broker.
CI_DIR="${NORPAIN_CI_DIR:-/var/tmp/norpain-ci}"
AMQP_PORT="${AMQP_PORT:-5673}"
RABBITMQ_DIR="$CI_DIR/rabbitmq"
RABBITMQ_BIN=/usr/lib/rabbitmq/bin
export HOME="$RABBITMQ_DIR" # the Erlang cookie the node and rabbitmqctl share
export RABBITMQ_CONF_ENV_FILE="$RABBITMQ_DIR/rabbitmq-env.conf"
export RABBITMQ_NODENAME="norpain-ci@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$AMQP_PORT"
export RABBITMQ_DIST_PORT="$((AMQP_PORT + 20000))"
export RABBITMQ_CONFIG_FILE="$RABBITMQ_DIR/rabbitmq.conf"
export RABBITMQ_ENABLED_PLUGINS_FILE="$RABBITMQ_DIR/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$RABBITMQ_DIR/mnesia"
export RABBITMQ_LOG_BASE="$RABBITMQ_DIR/log"
export RABBITMQ_PID_FILE="$RABBITMQ_DIR/node.pid"
export ERL_EPMD_ADDRESS=127.0.0.1

rabbitmq_ctl() { "$RABBITMQ_BIN/rabbitmqctl" --node "$RABBITMQ_NODENAME" "$@"; }
