#!/bin/bash
# Starts one KRaft node of the StatefulSet: its node id is the pod ordinal.
# The image's own entrypoint writes into /opt/kafka/config, which is
# read-only here, so the config is assembled in an emptyDir instead.
set -euo pipefail
ordinal=${HOSTNAME##*-}
config=/opt/kafka/runtime/server.properties
cp /etc/kafka-template/server.properties "$config"
{
  echo "node.id=${ordinal}"
  echo "advertised.listeners=PLAINTEXT://${HOSTNAME}.kafka-headless:9092"
} >>"$config"
# Formats the data directory once; a formatted one is kept.
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$KAFKA_CLUSTER_ID" --config "$config"
exec /opt/kafka/bin/kafka-server-start.sh "$config"
