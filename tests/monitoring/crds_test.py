#!/usr/bin/env python3
"""The chart's ServiceMonitor, PodMonitor and PrometheusRule against the Prometheus Operator's own CRDs
(scripts/monitoring-tools/build.sh --crds: from its Go module) on the real local kube-apiserver (fixture
k8s_cluster): the CRDs installed, the chart rendered with every monitoring object on, each object applied with a
server-side dry run and strict field validation (an unknown or mistyped field is an error), and a broken
ServiceMonitor refused (the check can fail). The CRDs are removed at the end.
Prints PASS/FAIL lines and "crds: N passed, N failed"; exits 1 on any failure.
"""
import json
import os
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "../.."))
passed = failed = 0


def ok(what, detail=""):
    global passed
    passed += 1
    print(f"PASS: {what}", flush=True)


def bad(what, detail=""):
    global failed
    failed += 1
    print(f"FAIL: {what}", flush=True)
    for line in str(detail).strip().splitlines()[-20:]:
        print(f"  | {line}")


def tool(script, *args):
    r = subprocess.run([os.path.join(REPO, script), *args], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"{script} {' '.join(args)}: {r.stderr[-2000:]}")
    return r.stdout.strip().splitlines()[-1]


def main():
    if "KUBECONFIG" not in os.environ:
        bad("KUBECONFIG set (the k8s_cluster fixture)")
        return
    bins = tool("scripts/k8s-tools/build.sh")
    kubectl, helm = os.path.join(bins, "kubectl"), os.path.join(bins, "helm")
    crd_dir = tool("scripts/monitoring-tools/build.sh", "--crds")
    ns = f"memha-crds-{os.getpid()}"

    def k(*args, input=None):
        return subprocess.run([kubectl, "--request-timeout=60s", *args], input=input, capture_output=True, text=True)

    crds = sorted(os.path.join(crd_dir, f) for f in os.listdir(crd_dir) if f.endswith(".yaml"))
    try:
        r = k("apply", "--server-side", *sum((["-f", c] for c in crds), []))
        (ok if r.returncode == 0 else bad)(f"{len(crds)} Prometheus Operator CRDs installed", r.stdout + r.stderr)
        names = [yaml.safe_load(open(c))["metadata"]["name"] for c in crds]
        r = k("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])
        (ok if r.returncode == 0 else bad)("CRDs established", r.stdout + r.stderr)
        r = k("create", "namespace", ns)
        (ok if r.returncode == 0 else bad)(f"namespace {ns}", r.stderr)

        rendered = subprocess.run(
            [helm, "template", "memha", os.path.join(REPO, "charts/memha"), "--namespace", ns,
             "--set", "monitoring.serviceMonitor.enabled=true", "--set", "monitoring.podMonitor.enabled=true",
             "--set", "monitoring.prometheusRule.enabled=true", "--set", "monitoring.grafanaDashboard.enabled=true",
             "--set-string", "monitoring.serviceMonitor.labels.release=prom"],
            capture_output=True, text=True, check=True).stdout
        objects = [d for d in yaml.safe_load_all(rendered) if d and (
            d["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule") or
            (d["kind"] == "ConfigMap" and "grafana_dashboard" in (d["metadata"].get("labels") or {})))]
        kinds = sorted(d["kind"] for d in objects)
        (ok if kinds == ["ConfigMap", "PodMonitor", "PrometheusRule", "ServiceMonitor"] else bad)(
            f"rendered: {', '.join(kinds)}")
        for d in objects:
            r = k("apply", "--dry-run=server", "--validate=strict", "-f", "-", input=json.dumps(d))
            (ok if r.returncode == 0 else bad)(
                f"{d['kind']} {d['metadata']['name']}: accepted by the apiserver (server dry run, strict fields)",
                r.stdout + r.stderr)

        # The same check refuses a broken object: a mistyped field, and a port given as a number.
        sm = next(d for d in objects if d["kind"] == "ServiceMonitor")
        for what, mutate in (("an unknown field (endpoint.scrapeInterval)",
                              lambda e: e.__setitem__("scrapeInterval", "30s")),
                             ("a port as a number", lambda e: e.__setitem__("port", 8080))):
            broken = json.loads(json.dumps(sm))
            mutate(broken["spec"]["endpoints"][0])
            r = k("apply", "--dry-run=server", "--validate=strict", "-f", "-", input=json.dumps(broken))
            (ok if r.returncode != 0 else bad)(f"a ServiceMonitor with {what} is refused", r.stdout)
    finally:
        k("delete", "namespace", ns, "--wait=false")  # empty: nothing was created in it
        k("delete", "--wait=false", *sum((["-f", c] for c in crds), []))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a broken step is a failure, not a skip
        bad("step raised", repr(e))
    print(f"crds: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and passed > 0 else 1)
