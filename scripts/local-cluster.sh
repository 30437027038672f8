#!/bin/sh
# A three-node NATS JetStream cluster on 127.0.0.1, built from the
# nats-server version go.mod pins, for bench --compare and manual tests.
#
#   scripts/local-cluster.sh start [always|default]   # sync_interval; prints NATS_URL
#   scripts/local-cluster.sh stop
#
# Client ports 4222-4224, cluster 6222-6224, monitoring 8222-8224; state in
# ${CLUSTER_DIR:-/tmp/hl7broker-cluster}.
set -eu
DIR=${CLUSTER_DIR:-/tmp/hl7broker-cluster}
case "${1:-}" in
start)
  sync=${2:-always}
  mkdir -p "$DIR"
  go build -o "$DIR/nats-server" github.com/nats-io/nats-server/v2
  for i in 1 2 3; do
    mkdir -p "$DIR/node$i"
    sync_line=""
    [ "$sync" = always ] && sync_line="sync_interval: always"
    cat > "$DIR/node$i.conf" <<CONF
server_name: node$i
listen: 127.0.0.1:$((4221 + i))
http: 127.0.0.1:$((8221 + i))
jetstream {
  store_dir: "$DIR/node$i"
  $sync_line
}
cluster {
  name: hl7broker-local
  listen: 127.0.0.1:$((6221 + i))
  routes: [nats://127.0.0.1:6222, nats://127.0.0.1:6223, nats://127.0.0.1:6224]
}
CONF
    "$DIR/nats-server" -c "$DIR/node$i.conf" > "$DIR/node$i.log" 2>&1 &
    echo $! > "$DIR/node$i.pid"
  done
  for i in 1 2 3; do
    n=0
    until curl -fs "http://127.0.0.1:$((8221 + i))/healthz" > /dev/null; do
      n=$((n + 1)); [ $n -gt 300 ] && { echo "node$i not ready; see $DIR/node$i.log" >&2; exit 1; }
      sleep 0.1
    done
  done
  echo "NATS_URL=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"
  ;;
stop)
  for i in 1 2 3; do
    [ -f "$DIR/node$i.pid" ] && kill "$(cat "$DIR/node$i.pid")" 2>/dev/null || true
  done
  rm -rf "$DIR"
  ;;
*)
  echo "usage: $0 start [always|default] | stop" >&2
  exit 2
  ;;
esac
