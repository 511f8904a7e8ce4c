#!/bin/bash
# Starts one KRaft node of the StatefulSet: its node id is the pod ordinal.
# The image's own entrypoint writes into /opt/kafka/config, which is
# read-only here, so the config is assembled in an emptyDir instead.
# With KAFKA_LISTENER_PROTOCOL=SASL_SSL (the production overlay) the broker
# listener is SASL_SSL: the PEM key and certificate of /etc/kafka-tls become
# the keystore, and the brokers' own SCRAM user (KAFKA_BROKER_PASSWORD) and
# the admin user (KAFKA_ADMIN_PASSWORD) are created when the storage is
# formatted, since nothing can authenticate before they exist.
set -euo pipefail
ordinal=${HOSTNAME##*-}
protocol=${KAFKA_LISTENER_PROTOCOL:-PLAINTEXT}
config=/opt/kafka/runtime/server.properties
cp /etc/kafka-template/server.properties "$config"
{
  echo "node.id=${ordinal}"
  echo "advertised.listeners=${protocol}://${HOSTNAME}.kafka-headless:9092"
} >>"$config"
scram=()
if [ "$protocol" = SASL_SSL ]; then
  umask 077
  cat /etc/kafka-tls/tls.key /etc/kafka-tls/tls.crt >/opt/kafka/runtime/keystore.pem
  echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"kafka-broker\" password=\"${KAFKA_BROKER_PASSWORD}\";" >>"$config"
  scram=(--add-scram "SCRAM-SHA-512=[name=kafka-broker,password=${KAFKA_BROKER_PASSWORD}]"
         --add-scram "SCRAM-SHA-512=[name=kafka-admin,password=${KAFKA_ADMIN_PASSWORD}]")
fi
# Formats the data directory once; a formatted one is kept.
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$KAFKA_CLUSTER_ID" --config "$config" "${scram[@]}"
exec /opt/kafka/bin/kafka-server-start.sh "$config"
