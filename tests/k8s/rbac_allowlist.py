#!/usr/bin/python3
"""The controller's RBAC against a reviewed allow-list (issue 12): renders charts/memha with default values and reads
manifests/memha.yaml, expands every ClusterRole/Role rule into (scope, apiGroup, resource, verb, resourceName) and
fails unless the set equals tests/k8s/rbac_allowlist.txt: a rule nobody reviewed (or a wildcard) fails, and so does
a reviewed rule that is gone (the list must follow the chart).

Usage: rbac_allowlist.py [HELM]   (default: $HELM, else the helm from scripts/k8s-tools/build.sh)"""
import os
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "../.."))


def helm_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    out = subprocess.run([os.path.join(REPO, "scripts/k8s-tools/build.sh")], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()
    return os.path.join(out[-1], "helm")


def rules_of(documents, source):
    lines, problems = set(), []
    for doc in documents:
        if not doc or doc.get("kind") not in ("ClusterRole", "Role"):
            continue
        scope = "cluster" if doc["kind"] == "ClusterRole" else "namespace"
        for rule in doc.get("rules") or []:
            if rule.get("nonResourceURLs"):
                problems.append(f"{source}: {doc['kind']} {doc['metadata']['name']}: nonResourceURLs {rule}")
            names = rule.get("resourceNames") or ["*"]
            for group in rule.get("apiGroups") or []:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        for name in names:
                            if "*" in (group, resource, verb):
                                problems.append(f"{source}: wildcard in {doc['kind']} rule {rule}")
                            lines.add(f"{scope} {group or 'core'} {resource} {verb} {name}")
    return lines, problems


def main():
    with open(os.path.join(HERE, "rbac_allowlist.txt")) as f:
        allowed = {" ".join(l.split()) for l in f if l.strip() and not l.startswith("#")}
    rendered = subprocess.run([helm_path(), "template", "memha", os.path.join(REPO, "charts/memha"),
                               "--namespace", "memha-system"], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(REPO, "manifests/memha.yaml")) as f:
        manifests = f.read()
    failed = 0
    for source, text in (("helm template charts/memha", rendered), ("manifests/memha.yaml", manifests)):
        got, problems = rules_of(list(yaml.safe_load_all(text)), source)
        for p in problems:
            print(f"FAIL {p}")
        unreviewed = sorted(got - allowed)
        gone = sorted(allowed - got)
        for line in unreviewed:
            print(f"FAIL {source}: rule not in tests/k8s/rbac_allowlist.txt (review it, then add it): {line}")
        for line in gone:
            print(f"FAIL {source}: allow-list line no longer granted (remove it): {line}")
        if problems or unreviewed or gone:
            failed += 1
        else:
            print(f"ok   {source}: {len(got)} grants, all reviewed")
    print(f"rbac_allowlist: {2 - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
