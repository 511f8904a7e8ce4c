#!/bin/bash
# Sourced by the Kafka Jobs: the admin client's settings. With
# KAFKA_ADMIN_PASSWORD (the production overlay) the tools talk SASL_SSL as
# the kafka-admin super user; otherwise plaintext (base, dev).
# shellcheck disable=SC2034 # client_args is used by the sourcing script
bootstrap=${KAFKA_BOOTSTRAP:-kafka:9092}
client_args=()
if [ -n "${KAFKA_ADMIN_PASSWORD:-}" ]; then
  client_config=/tmp/admin-client.properties
  ( umask 077
    cat >"$client_config" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="kafka-admin" password="${KAFKA_ADMIN_PASSWORD}";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka-tls/ca.crt
PROPS
  )
  client_args=(--command-config "$client_config")
fi
