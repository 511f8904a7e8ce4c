#!/usr/bin/env bash
# Browser test of the dashboard: builds it, starts it on a free port against
# a fresh results topic and a scratch account store, keeps results flowing
# into Kafka, and runs the headless-Chromium test. Exits non-zero on failure.
#
#   dashboard/e2e/run.sh
#
# Needs: the broker on $KAFKA_BROKERS (127.0.0.1:9092; scripts/broker start),
# node + npm, and Debian's chromium (installed here when missing and root).
# Artifacts (screenshots, logs, frames/s) go to artifacts/ at the repo root.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
artifacts=$root/artifacts
mkdir -p "$artifacts"

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "e2e: installing Debian's chromium" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "e2e: chromium is missing (apt-get install -y chromium)" >&2
    exit 1
  fi
fi

cargo build -q -p dashboard --bin dashboard --example produce_results --example seed_accounts \
  --example seed_failing_webhooks
bin=$CARGO_TARGET_DIR/debug

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/dashboard.pid" ] && kill "$(cat "$work/dashboard.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }

port=$(free_port)
topic="dash-e2e-$(python3 -c 'import uuid; print(uuid.uuid4().hex)')"
export RESULTS_TOPIC=$topic
export DATABASE_URL="sqlite://$work/accounts.db"
export SECRET_HASH_KEY=$(random)
export OPERATOR_TOKEN=$(random)
export MERCHANT_ID=shop-a
export MERCHANT_SECRET=$(random)
export HTTP_ADDR=127.0.0.1:$port
export DASHBOARD_URL=http://127.0.0.1:$port/
export ARTIFACTS_DIR=$artifacts
# Shared across the restart below, so sessions survive it (as between replicas).
export SESSION_KEY=$(random)$(random)

"$bin/examples/seed_accounts" "$MERCHANT_ID:$MERCHANT_SECRET" "shop-b:$(random)" >/dev/null
# One failing endpoint per merchant, for the "Webhook endpoints failing" panel.
"$bin/examples/seed_failing_webhooks" "ep_e2e_a:$MERCHANT_ID:enabled" "ep_e2e_b:shop-b:disabled" >/dev/null
# Create the topic before the dashboard subscribes (no auto-creation).
"$bin/examples/produce_results" --topic "$topic" --create-topic 3 --create-only 2>/dev/null

: >"$artifacts/dashboard-e2e.log"
"$bin/dashboard" >>"$artifacts/dashboard-e2e.log" 2>&1 &
echo $! >"$work/dashboard.pid"
# The test restarts the dashboard (SIGTERM, a pause, a new process on the
# same port) to check that the page reconnects by itself.
export DASHBOARD_RESTART="$work/restart-dashboard.sh"
cat >"$DASHBOARD_RESTART" <<RESTART
#!/usr/bin/env bash
pid=\$(cat "$work/dashboard.pid")
kill "\$pid"
while kill -0 "\$pid" 2>/dev/null; do sleep 0.1; done
sleep "\${1:-2}"
"$bin/dashboard" >>"$artifacts/dashboard-e2e.log" 2>&1 &
echo \$! >"$work/dashboard.pid"
RESTART
chmod +x "$DASHBOARD_RESTART"
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "e2e: dashboard not ready" >&2; cat "$artifacts/dashboard-e2e.log" >&2; exit 1; }

# Steady traffic for the whole test: 300 results/s over five merchants.
"$bin/examples/produce_results" --topic "$topic" --rate "${E2E_RATE:-300}" \
  --merchants shop-a,shop-b,shop-c,shop-d,shop-e >"$artifacts/producer-e2e.log" 2>&1 &
pids+=($!)

cd "$root/dashboard/e2e"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
node --test --test-reporter=spec dashboard.test.mjs
