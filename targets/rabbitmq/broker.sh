#!/bin/sh
# Starts one RabbitMQ node for a run: its own ports, its data in DATA (kept across a restart), its
# epmd in the foreground in the same process group, so that stopping or killing the group takes
# both. Runs the server script itself: Debian's rabbitmq-server wrapper switches to the rabbitmq
# user, who cannot write a data folder made by another user.
# Env: AMQP_PORT, DIST_PORT, EPMD_PORT, PROMETHEUS_PORT, DATA (all required), BIND (where AMQP
# and the Prometheus plugin listen, default 127.0.0.1; 0.0.0.0 in a container, where the guest
# user may then also log in from elsewhere: the clients come through Toxiproxy's container),
# STATS_INTERVAL_MS (how often queue counts are refreshed, default 500; a quorum queue counts
# on its own tick, 5 s unless told).
set -eu
: "${AMQP_PORT:?}" "${DIST_PORT:?}" "${EPMD_PORT:?}" "${PROMETHEUS_PORT:?}" "${DATA:?}"
server=/usr/lib/rabbitmq/bin/rabbitmq-server
if [ ! -x "$server" ]; then
  server=$(command -v rabbitmq-server) || {
    echo "broker.sh: rabbitmq-server not found; run: harness setup" >&2
    exit 127
  }
fi

bind=${BIND:-127.0.0.1}

mkdir -p "$DATA"
cat > "$DATA/rabbitmq.conf" <<CONF
listeners.tcp.1 = $bind:$AMQP_PORT
prometheus.tcp.ip = $bind
prometheus.tcp.port = $PROMETHEUS_PORT
collect_statistics_interval = ${STATS_INTERVAL_MS:-500}
CONF
if [ "$bind" != 127.0.0.1 ]; then
  echo "loopback_users.guest = false" >> "$DATA/rabbitmq.conf"
fi
export HOME="$DATA" RABBITMQ_NODENAME="harness$AMQP_PORT@localhost" \
  RABBITMQ_NODE_PORT="$AMQP_PORT" RABBITMQ_DIST_PORT="$DIST_PORT" \
  ERL_EPMD_PORT="$EPMD_PORT" ERL_EPMD_ADDRESS=127.0.0.1 \
  RABBITMQ_MNESIA_BASE="$DATA/mnesia" RABBITMQ_LOG_BASE="$DATA/log" RABBITMQ_LOGS=- \
  RABBITMQ_CONFIG_FILE="$DATA/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS=rabbitmq_prometheus \
  RABBITMQ_ENABLED_PLUGINS_FILE="$DATA/enabled_plugins" \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -rabbit quorum_tick_interval ${STATS_INTERVAL_MS:-500}"
epmd -port "$EPMD_PORT" &
exec "$server"
