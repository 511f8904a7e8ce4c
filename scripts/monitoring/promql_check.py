#!/usr/bin/env python3
"""Evaluates every PromQL expression of the Grafana dashboards and the rule
files against a running Prometheus, and fails on any that errors or returns
no data.

    promql_check.py --prometheus http://127.0.0.1:9090 --rules prometheus/alerts.yml \
        --dashboards grafana/dashboards [--rate-interval 1m]
    promql_check.py --self-test

What is evaluated:
- dashboard targets: the whole expression, after replacing Grafana's
  variables ($__rate_interval, $__interval, $__range, ...) with concrete
  durations. An unknown variable is an error: the test must learn its value.
- recording rules: the expression as written.
- alert rules: an alert expression is a condition, empty when all is well.
  It is split at its top-level comparison and set operators (`== != > < >= <=`,
  `and`, `unless`, `or`, with their `bool`/`on()`/`ignoring()`/`group_*`
  modifiers) into the queries it compares; each query that selects a metric
  is evaluated and must return data (constants such as `0.01` or `vector(0)`
  are skipped; `absent(x)` is checked as `x`). Arithmetic (`a / b`) is not
  split: a ratio is one query.
Also fails on a NaN-only result (a ratio or quantile over no traffic shows
nothing on a panel either).
"""

import argparse
import json
import math
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import yaml

# ------------------------------------------------------------------ parsing

_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_MODIFIER = re.compile(r"^\s*(bool|on|ignoring|group_left|group_right)\b\s*(\([^()]*\))?", re.I)
_CONSTANT = re.compile(r"^(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|vector\(\s*[-+]?[\d.]+\s*\)|time\(\s*\))$", re.I)
# Lowest precedence first: PromQL's `or` < `and`/`unless` < comparisons.
_LEVELS = [("or",), ("and", "unless"), ("==", "!=", ">=", "<=", ">", "<")]


def _top_level_operators(expr):
    """(start, end, op) of every operator outside (), [], {} and strings."""
    ops, depth, i, n = [], 0, 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" and c != "`" else 1
            i = j + 1
            continue
        if c == "#":  # comment to end of line
            while i < n and expr[i] != "\n":
                i += 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            two = expr[i:i + 2]
            if two in ("==", "!=", ">=", "<="):
                ops.append((i, i + 2, two))
                i += 2
                continue
            if c in "<>":
                ops.append((i, i + 1, c))
            elif _IDENT.match(c) and (i == 0 or not re.match(r"[A-Za-z0-9_:.]", expr[i - 1])):
                word = _IDENT.match(expr, i).group(0)
                if word.lower() in ("and", "or", "unless"):
                    ops.append((i, i + len(word), word.lower()))
                i += len(word)
                continue
        i += 1
    if depth != 0:
        raise ValueError(f"unbalanced brackets in {expr!r}")
    return ops


def _strip(expr):
    """Without surrounding whitespace, leading operator modifiers, and
    parentheses that enclose the whole expression."""
    expr = expr.strip()
    while True:
        m = _MODIFIER.match(expr)
        if not m:
            break
        expr = expr[m.end():].strip()
    while expr.startswith("(") and _closing(expr, 0) == len(expr) - 1:
        expr = expr[1:-1].strip()
    return expr


def _closing(expr, start):
    depth = 0
    for i in range(start, len(expr)):
        if expr[i] in "([{":
            depth += 1
        elif expr[i] in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def underlying_queries(expr):
    """The queries an alert condition compares, without the comparisons."""
    expr = _strip(expr)
    ops = _top_level_operators(expr)
    for level in _LEVELS:
        cuts = [(s, e) for s, e, op in ops if op in level]
        if cuts:
            parts, last = [], 0
            for s, e in cuts:
                parts.append(expr[last:s])
                last = e
            parts.append(expr[last:])
            out = []
            for p in parts:
                out.extend(underlying_queries(p))
            return out
    if not expr:
        raise ValueError("empty operand")
    if _CONSTANT.match(expr):
        return []
    m = re.match(r"^absent(?:_over_time)?\s*\((.*)\)$", expr, re.S)
    if m:
        return underlying_queries(m.group(1))
    return [expr]


# ---------------------------------------------------- Grafana variables

def grafana_variables(rate_interval, interval):
    seconds = _seconds(rate_interval)
    return {
        "__rate_interval": rate_interval,
        "__rate_interval_ms": str(seconds * 1000),
        "__interval": interval,
        "__interval_ms": str(_seconds(interval) * 1000),
        "__range": rate_interval,
        "__range_s": str(seconds),
        "__range_ms": str(seconds * 1000),
        "interval": interval,
    }


def _seconds(duration):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration)
    if not m:
        raise ValueError(f"duration {duration!r}: use e.g. 30s, 1m")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def substitute(expr, variables):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        name = name.split(":")[0]  # ${var:format}
        if name not in variables:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r} (add it with --var {name}=VALUE)")
        return variables[name]
    return re.sub(r"\$\{([A-Za-z0-9_:.]+)\}|\[\[([A-Za-z0-9_]+)\]\]|\$([A-Za-z_][A-Za-z0-9_]*)", repl, expr)


# -------------------------------------------------------------- extraction

def dashboard_expressions(directory):
    """(where, expr) of every target of every panel, rows included."""
    found = []
    files = sorted(f for f in os.listdir(directory) if f.endswith(".json"))
    if not files:
        raise SystemExit(f"no dashboard JSON in {directory}")

    def walk(panels, path):
        for p in panels or []:
            title = p.get("title", "?")
            for t in p.get("targets", []) or []:
                if t.get("expr"):
                    found.append((f"{path} / {title} [{t.get('refId', '?')}]", t["expr"]))
                elif t.get("hide") is not True and p.get("type") != "row":
                    raise SystemExit(f"{path} / {title}: a target without expr (not PromQL?)")
            walk(p.get("panels"), path)

    for f in files:
        with open(os.path.join(directory, f)) as fh:
            dash = json.load(fh)
        walk(dash.get("panels"), f)
        for v in dash.get("templating", {}).get("list", []):
            q = v.get("query")
            if isinstance(q, dict):
                q = q.get("query")
            if v.get("type") == "query" and q:
                found.append((f"{f} / variable {v.get('name')}", q))
    return found


def rule_expressions(paths):
    """(where, kind, expr) of every rule."""
    found = []
    for path in paths:
        with open(path) as fh:
            doc = yaml.safe_load(fh)
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                if "alert" in r:
                    found.append((f"{os.path.basename(path)} / alert {r['alert']}", "alert", r["expr"]))
                else:
                    found.append((f"{os.path.basename(path)} / record {r['record']}", "record", r["expr"]))
    return found


# --------------------------------------------------------------- evaluation

def query(prometheus, expr):
    url = prometheus.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.loads(e.read() or b"{}")
    if body.get("status") != "success":
        return None, f"error: {body.get('errorType')}: {body.get('error')}"
    data = body["data"]
    if data["resultType"] == "scalar":
        values = [data["result"][1]]
    elif data["resultType"] == "vector":
        values = [s["value"][1] for s in data["result"]]
    else:
        return None, f"unexpected result type {data['resultType']}"
    if not values:
        return None, "no data"
    if all(math.isnan(float(v)) for v in values):
        return None, "only NaN"
    return values, None


def quiet(prometheus):
    """No alert pending or firing: the traffic is healthy, so one that is
    would page on a healthy system."""
    url = prometheus.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": "ALERTS"})
    with urllib.request.urlopen(url, timeout=10) as r:
        alerts = json.load(r)["data"]["result"]
    for a in alerts:
        m = a["metric"]
        print(f"FAIL alert {m.get('alertname')} is {m.get('alertstate')} on healthy traffic: {m}")
    return not alerts


def check(prometheus, rules, dashboards, variables, verbose, positive=()):
    checks = []
    for where, expr in dashboard_expressions(dashboards):
        checks.append((where, substitute(expr, variables)))
    for where, kind, expr in rule_expressions(rules):
        if kind == "record":
            checks.append((where, expr))
        else:
            parts = underlying_queries(expr)
            if not parts:
                print(f"FAIL {where}: no query found in {expr!r}")
                checks.append((where, None))
            for i, part in enumerate(parts):
                checks.append((f"{where} (query {i + 1}/{len(parts)})", part))
    failures = 0
    for where, expr in checks:
        if expr is None:
            failures += 1
            continue
        values, error = query(prometheus, expr)
        one_line = " ".join(expr.split())
        if error:
            failures += 1
            print(f"FAIL {where}: {error}\n     {one_line}")
        elif verbose:
            shown = ", ".join(values[:3]) + (" ..." if len(values) > 3 else "")
            print(f"ok   {where}: {len(values)} series [{shown}]\n     {one_line}")
    print(f"promql_check: {len(checks) - failures}/{len(checks)} expressions returned data")
    # Data alone can be all zeros: these must also be above zero somewhere.
    for expr in positive:
        values, error = query(prometheus, expr)
        if error or not any(float(v) > 0 for v in values):
            failures += 1
            print(f"FAIL expected > 0: {expr}: {error or values}")
        elif verbose:
            print(f"ok   > 0: {expr}: {values[:3]}")
    return failures == 0


# ---------------------------------------------------------------- self-test

def self_test():
    cases = {
        "up == 0": ["up"],
        'sum(rate(a_total{status=~"5.."}[5m])) / sum(rate(a_total[5m])) > 0.01':
            ['sum(rate(a_total{status=~"5.."}[5m])) / sum(rate(a_total[5m]))'],
        "(sum(rate(x[10m])) or on() vector(0)) == 0 and on() (sum(rate(y[10m])) > 0 or on() sum(z) > 0)":
            ["sum(rate(x[10m]))", "sum(rate(y[10m]))", "sum(z)"],
        "lag > 5000 and deriv(lag[10m]) > 0": ["lag", "deriv(lag[10m])"],
        "r10m > 0.25 and r10m > 2 * r1d and on() sum(rate(t[10m])) > 1":
            ["r10m", "r10m", "2 * r1d", "sum(rate(t[10m]))"],
        "absent(up{job=\"api\"})": ['up{job="api"}'],
        "a >= bool 3": ["a"],
        'x{l=">"} > ignoring(instance) group_left(version) y': ['x{l=">"}', "y"],
        "sum by (instance) (rate(order_total[5m])) > 0": ["sum by (instance) (rate(order_total[5m]))"],
        "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m]))) > 0.5":
            ["histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))"],
        "metric_unless_x unless on(job) other < 1": ["metric_unless_x", "other"],
    }
    bad = 0
    for expr, want in cases.items():
        got = underlying_queries(expr)
        if got != want:
            bad += 1
            print(f"self-test FAIL: {expr!r}\n  want {want}\n  got  {got}")
    v = grafana_variables("1m", "15s")
    if substitute("rate(x[$__rate_interval]) + rate(y[${__interval}])", v) != "rate(x[1m]) + rate(y[15s])":
        bad += 1
        print("self-test FAIL: substitution")
    try:
        substitute("rate(x[$unknown])", v)
        bad += 1
        print("self-test FAIL: an unknown variable must be an error")
    except KeyError:
        pass
    print(f"promql_check self-test: {len(cases) + 2 - bad}/{len(cases) + 2} passed")
    return bad == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prometheus")
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--dashboards")
    ap.add_argument("--rate-interval", default="1m", help="value of $__rate_interval and $__range")
    ap.add_argument("--interval", default="15s", help="value of $__interval and $interval")
    ap.add_argument("--var", action="append", default=[], help="NAME=VALUE for another dashboard variable")
    ap.add_argument("--positive", action="append", default=[], help="an expression that must be above zero")
    ap.add_argument("--quiet-alerts", action="store_true", help="fail if any alert is pending or firing")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        sys.exit(0 if self_test() else 1)
    if not (a.prometheus and a.rules and a.dashboards):
        ap.error("--prometheus, --rules and --dashboards are required")
    variables = grafana_variables(a.rate_interval, a.interval)
    for kv in a.var:
        k, _, v = kv.partition("=")
        variables[k] = v
    try:
        ok = check(a.prometheus, a.rules, a.dashboards, variables, a.verbose, a.positive)
        if a.quiet_alerts:
            ok = quiet(a.prometheus) and ok
    except (KeyError, ValueError) as e:
        print(f"promql_check: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
