#!/bin/sh
# Starts one Kafka node in KRaft mode (broker and controller in one process) for a run: its own
# ports, its data in DATA (formatted on the first start, kept across a restart).
# Each client component reaches it through its own link (a Toxiproxy proxy), and Kafka tells a
# client to connect to the address advertised for the listener it came in on: so there is one
# listener per client component, on the port named after it, advertised as that client's proxy.
# Env: PORT (the listener of everything else, such as the probe), CONTROLLER_PORT, LISTENERS
# (NAME=PORT=ADVERTISED_ADDRESS, comma-separated), PARTITIONS (default 4), DATA (required),
# BIND (the address every client listener listens on, default 127.0.0.1; 0.0.0.0 in a
# container), ADDR (host:port advertised for PORT, default 127.0.0.1:PORT; in a container, its
# address on the run's network). The controller stays on the loopback: only this node uses it.
# One node for tests on a small machine: the serial collector and the client compiler alone
# (JVM) cost a fraction of the CPU that G1's threads and C2's compilations do, for a load that
# never needs their throughput.
set -eu
: "${PORT:?}" "${CONTROLLER_PORT:?}" "${DATA:?}"
here=$(cd "$(dirname "$0")" && pwd)
jvm="-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
if server=$(PATH="${HARNESS_HOME:-$HOME/.cache/harness}/bin:$PATH" command -v kafka-server); then
  export JAVA_OPTS="$jvm -Dlog4j2.configurationFile=$here/log4j2.properties ${JAVA_OPTS:-}"
  format() { "$server" storage format "$@"; }
  serve() { exec "$server" "$@"; }
elif [ -x /opt/kafka/bin/kafka-server-start.sh ]; then  # the public apache/kafka image
  export KAFKA_LOG4J_OPTS="-Dlog4j2.configurationFile=$here/log4j2.properties" LOG_DIR="$DATA/logs" \
    KAFKA_JVM_PERFORMANCE_OPTS="$jvm"
  format() { /opt/kafka/bin/kafka-storage.sh format "$@"; }
  serve() { exec /opt/kafka/bin/kafka-server-start.sh "$@"; }
else
  echo "broker.sh: kafka-server not found; run: harness setup" >&2
  exit 127
fi

bind=${BIND:-127.0.0.1}
listeners="PLAINTEXT://$bind:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
advertised="PLAINTEXT://${ADDR:-127.0.0.1:$PORT}"
protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
for entry in $(echo "${LISTENERS:-}" | tr ',' ' '); do
  name=$(echo "$entry" | cut -d= -f1 | tr '[:lower:]' '[:upper:]')
  port=$(echo "$entry" | cut -d= -f2)
  address=$(echo "$entry" | cut -d= -f3)
  listeners="$listeners,$name://$bind:$port"
  advertised="$advertised,$name://$address"
  protocols="$protocols,$name:PLAINTEXT"
done

mkdir -p "$DATA"
cat > "$DATA/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
log.dirs=$DATA/log
num.partitions=${PARTITIONS:-4}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=2000
CONF
if [ ! -f "$DATA/log/meta.properties" ]; then
  # A cluster id is 16 random bytes in URL-safe base64; one that starts with "-" (1 in 64)
  # would be read by the storage tool as an option, so draw again.
  cluster=-
  while [ "${cluster#-}" != "$cluster" ]; do
    cluster=$(head -c 16 /dev/urandom | base64 | tr "+/" "-_" | cut -c1-22)
  done
  format --ignore-formatted --cluster-id "$cluster" --config "$DATA/server.properties" > /dev/null
fi
serve "$DATA/server.properties"
