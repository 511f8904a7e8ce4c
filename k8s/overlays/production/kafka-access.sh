#!/bin/bash
# Production: the services' SCRAM users and their ACLs (kafka-acls.txt),
# run by the kafka-topics Job after the topics exist, as the kafka-admin
# super user. Idempotent: passwords are set again, ACLs added again. An ACL
# removed from kafka-acls.txt must also be removed by hand
# (kafka-acls.sh --remove), since this Job only adds.
set -euo pipefail
# shellcheck source=k8s/base/kafka/client.sh
. /etc/kafka-template/client.sh
bin=/opt/kafka/bin
spec=/etc/kafka-template/kafka-acls.txt
users=$(grep -v '^#' "$spec" | awk 'NF { sub(/^User:/, "", $1); print $1 }' | sort -u)
for user in $users; do
  var="$(echo "$user" | tr 'a-z-' 'A-Z_')_PASSWORD"
  password=${!var:-}
  case "$password" in
    "" | *REPLACE_ME*) echo "$var is not set, or still a placeholder (kafka-users Secret)" >&2; exit 1 ;;
  esac
  "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" "${client_args[@]}" --alter \
    --entity-type users --entity-name "$user" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=${password}]" >/dev/null
  echo "SCRAM-SHA-512 credentials set for $user"
done
grep -v '^#' "$spec" | while read -r principal operation resource name pattern; do
  [ -n "$principal" ] || continue
  case "$resource" in
    Topic) target=(--topic "$name") ;;
    Group) target=(--group "$name") ;;
    *) echo "unknown resource type $resource" >&2; exit 1 ;;
  esac
  "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" "${client_args[@]}" --add \
    --allow-principal "$principal" --operation "$operation" "${target[@]}" \
    --resource-pattern-type "${pattern,,}" >/dev/null
  echo "ACL: $principal $operation $resource $name ($pattern)"
done
