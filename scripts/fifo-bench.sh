#!/bin/sh
# A fifo MLLP destination under load, as in docs/BENCHMARKS.md: one
# listener, one route, one fifo destination answered by bench's sink,
# durability fsync, history on, in a fresh data folder each run.
#
#   go build -o hl7broker ./cmd/hl7broker
#   scripts/fifo-bench.sh load 16 20s      # 16 senders for 20 s, with --sink
#   scripts/fifo-bench.sh drain 30000      # queue 30,000 paused, then time the drain
#
# BIN is the broker that serves (default ./hl7broker), BENCH the one that
# runs bench (default BIN): keep BENCH fixed to compare two builds of
# BIN. SERVE_ENV adds environment to serve only (SERVE_ENV=GOMAXPROCS=4,
# SERVE_ENV=GOMEMLIMIT=200MiB).
# Uses ports 12575 (listener), 12576 (sink) and 19090 (admin). Prints
# bench's report, then the broker's CPU time per message sent and its
# peak resident memory (VmHWM).
set -eu
BIN=${BIN:-./hl7broker}
BENCH=${BENCH:-$BIN}
mode=${1:?usage: fifo-bench.sh load CONNECTIONS DURATION | drain MESSAGES}
dir=$(mktemp -d)
trap '{ kill "${pid:-}" && wait "$pid"; } 2>/dev/null || true; rm -rf "$dir"' EXIT
echo "bench-operator-token-$$" > "$dir/op.token"
cat > "$dir/fifo.yaml" <<EOF
data_dir: $dir/data
nats: {durability: fsync}
admin: {addr: 127.0.0.1:19090, tokens: [{name: op, role: operator, token_file: $dir/op.token}]}
listeners: [{name: bench, addr: 127.0.0.1:12575}]
routes: [{name: all, to: [sink]}]
destinations: [{name: sink, type: mllp, addr: 127.0.0.1:12576, timeout: 5s}]
EOF
# shellcheck disable=SC2086
env ${SERVE_ENV:-} "$BIN" serve --config "$dir/fifo.yaml" > "$dir/serve.log" 2>&1 &
pid=$!
i=0
until curl -sf 127.0.0.1:19090/readyz > /dev/null; do
  i=$((i + 1)); [ "$i" -lt 100 ] || { echo "the broker did not become ready:" >&2; cat "$dir/serve.log" >&2; exit 1; }
  sleep 0.1
done
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # clock ticks, user + system
export HL7BROKER_SERVER=http://127.0.0.1:19090 HL7BROKER_TOKEN_FILE=$dir/op.token
case $mode in
load)
  c0=$(cpu)
  "$BENCH" bench --addr 127.0.0.1:12575 --connections "${2:?connections}" --duration "${3:?duration}" \
    --sink 127.0.0.1:12576 --sink-wait 600s --progress 0 | tee "$dir/bench.txt"
  ;;
drain)
  n=${2:?messages}
  "$BIN" destinations pause sink > /dev/null
  c0=$(cpu)
  (
    until [ "$("$BIN" destinations list --json | grep -o '"queue_depth": *[0-9]*' | grep -o '[0-9]*$')" -ge "$n" ] 2>/dev/null; do sleep 0.2; done
    date +%s.%N > "$dir/resumed"
    "$BIN" destinations resume sink > /dev/null
  ) &
  "$BENCH" bench --addr 127.0.0.1:12575 --connections 16 --messages "$n" --sink 127.0.0.1:12576 --sink-wait 300s --progress 0 | tee "$dir/bench.txt"
  end=$(date +%s.%N)
  awk -v n="$n" -v a="$(cat "$dir/resumed")" -v b="$end" 'BEGIN { printf "drain: %d messages in %.2f s from the resume: %.0f msg/s\n", n, b - a, n / (b - a) }'
  ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac
sent=$(grep -o 'messages [0-9]*' "$dir/bench.txt" | head -1 | grep -o '[0-9]*')
awk -v c="$(($(cpu) - c0))" -v hz="$(getconf CLK_TCK)" -v n="${sent:-0}" \
  'BEGIN { if (n > 0) printf "broker CPU: %.3f ms a message\n", c * 1000 / hz / n }'
echo "broker peak memory: $(awk '/^VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$pid/status")"
