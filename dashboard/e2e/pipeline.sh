#!/usr/bin/env bash
# The whole gateway behind the browser test: merchants post transactions to
# the API, the processor decides them, the dashboard shows the results. Two
# merchant accounts are created with the API's CLI; the browser signs in as
# one of them with the secret the CLI printed.
#
#   dashboard/e2e/pipeline.sh
#
# Needs what run.sh needs. Logs go to artifacts/pipeline-*.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
artifacts=$root/artifacts
mkdir -p "$artifacts"
command -v chromium >/dev/null || { echo "pipeline: chromium is missing (see run.sh)" >&2; exit 1; }

cargo build -q -p dashboard --bin dashboard --example produce_results
cargo build -q -p api --bin api
cargo build -q -p processor --bin processor
bin=$CARGO_TARGET_DIR/debug

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
id=$(python3 -c 'import uuid; print(uuid.uuid4().hex)')

export TRANSACTIONS_TOPIC=pipe-tx-$id RESULTS_TOPIC=pipe-res-$id DLQ_TOPIC=pipe-dlq-$id
for t in "$TRANSACTIONS_TOPIC" "$RESULTS_TOPIC" "$DLQ_TOPIC"; do
  "$bin/examples/produce_results" --topic "$t" --create-topic 3 --create-only 2>/dev/null
done
export DATABASE_URL="sqlite://$work/gateway.db" SECRET_HASH_KEY=$(random) OPERATOR_TOKEN=$(random)
export SESSION_KEY=$(random)$(random) ADMIN_TOKEN=$(random)
export CONSUMER_GROUP=pipe-processor-$id CARD_HASH_KEY=$(random)
export CARD_ENCRYPTION_KEYS="local:$(python3 -c 'import base64,secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')"
export CVV_ENCRYPTION_KEYS="localcvv:$(python3 -c 'import base64,secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')"

secret_of() { "$bin/api" accounts create --id "$1" --name "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])'; }
export MERCHANT_ID=shop-a
export MERCHANT_SECRET=$(secret_of shop-a)
other_secret=$(secret_of shop-b)

api_port=$(free_port) api_admin_port=$(free_port)
HTTP_ADDR=127.0.0.1:$(free_port) "$bin/processor" >"$artifacts/pipeline-processor.log" 2>&1 &
pids+=($!)
HTTP_ADDR=127.0.0.1:$api_port ADMIN_HTTP_ADDR=127.0.0.1:$api_admin_port "$bin/api" serve >"$artifacts/pipeline-api.log" 2>&1 &
pids+=($!)
dash_port=$(free_port)
HTTP_ADDR=127.0.0.1:$dash_port "$bin/dashboard" >"$artifacts/pipeline-dashboard.log" 2>&1 &
pids+=($!)
export DASHBOARD_URL=http://127.0.0.1:$dash_port/ ARTIFACTS_DIR=$artifacts/pipeline
for port in "$api_admin_port" "$dash_port"; do # the API answers /readyz on its internal port
  for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "pipeline: port $port not ready" >&2; tail -5 "$artifacts"/pipeline-*.log >&2; exit 1; }
done

# Merchants post batches of 20 every 100 ms each (about 400 transactions/s),
# some of them failing a business rule.
scripts/demo-traffic.py "$api_port" "shop-a:$MERCHANT_SECRET" "shop-b:$other_secret" --per-second 200 --batch 20 \
  >"$artifacts/pipeline-traffic.log" 2>&1 &
pids+=($!)

cd "$root/dashboard/e2e"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
node --test --test-reporter=spec dashboard.test.mjs
