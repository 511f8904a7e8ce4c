#!/usr/bin/env bash
# Load measurement: the release dashboard under the highest result rate the
# release load generator can drive, with the browser test running at the
# same time. Prints, every 5 s: the dashboard's CPU (% of one core, from
# /proc deltas), RSS, and results consumed per second (from /metrics); then
# the browser's frames/s and a final `ps -o %cpu,rss`.
#
#   dashboard/e2e/measure.sh            # RATE=0 (as fast as possible), SECS=60
#   RATE=50000 SECS=60 dashboard/e2e/measure.sh
#   CLIENTS=200 RATE=50000 dashboard/e2e/measure.sh   # plus 200 WebSocket clients
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
rate=${RATE:-0}
secs=${SECS:-60}
artifacts=$root/artifacts
mkdir -p "$artifacts"

cargo build -q --release -p dashboard --bin dashboard --example produce_results --example ws_clients
cargo build -q -p dashboard --example seed_accounts
rel=$CARGO_TARGET_DIR/release

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
topic="dash-load-$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
export RESULTS_TOPIC=$topic DATABASE_URL="sqlite://$work/accounts.db" SECRET_HASH_KEY=$(random)
export OPERATOR_TOKEN=$(random) MERCHANT_ID=shop-a MERCHANT_SECRET=$(random) SESSION_KEY=$(random)$(random)
# The load's clients share one session and one address: lift the per-session
# and per-address WebSocket caps (5 and 50 by default) for the measurement.
export MAX_WS_PER_SESSION=100000 MAX_WS_PER_ADDRESS=100000
export HTTP_ADDR=127.0.0.1:$port DASHBOARD_URL=http://127.0.0.1:$port/ ARTIFACTS_DIR=$artifacts

"$CARGO_TARGET_DIR/debug/examples/seed_accounts" "$MERCHANT_ID:$MERCHANT_SECRET" >/dev/null
"$rel/examples/produce_results" --topic "$topic" --create-topic 6 --create-only 2>/dev/null
RUST_LOG=warn "$rel/dashboard" >"$artifacts/dashboard-load.log" 2>&1 &
dash=$!
pids+=($dash)
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
sleep 3 # partitions assigned before the load starts

"$rel/examples/produce_results" --topic "$topic" --rate "$rate" --duration-secs "$secs" \
  --merchants shop-a,shop-b,shop-c,shop-d,shop-e,shop-f,shop-g,shop-h >"$artifacts/producer-load.log" 2>&1 &
pids+=($!)

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$dash/stat"; }
consumed() { curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1=="dashboard_results_consumed_total"{print $2}'; }
(
  c0=$(cpu); n0=$(consumed); t0=$(date +%s.%N)
  echo "  t(s)  cpu%(1 core)  rss(MiB)  consumed/s" 
  for i in $(seq 5 5 "$secs"); do
    sleep 5
    c1=$(cpu); n1=$(consumed); t1=$(date +%s.%N)
    rss=$(awk '/VmRSS/{print $2}' "/proc/$dash/status")
    awk -v i="$i" -v c="$((c1 - c0))" -v k="$ticks" -v n0="$n0" -v n1="$n1" -v t0="$t0" -v t1="$t1" -v r="$rss" \
      'BEGIN { dt = t1 - t0; printf "%6d  %12.1f  %8.1f  %10.0f\n", i, 100 * c / k / dt, r / 1024, (n1 - n0) / dt }'
    c0=$c1; n0=$n1; t0=$t1
  done
) | tee "$artifacts/dashboard-load.txt" &
sampler=$!

clients=${CLIENTS:-0}
if [ "$clients" -gt 0 ]; then
  "$rel/examples/ws_clients" --addr "127.0.0.1:$port" --clients "$clients" --secs $((secs - 10)) \
    >"$artifacts/ws-clients-load.txt" 2>&1 &
  pids+=($!)
fi
sleep 10 # the browser joins under full load
(cd "$root/dashboard/e2e" && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund; } && \
  node --test --test-reporter=spec dashboard.test.mjs 2>&1 | grep -E 'frames/s|✔|✖|^ℹ (pass|fail)') || true
wait "$sampler"
echo "ps at the end of the load:"
ps -o pid,%cpu,rss,cmd -p "$dash" | cut -c1-80
echo "producer: $(tail -1 "$artifacts/producer-load.log")"
[ "$clients" -gt 0 ] && echo "ws clients: $(cat "$artifacts/ws-clients-load.txt")"
echo "dashboard metrics:"
curl -fsS "http://127.0.0.1:$port/metrics" | grep -E '^dashboard_(results|ws)_'
