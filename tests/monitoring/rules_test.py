#!/usr/bin/env python3
"""The chart's monitoring objects checked by the real tools (issue 13): promtool from the Go module proxy
(scripts/monitoring-tools/build.sh), helm from scripts/k8s-tools/build.sh.

  - helm lint --strict with every monitoring object on; the default render has none of them (manifests/ unchanged)
  - the PrometheusRule rendered, `promtool check rules`, `promtool test rules` with tests/monitoring/alerts_test.yaml;
    every alert of the rule has a test where it fires (and the file has cases where it must not)
  - every query of the Grafana dashboard parses as PromQL (promtool check rules on recording rules made of them)
  - ServiceMonitor / PodMonitor name ports that exist: the controller Service's, the injected sidecar's
Prints PASS/FAIL lines and "monitoring: N passed, N failed"; exits 1 on any failure.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "../.."))
CHART = os.path.join(REPO, "charts/memha")
ALL_ON = ["--set", "monitoring.serviceMonitor.enabled=true", "--set", "monitoring.podMonitor.enabled=true",
          "--set", "monitoring.prometheusRule.enabled=true", "--set", "monitoring.grafanaDashboard.enabled=true"]
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}

passed = failed = 0


def ok(what, detail=""):
    global passed
    passed += 1
    print(f"PASS: {what}", flush=True)


def bad(what, detail=""):
    global failed
    failed += 1
    print(f"FAIL: {what}", flush=True)
    for line in detail.strip().splitlines()[-30:]:
        print(f"  | {line}")


def finish():
    print(f"monitoring: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and passed > 0 else 1)


def tool_dir(script, *args):
    r = subprocess.run([os.path.join(REPO, script), *args], capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        bad(f"tools from {script}", r.stderr)
        finish()
    return lines[-1]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def render(helm, *args):
    r = run([helm, "template", "memha", CHART, "--namespace", "memha-system", *args])
    if r.returncode != 0:
        bad("helm template " + " ".join(args), r.stderr)
        finish()
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def main():
    promtool = os.path.join(tool_dir("scripts/monitoring-tools/build.sh"), "promtool")
    helm = os.path.join(tool_dir("scripts/k8s-tools/build.sh"), "helm")
    work = tempfile.mkdtemp(prefix="memha-monitoring-test.")
    try:
        check(helm, promtool, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish()


def check(helm, promtool, work):
    r = run([helm, "lint", "--strict", CHART, *ALL_ON])
    (ok if r.returncode == 0 else bad)("helm lint --strict with every monitoring object on", r.stdout + r.stderr)

    default_kinds = {d["kind"] for d in render(helm)}
    dashboards = [d for d in render(helm) if d["kind"] == "ConfigMap" and "grafana_dashboard" in
                  (d["metadata"].get("labels") or {})]
    if default_kinds & MONITORING_KINDS or dashboards:
        bad("default values render no monitoring object", str(default_kinds & MONITORING_KINDS))
    else:
        ok("default values render no monitoring object (manifests/memha.yaml unchanged)")

    docs = render(helm, *ALL_ON)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    # --- PrometheusRule: promtool check rules + test rules
    rules = by_kind.get("PrometheusRule", [])
    if len(rules) != 1:
        bad("one PrometheusRule rendered", f"got {len(rules)}")
        return
    rule_spec = rules[0]["spec"]
    rules_file = os.path.join(work, "rules.yaml")
    with open(rules_file, "w") as f:
        yaml.safe_dump(rule_spec, f, sort_keys=False)
    r = run([promtool, "check", "rules", rules_file])
    (ok if r.returncode == 0 else bad)("promtool check rules (the chart's PrometheusRule)", r.stdout + r.stderr)

    alerts = {rule["alert"]: rule for g in rule_spec["groups"] for rule in g["rules"] if "alert" in rule}
    with open(os.path.join(HERE, "alerts_test.yaml")) as f:
        tests = yaml.safe_load(f)
    fired, quiet = set(), set()
    for t in tests["tests"]:
        for case in t.get("alert_rule_test", []):
            name = case["alertname"]
            if name not in alerts:
                bad(f"alerts_test.yaml names an alert the rule has: {name}")
                continue
            (fired if case.get("exp_alerts") else quiet).add(name)
            for exp in case.get("exp_alerts") or []:  # the static description comes from the rule itself
                desc = alerts[name]["annotations"].get("description")
                if desc is not None and "{{" not in desc:
                    exp.setdefault("exp_annotations", {})["description"] = desc
    for name in sorted(alerts):
        (ok if name in fired else bad)(f"{name}: has a test where it fires")
        (ok if name in quiet else bad)(f"{name}: has a test where it must not fire")
    test_file = os.path.join(work, "alerts_test.yaml")
    with open(test_file, "w") as f:
        yaml.safe_dump(tests, f, sort_keys=False)
    r = run([promtool, "test", "rules", test_file], cwd=work)
    n_cases = sum(len(t.get("alert_rule_test", [])) for t in tests["tests"])
    (ok if r.returncode == 0 else bad)(
        f"promtool test rules: {len(tests['tests'])} tests, {n_cases} evaluations of {len(alerts)} alerts",
        r.stdout + r.stderr)

    # --- Grafana dashboard: a ConfigMap with the sidecar's label; every query is valid PromQL
    cms = [d for d in by_kind.get("ConfigMap", []) if (d["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    if len(cms) != 1:
        bad("one dashboard ConfigMap labelled grafana_dashboard: \"1\"", f"got {len(cms)}")
        return
    ok("dashboard ConfigMap labelled grafana_dashboard: \"1\"")
    try:
        dash = json.loads(cms[0]["data"]["memha.json"])
    except (KeyError, ValueError) as e:
        bad("dashboard JSON parses", str(e))
        return
    exprs = []
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
    # Grafana's variables replaced by what they stand for, then each query made a recording rule.
    subst = lambda e: e.replace("$__rate_interval", "5m").replace("$pool", ".*")
    rec = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": subst(e)} for i, (_, e) in enumerate(exprs)]}]}
    dash_file = os.path.join(work, "dashboard_queries.yaml")
    with open(dash_file, "w") as f:
        yaml.safe_dump(rec, f)
    r = run([promtool, "check", "rules", dash_file])
    (ok if r.returncode == 0 and exprs else bad)(f"dashboard: {len(exprs)} queries parse as PromQL", r.stdout + r.stderr)
    names = set()
    for _, e in exprs:
        names.update(re.findall(r"\b(memha_[a-z_]+)", e))
    known = known_series()
    unknown = sorted(n for n in names if re.sub(r"_(bucket|count|sum)$", "", n) not in known)
    alert_names = set()
    for rule in alerts.values():
        alert_names.update(re.findall(r"\b(memha_[a-z_]+)", rule["expr"]))
    unknown_alerts = sorted(n for n in alert_names if n not in known)
    (ok if not unknown else bad)("dashboard queries name series the binaries export", ", ".join(unknown))
    (ok if not unknown_alerts else bad)("alert expressions name series the binaries export", ", ".join(unknown_alerts))

    # --- ServiceMonitor / PodMonitor point at ports that exist
    sm, pm = by_kind.get("ServiceMonitor", []), by_kind.get("PodMonitor", [])
    svc = [d for d in by_kind.get("Service", []) if d["metadata"]["name"] == "memha-controller"]
    svc_ports = {p["name"] for s in svc for p in s["spec"]["ports"]}
    if len(sm) == 1 and all(e["port"] in svc_ports for e in sm[0]["spec"]["endpoints"]) and \
            sm[0]["spec"]["selector"]["matchLabels"].items() <= svc[0]["metadata"]["labels"].items():
        ok(f"ServiceMonitor scrapes the controller Service's port {sm[0]['spec']['endpoints'][0]['port']}")
    else:
        bad("ServiceMonitor scrapes the controller Service", yaml.safe_dump(sm))
    sidecar_spec = open(os.path.join(REPO, "controller/webhook/sidecar_spec.cc")).read()
    admission = open(os.path.join(REPO, "controller/webhook/admission.cc")).read()
    if len(pm) == 1 and all(f'{{"name", "{e["port"]}"}}' in sidecar_spec for e in pm[0]["spec"]["podMetricsEndpoints"]) \
            and pm[0]["spec"]["selector"]["matchLabels"] == {"memha.io/sidecar": "injected"} \
            and "kInjectedLabel, \"injected\"" in admission:
        ok("PodMonitor scrapes the injected sidecar's memha-health port on pods labelled memha.io/sidecar=injected")
    else:
        bad("PodMonitor matches what the webhook injects", yaml.safe_dump(pm))


def known_series():
    """Metric names the two binaries register (their sources), for a check that no alert or panel names a series
    that does not exist."""
    names = set()
    for root in ("sidecar", "controller"):
        for dirpath, _, files in os.walk(os.path.join(REPO, root)):
            for fn in files:
                if fn.endswith(".cc"):
                    with open(os.path.join(dirpath, fn)) as f:
                        names.update(re.findall(r'"(memha_[a-z_]+)"', f.read()))
    return names


if __name__ == "__main__":
    main()
