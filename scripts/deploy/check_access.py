#!/usr/bin/env python3
"""Least privilege, as rendered: checks the production overlay
(`kubectl kustomize k8s/overlays/production`) against the intended access
matrix. The local broker cannot enforce ACLs, so this is where they are
proven:

    check_access.py RENDERED.yaml MIGRATIONS_DIR

- each service's Kafka ACLs (kafka-acls.txt in the kafka-config ConfigMap)
  are exactly the intended set, and the broker denies what no ACL allows;
- each service's MySQL grants (mysql-grants.txt in the db-setup ConfigMap)
  are exactly the intended set, and every table the migrations create is
  granted to some service (a new table needs a decision here);
- each service Deployment connects as its own Kafka user over SASL_SSL with
  SCRAM-SHA-512, and as its own MySQL user with TLS verified
  (ssl-mode=VERIFY_IDENTITY), both from Secrets, and skips migrations;
- the db-setup Job migrates as the migrator; the CVV key rotation runs
  every 15 minutes and may touch the `cvv-keys` Secret only (and create).
Exits non-zero with one line per problem.
"""
import glob
import os
import re
import sys

import yaml

SERVICES = ("api", "processor", "dashboard", "notifier")

INTENDED_ACLS = {
    ("User:api", "Write", "Topic", "transactions", "LITERAL"),
    ("User:api", "Describe", "Topic", "transactions", "LITERAL"),
    ("User:api", "Read", "Topic", "transactions_result", "LITERAL"),
    ("User:api", "Describe", "Topic", "transactions_result", "LITERAL"),
    ("User:api", "Describe", "Group", "transaction-api-decision-waits", "LITERAL"),
    ("User:processor", "Read", "Topic", "transactions", "LITERAL"),
    ("User:processor", "Describe", "Topic", "transactions", "LITERAL"),
    ("User:processor", "Write", "Topic", "transactions_result", "LITERAL"),
    ("User:processor", "Describe", "Topic", "transactions_result", "LITERAL"),
    ("User:processor", "Write", "Topic", "transactions_dlq", "LITERAL"),
    ("User:processor", "Describe", "Topic", "transactions_dlq", "LITERAL"),
    ("User:processor", "Read", "Group", "transaction-processor", "LITERAL"),
    ("User:dashboard", "Read", "Topic", "transactions_result", "LITERAL"),
    ("User:dashboard", "Describe", "Topic", "transactions_result", "LITERAL"),
    ("User:dashboard", "Read", "Group", "dashboard-", "PREFIXED"),
    ("User:notifier", "Read", "Topic", "transactions_result", "LITERAL"),
    ("User:notifier", "Describe", "Topic", "transactions_result", "LITERAL"),
    ("User:notifier", "Read", "Group", "webhook-notifier", "LITERAL"),
}

INTENDED_GRANTS = {
    "migrator": {"*": {"ALL"}},
    "api": {
        "accounts": {"SELECT", "INSERT", "UPDATE"},
        "accepted_transactions": {"SELECT", "INSERT", "UPDATE", "DELETE"},
        "idempotency_keys": {"SELECT", "INSERT", "UPDATE", "DELETE"},
        "transactions": {"SELECT"},
        "webhook_endpoints": {"SELECT", "INSERT", "UPDATE"},
        "webhook_deliveries": {"SELECT", "UPDATE"},
        "webhook_attempts": {"SELECT"},
        "_sqlx_migrations": {"SELECT"},
    },
    "processor": {"transactions": {"SELECT", "INSERT"}, "_sqlx_migrations": {"SELECT"}},
    "dashboard": {
        "accounts": {"SELECT"},
        # The failing-endpoints panel (store/src/webhook_health.rs).
        "webhook_endpoints": {"SELECT"},
        "webhook_deliveries": {"SELECT"},
        "_sqlx_migrations": {"SELECT"},
    },
    "notifier": {
        "webhook_endpoints": {"SELECT", "UPDATE"},
        "webhook_deliveries": {"SELECT", "INSERT", "UPDATE"},
        "webhook_attempts": {"INSERT"},
        "_sqlx_migrations": {"SELECT"},
    },
}

problems = []


def problem(msg):
    problems.append(msg)


def spec_lines(text):
    return [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def find(docs, kind, name):
    # Generated ConfigMaps carry a content hash suffix.
    def named(o):
        n = o["metadata"]["name"]
        return n == name or (kind == "ConfigMap" and re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", n))
    return next((o for o in docs if o["kind"] == kind and named(o)), None)


def secret_data(docs, name):
    o = find(docs, "Secret", name) or {}
    return {**(o.get("data") or {}), **(o.get("stringData") or {})}


def properties(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def check_kafka(docs):
    cm = find(docs, "ConfigMap", "kafka-config")
    if not cm:
        return problem("no ConfigMap kafka-config")
    data = cm.get("data", {})
    rows = spec_lines(data.get("kafka-acls.txt", ""))
    acls = set()
    for r in rows:
        if len(r) != 5:
            problem(f"kafka-acls.txt: malformed line {' '.join(r)}")
        else:
            acls.add(tuple(r))
    for extra in sorted(acls - INTENDED_ACLS):
        problem(f"Kafka ACL beyond the intended matrix: {' '.join(extra)}")
    for missing in sorted(INTENDED_ACLS - acls):
        problem(f"Kafka ACL missing: {' '.join(missing)}")
    if "kafka-access.sh" not in data:
        problem("kafka-config has no kafka-access.sh (the ACLs would never be applied)")
    props = properties(data.get("server.properties", ""))
    expect = {
        "listeners": "SASL_SSL://:9092,CONTROLLER://:9093",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
    }
    for k, v in expect.items():
        if props.get(k) != v:
            problem(f"server.properties: {k}={props.get(k)!r}, expected {v!r}")
    supers = set(props.get("super.users", "").split(";"))
    if supers & {f"User:{s}" for s in SERVICES}:
        problem(f"a service is a Kafka super user: {supers}")
    kafka = find(docs, "StatefulSet", "kafka")
    env = {e["name"]: e for e in kafka["spec"]["template"]["spec"]["containers"][0].get("env", [])} if kafka else {}
    if env.get("KAFKA_LISTENER_PROTOCOL", {}).get("value") != "SASL_SSL":
        problem("StatefulSet/kafka: KAFKA_LISTENER_PROTOCOL is not SASL_SSL")
    job = find(docs, "Job", "kafka-topics")
    if job:
        c = job["spec"]["template"]["spec"]["containers"][0]
        if "kafka-access.sh" not in " ".join(c.get("command", [])):
            problem("Job/kafka-topics does not run kafka-access.sh")
        names = {e["name"] for e in c.get("env", [])}
        for s in SERVICES:
            if f"{s.upper()}_PASSWORD" not in names:
                problem(f"Job/kafka-topics: no {s.upper()}_PASSWORD for the {s} SCRAM user")


def check_mysql(docs, migrations):
    cm = find(docs, "ConfigMap", "db-setup")
    if not cm:
        return problem("no ConfigMap db-setup")
    grants = {}
    for r in spec_lines(cm.get("data", {}).get("mysql-grants.txt", "")):
        if len(r) != 3:
            problem(f"mysql-grants.txt: malformed line {' '.join(r)}")
            continue
        user, privileges, table = r
        grants.setdefault(user, {}).setdefault(table, set()).update(privileges.split(","))
    if grants != INTENDED_GRANTS:
        for user in sorted(set(grants) | set(INTENDED_GRANTS)):
            if grants.get(user) != INTENDED_GRANTS.get(user):
                problem(f"MySQL grants of {user}: {grants.get(user)} != intended {INTENDED_GRANTS.get(user)}")
    tables = set()
    for f in glob.glob(os.path.join(migrations, "*.sql")):
        tables |= set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?`?(\w+)", open(f).read(), re.I))
    granted = {t for u, ts in grants.items() if u != "migrator" for t in ts}
    for t in sorted(tables - granted):
        problem(f"table {t} (migrations) is granted to no service")
    for t in sorted(granted - tables - {"_sqlx_migrations"}):
        problem(f"grant on {t}, which no migration creates")
    job = find(docs, "Job", "db-setup")
    if not job:
        return problem("no Job db-setup (migrations as a one-off job)")
    spec = job["spec"]["template"]["spec"]
    steps = [(c["name"], c) for c in spec.get("initContainers", []) + spec.get("containers", [])]
    if [n for n, _ in steps] != ["users", "migrate", "grants"]:
        problem(f"Job/db-setup steps {[n for n, _ in steps]} are not users, migrate, grants")
    migrate = dict(steps).get("migrate", {})
    env = {e["name"]: e for e in migrate.get("env", [])}
    ref = env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
    if migrate.get("args") != ["migrate"] or ref.get("key") != "MIGRATOR_DATABASE_URL":
        problem("Job/db-setup: the migrate step does not run `api migrate` as the migrator")


def check_services(docs):
    urls = secret_data(docs, "gateway-database-urls")
    for s in SERVICES:
        d = find(docs, "Deployment", s)
        if not d:
            problem(f"no Deployment/{s}")
            continue
        c = d["spec"]["template"]["spec"]["containers"][0]
        env_list = c.get("env", [])
        env = {e["name"]: e for e in env_list}
        if env.get("RUN_MIGRATIONS", {}).get("value") != "false":
            problem(f"Deployment/{s}: RUN_MIGRATIONS is not false (it would need DDL rights)")
        opts = dict(o.split("=", 1) for o in env.get("KAFKA_OPTIONS", {}).get("value", "").split(";") if "=" in o)
        want = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": s,
                "sasl.password": "$(KAFKA_PASSWORD)"}
        for k, v in want.items():
            if opts.get(k) != v:
                problem(f"Deployment/{s}: KAFKA_OPTIONS {k}={opts.get(k)!r}, expected {v!r}")
        pw = env.get("KAFKA_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {})
        if (pw.get("name"), pw.get("key")) != ("kafka-users", f"{s.upper()}_PASSWORD"):
            problem(f"Deployment/{s}: KAFKA_PASSWORD is not its own from Secret kafka-users")
        names = [e["name"] for e in env_list]
        if "KAFKA_PASSWORD" in names and "KAFKA_OPTIONS" in names and names.index("KAFKA_PASSWORD") > names.index("KAFKA_OPTIONS"):
            problem(f"Deployment/{s}: KAFKA_PASSWORD comes after KAFKA_OPTIONS ($(...) would not expand)")
        ref = env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
        if (ref.get("name"), ref.get("key")) != ("gateway-database-urls", f"{s.upper()}_DATABASE_URL"):
            problem(f"Deployment/{s}: DATABASE_URL is not its own from Secret gateway-database-urls")
        url = urls.get(f"{s.upper()}_DATABASE_URL", "")
        if not url.startswith(f"mysql://{s}:") or "ssl-mode=VERIFY_IDENTITY" not in url:
            problem(f"gateway-database-urls {s.upper()}_DATABASE_URL: not user {s} with ssl-mode=VERIFY_IDENTITY")


def check_cvv_rotation(docs):
    cron = find(docs, "CronJob", "cvv-key-rotation")
    if not cron:
        return problem("no CronJob cvv-key-rotation (the CVV keys would never be destroyed)")
    if cron["spec"].get("schedule") != "*/15 * * * *":
        problem(f"CronJob/cvv-key-rotation: schedule {cron['spec'].get('schedule')} is not the 15-minute period")
    if cron["spec"].get("concurrencyPolicy") != "Forbid":
        problem("CronJob/cvv-key-rotation: concurrent runs allowed")
    role = find(docs, "Role", "cvv-key-rotation")
    rules = [(tuple(r.get("resources", [])), tuple(r.get("resourceNames", [])), tuple(sorted(r.get("verbs", []))))
             for r in (role or {}).get("rules", [])]
    if sorted(rules) != sorted([(("secrets",), ("cvv-keys",), ("get", "update")), (("secrets",), (), ("create",))]):
        problem(f"Role/cvv-key-rotation: rules {rules} are not get/update of cvv-keys and create")


def main():
    rendered, migrations = sys.argv[1], sys.argv[2]
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    check_kafka(docs)
    check_mysql(docs, migrations)
    check_services(docs)
    check_cvv_rotation(docs)
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"{len(INTENDED_ACLS)} Kafka ACLs, {sum(len(t) for t in INTENDED_GRANTS.values())} MySQL grants as intended")


if __name__ == "__main__":
    main()
