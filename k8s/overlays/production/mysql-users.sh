#!/bin/bash
# Production: one MySQL user per service (mysql-grants.txt), TLS required.
#   mysql-users.sh users   creates the users and sets their passwords, and
#                          gives the migrator its rights (before migrating);
#   mysql-users.sh grants  gives each service exactly its grants: everything
#                          else is revoked first (after migrating: MySQL
#                          grants on a table only once it exists).
# Runs as root over TLS with the server certificate verified.
set -euo pipefail
spec=/etc/db-setup/mysql-grants.txt
mysql_root() {
  MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql -h mysql -u root --ssl-mode=VERIFY_IDENTITY \
    --ssl-ca=/etc/gateway/mysql-ca/ca.crt --batch "$@"
}
users=$(grep -v '^#' "$spec" | awk 'NF { print $1 }' | sort -u)
case "${1:-}" in
  users)
    for user in $users; do
      var="$(echo "$user" | tr 'a-z-' 'A-Z_')_PASSWORD"
      password=${!var:-}
      case "$password" in
        "" | *REPLACE_ME* | *"'"*) echo "$var is not set, a placeholder, or holds a quote (mysql-users Secret)" >&2; exit 1 ;;
      esac
      mysql_root -e "CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$password' REQUIRE SSL;
                     ALTER USER '$user'@'%' IDENTIFIED BY '$password' REQUIRE SSL;"
      echo "user $user"
    done
    mysql_root -e "GRANT ALL ON gateway.* TO 'migrator'@'%';"
    ;;
  grants)
    for user in $users; do
      [ "$user" = migrator ] && continue
      mysql_root -e "REVOKE ALL PRIVILEGES, GRANT OPTION FROM '$user'@'%';"
    done
    grep -v '^#' "$spec" | while read -r user privileges table; do
      if [ -z "$user" ] || [ "$user" = migrator ]; then continue; fi
      mysql_root -e "GRANT ${privileges//,/, } ON gateway.\`$table\` TO '$user'@'%';"
      echo "GRANT $privileges ON gateway.$table TO $user"
    done
    ;;
  *) echo "usage: mysql-users.sh users|grants" >&2; exit 2 ;;
esac
