#!/bin/sh
# bench --compare for 1, 8 and 64 connections and durability fsync and os,
# RUNS times each (interleaved), then the median of each figure.
#
#   go build -o hl7broker ./cmd/hl7broker
#   scripts/bench-matrix.sh                      # embedded NATS
#   NATS_URL=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224 \
#     DURABILITIES=fsync scripts/bench-matrix.sh --replicas 3   # a cluster (scripts/local-cluster.sh)
#
# Extra arguments go to every bench --compare. Writes the raw results to
# $OUT (default bench-matrix.jsonl) and prints a Markdown table.
set -eu
BIN=${BIN:-./hl7broker}
RUNS=${RUNS:-5}
MESSAGES=${MESSAGES:-3000}
CONNS=${CONNS:-"1 8 64"}
DURABILITIES=${DURABILITIES:-"fsync os"}
OUT=${OUT:-bench-matrix.jsonl}
nats=""
[ -n "${NATS_URL:-}" ] && nats="--nats $NATS_URL"
: > "$OUT"
for run in $(seq "$RUNS"); do
  for d in $DURABILITIES; do
    for c in $CONNS; do
      echo "run $run/$RUNS: durability $d, $c connections" >&2
      # shellcheck disable=SC2086
      "$BIN" bench --compare --json --progress 0 --durability "$d" --connections "$c" --messages "$MESSAGES" $nats "$@" 2>/dev/null >> "$OUT" || true
    done
  done
done
jq -rs '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
  def r(x): (x * 100 | round) / 100;
  "| durability | store | conns | raw MLLP msg/s | raw JetStream msg/s | broker msg/s | broker p50 / p99 ms | ÷ raw MLLP | ÷ raw JetStream | broker CPU ms/msg | peak RSS MB | lost | runs |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  (group_by([.durability, .store, .broker.connections]) | sort_by(.[0].durability, .[0].broker.connections)[] |
    "| \(.[0].durability) | \(if .[0].store == "embedded" then "embedded" else "cluster R\(.[0].replicas)" end) | \(.[0].broker.connections) | \(map(.raw_mllp.per_second) | median | round) | \(map(.raw_jetstream.per_second) | median | round) | \(map(.broker.per_second) | median | round) | \(map(.broker.latency_ms.p50) | median) / \(map(.broker.latency_ms.p99) | median) | \(map(.ratio_to_raw_mllp) | median | r(.)) | \(map(.ratio_to_raw_jetstream) | median | r(.)) | \(map(.broker_cpu_seconds * 1000 / .broker.messages) | median | r(.)) | \(map(.broker_peak_rss_mb) | median | round) | \(map(.broker.sink.lost // 0) | add) | \(length) |")
' "$OUT"
