#!/bin/bash
# Creates the gateway's topics with explicit partition counts; existing ones
# are kept (partitions can be added later with kafka-topics.sh --alter, never
# removed). The transactions partition count bounds the processor replicas.
set -euo pipefail
# shellcheck source=k8s/base/kafka/client.sh
. /etc/kafka-template/client.sh
topics=/opt/kafka/bin/kafka-topics.sh
for _ in $(seq 1 60); do
  "$topics" --bootstrap-server "$bootstrap" "${client_args[@]}" --list >/dev/null 2>&1 && break
  echo "waiting for kafka at $bootstrap"; sleep 5
done
create() { # name partitions
  "$topics" --bootstrap-server "$bootstrap" "${client_args[@]}" --create --if-not-exists --topic "$1" \
    --partitions "$2" --replication-factor "${REPLICATION_FACTOR:-3}" --config min.insync.replicas="${MIN_INSYNC_REPLICAS:-2}"
}
create transactions "${TRANSACTIONS_PARTITIONS:-12}"
create transactions_result "${RESULTS_PARTITIONS:-12}"
create transactions_dlq "${DLQ_PARTITIONS:-3}"
# What was created, in the Job's log.
"$topics" --bootstrap-server "$bootstrap" "${client_args[@]}" --describe --topic 'transactions.*'
