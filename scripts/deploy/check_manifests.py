#!/usr/bin/env python3
"""Checks a rendered Kubernetes overlay (`kubectl kustomize DIR`) for what
the schema cannot: the gateway's deployment rules.

    check_manifests.py RENDERED.yaml [...]

- every pod (Deployment, StatefulSet, Job; init containers too): runAsNonRoot,
  seccomp RuntimeDefault, no service-account token; every container:
  readOnlyRootFilesystem, allowPrivilegeEscalation false, drop ALL
  capabilities, cpu and memory requests and limits, an image with a pinned tag;
- processor, api, dashboard: readiness probe on /readyz, liveness on /healthz,
  secrets from Secrets (never literal values in env);
- processor replicas <= the partitions the topics Job creates for `transactions`;
- an HPA on the api; PodDisruptionBudgets for api, dashboard, processor, kafka;
- a default-deny NetworkPolicy for ingress and egress; only api and
  dashboard are reachable from outside the namespace, and only they are
  Ingress backends; no Service of type LoadBalancer/NodePort for anything else;
- every ConfigMap, Secret and PVC a pod names exists in the render (or is a
  StatefulSet volumeClaimTemplate); every Service selects some pod; each
  service has a headless `<name>-pods` Service listing unready pods too, for
  Prometheus;
- Secrets hold placeholders only (REPLACE_ME) for passwords, tokens, keys and URLs.
Exits non-zero with one line per problem.
"""

import sys

import yaml

SERVICES = {"processor": 9101, "api": 8080, "dashboard": 8081, "notifier": 9102}
PUBLIC = {"api", "dashboard"}
SECRET_WORDS = ("PASSWORD", "TOKEN", "KEY", "URL")
# The only pods that talk to the Kubernetes API (each with a Role scoped to
# what it rewrites), and the Secrets they create rather than the render.
API_CLIENTS = {"CronJob/cvv-key-rotation"}
RUNTIME_SECRETS = {"cvv-keys"}

problems = []


def problem(msg):
    problems.append(msg)


def load(paths):
    docs = []
    for p in paths:
        with open(p) as f:
            docs.extend(d for d in yaml.safe_load_all(f) if d)
    return docs


def name(o):
    return f"{o['kind']}/{o['metadata']['name']}"


def pod_templates(docs):
    for o in docs:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
            yield o, o["spec"]["template"]
        elif o["kind"] == "Job":
            yield o, o["spec"]["template"]
        elif o["kind"] == "CronJob":
            yield o, o["spec"]["jobTemplate"]["spec"]["template"]


def check_pods(docs):
    for owner, tpl in pod_templates(docs):
        where = name(owner)
        spec = tpl["spec"]
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problem(f"{where}: pod securityContext.runAsNonRoot is not true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(f"{where}: pod seccompProfile is not RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False and where not in API_CLIENTS:
            problem(f"{where}: automountServiceAccountToken is not false (nothing here talks to the Kubernetes API)")
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problem(f"{cw}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problem(f"{cw}: allowPrivilegeEscalation is not false")
            if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
                problem(f"{cw}: capabilities do not drop ALL")
            if sc.get("privileged"):
                problem(f"{cw}: privileged")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(kind) or {}):
                        problem(f"{cw}: no {kind}.{r}")
            image = c.get("image", "")
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if not tag or tag == "latest":
                problem(f"{cw}: image {image!r} has no pinned tag")
        app = tpl["metadata"].get("labels", {}).get("app.kubernetes.io/name")
        if app in SERVICES and owner["kind"] == "Deployment":
            c = spec["containers"][0]
            rp = (c.get("readinessProbe") or {}).get("httpGet", {}).get("path")
            lp = (c.get("livenessProbe") or {}).get("httpGet", {}).get("path")
            if rp != "/readyz":
                problem(f"{where}: readinessProbe is not GET /readyz ({rp})")
            if lp != "/healthz":
                problem(f"{where}: livenessProbe is not GET /healthz ({lp})")
            env = {e["name"]: e for e in c.get("env", [])}
            if "HTTP_ADDR" not in env or not env["HTTP_ADDR"].get("value", "").startswith("0.0.0.0:"):
                problem(f"{where}: HTTP_ADDR must listen on 0.0.0.0 (the default is loopback)")
            elif env["HTTP_ADDR"]["value"] != f"0.0.0.0:{SERVICES[app]}":
                problem(f"{where}: HTTP_ADDR {env['HTTP_ADDR']['value']} is not port {SERVICES[app]}")
            for n, e in env.items():
                # A *_FILE variable is the path of a mounted Secret, not a secret.
                if any(w in n for w in SECRET_WORDS) and n != "HTTP_ADDR" and not n.endswith("_FILE") and "value" in e:
                    problem(f"{where}: {n} is a literal; take it from a Secret")


def check_scaling(docs):
    by = {name(o): o for o in docs}
    partitions = None
    for o in docs:
        if o["kind"] == "Job" and o["metadata"]["name"] == "kafka-topics":
            for c in o["spec"]["template"]["spec"]["containers"]:
                for e in c.get("env", []):
                    if e["name"] == "TRANSACTIONS_PARTITIONS":
                        partitions = int(e["value"])
    if partitions is None:
        problem("Job/kafka-topics: no TRANSACTIONS_PARTITIONS (explicit partition count)")
    proc = by.get("Deployment/processor")
    if not proc:
        problem("no Deployment/processor")
    elif partitions is not None and proc["spec"].get("replicas", 1) > partitions:
        problem(f"Deployment/processor: {proc['spec']['replicas']} replicas > {partitions} partitions (the rest would idle)")
    hpa = [o for o in docs if o["kind"] == "HorizontalPodAutoscaler"
           and o["spec"]["scaleTargetRef"]["name"] == "api" and o["spec"]["scaleTargetRef"]["kind"] == "Deployment"]
    if not hpa:
        problem("no HorizontalPodAutoscaler for Deployment/api")
    elif "replicas" in by.get("Deployment/api", {}).get("spec", {}):
        problem("Deployment/api sets replicas although an HPA owns them (every apply would reset the scale)")
    pdbs = {tuple(sorted(o["spec"]["selector"].get("matchLabels", {}).items())) for o in docs
            if o["kind"] == "PodDisruptionBudget"}
    for app in ("api", "dashboard", "processor", "kafka"):
        if (("app.kubernetes.io/name", app),) not in pdbs:
            problem(f"no PodDisruptionBudget selecting app.kubernetes.io/name={app}")


def check_network(docs):
    nps = [o for o in docs if o["kind"] == "NetworkPolicy"]
    deny = [n for n in nps if n["spec"].get("podSelector") == {}
            and set(n["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not n["spec"].get("ingress") and not n["spec"].get("egress")]
    if not deny:
        problem("no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)")
    for n in nps:
        target = n["spec"].get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
        for rule in n["spec"].get("ingress", []) or []:
            for peer in rule.get("from", []) or [{}]:
                outside = "namespaceSelector" in peer or "ipBlock" in peer or not peer
                if outside and target not in PUBLIC:
                    problem(f"{name(n)}: lets traffic from outside the namespace reach {target or 'every pod'}")
    for o in docs:
        if o["kind"] == "Service" and o["spec"].get("type") in ("LoadBalancer", "NodePort"):
            if o["spec"].get("selector", {}).get("app.kubernetes.io/name") not in PUBLIC:
                problem(f"{name(o)}: exposed as {o['spec']['type']}")
        if o["kind"] == "Ingress":
            for r in o["spec"].get("rules", []):
                for p in r.get("http", {}).get("paths", []):
                    svc = p["backend"]["service"]["name"]
                    if svc not in PUBLIC:
                        problem(f"{name(o)}: routes to {svc}, which must stay internal")


def check_references(docs):
    have = {(o["kind"], o["metadata"]["name"]) for o in docs}
    labels = [tpl["metadata"].get("labels", {}) for _, tpl in pod_templates(docs)]
    for owner, tpl in pod_templates(docs):
        where = name(owner)
        spec = tpl["spec"]
        claims = {t["metadata"]["name"] for t in owner["spec"].get("volumeClaimTemplates", [])}
        for v in spec.get("volumes", []):
            if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in have:
                problem(f"{where}: volume {v['name']} names missing ConfigMap {v['configMap']['name']}")
            if ("secret" in v and ("Secret", v["secret"]["secretName"]) not in have
                    and v["secret"]["secretName"] not in RUNTIME_SECRETS):
                problem(f"{where}: volume {v['name']} names missing Secret {v['secret']['secretName']}")
            if "persistentVolumeClaim" in v and ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) not in have:
                problem(f"{where}: volume {v['name']} names missing PVC")
        mounts = {v["name"] for v in spec.get("volumes", [])} | claims
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            for m in c.get("volumeMounts", []):
                if m["name"] not in mounts:
                    problem(f"{where} container {c['name']}: mounts undefined volume {m['name']}")
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    if key in ref and (kind, ref[key]["name"]) not in have:
                        problem(f"{where}: env {e['name']} names missing {kind} {ref[key]['name']}")
                    elif key in ref:
                        obj = next(o for o in docs if o["kind"] == kind and o["metadata"]["name"] == ref[key]["name"])
                        data = {**(obj.get("data") or {}), **(obj.get("stringData") or {})}
                        if ref[key]["key"] not in data:
                            problem(f"{where}: env {e['name']}: {kind} {ref[key]['name']} has no key {ref[key]['key']}")
            for ef in c.get("envFrom", []):
                for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                    if key in ef and (kind, ef[key]["name"]) not in have:
                        problem(f"{where}: envFrom names missing {kind} {ef[key]['name']}")
    for app in SERVICES:
        scrape = [o for o in docs if o["kind"] == "Service" and o["metadata"]["name"] == f"{app}-pods"]
        if not scrape:
            problem(f"no headless Service {app}-pods for Prometheus to find every {app} pod")
        elif scrape[0]["spec"].get("publishNotReadyAddresses") is not True:
            problem(f"Service/{app}-pods: unready pods would not be scraped (publishNotReadyAddresses)")
    for o in docs:
        if o["kind"] == "Service":
            sel = o["spec"].get("selector", {})
            if not any(all(l.get(k) == v for k, v in sel.items()) for l in labels):
                problem(f"{name(o)}: selector {sel} matches no pod")


def check_secrets(docs):
    for o in docs:
        if o["kind"] != "Secret":
            continue
        if o.get("data"):
            problem(f"{name(o)}: base64 `data` in a committed template; use stringData placeholders")
        for k, v in (o.get("stringData") or {}).items():
            if any(w in k for w in SECRET_WORDS) and "REPLACE_ME" not in str(v):
                problem(f"{name(o)}: {k} holds a value that is not a REPLACE_ME placeholder")


def main():
    docs = load(sys.argv[1:])
    if not docs:
        sys.exit("check_manifests: nothing rendered")
    check_pods(docs)
    check_scaling(docs)
    check_network(docs)
    check_references(docs)
    check_secrets(docs)
    for p in problems:
        print(f"  {p}")
    print(f"check_manifests: {len(docs)} objects, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
