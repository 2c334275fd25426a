"""Render and validate mlrt's Kubernetes manifests (Helm chart and kustomize), offline.

  python -m tooling.k8s render [VALUES ...]    print `helm template` of the chart
  python -m tooling.k8s validate               helm lint + strict kubeconform of every value set and overlay
  python -m tooling.k8s kustomize-base         regenerate k8s/kustomize/base/mlrt.yaml from the chart
  python -m tooling.k8s drift                  exit 1 when the kustomize base differs from the chart
  python -m tooling.k8s values-doc             regenerate docs/kubernetes-values.md from values.schema.json
  python -m tooling.k8s secrets OVERLAY_DIR    write the overlay's missing *-secret.env files with random values
  python -m tooling.k8s flows-doc              regenerate docs/kubernetes-network-flows.md from the rendered policies

helm, kustomize and kubeconform are built by tooling/install-go-tools.sh into versions.TOOLS_BIN; the
Kubernetes schemas come from tooling/k8s_schemas.py (KUBERNETES_VERSION in versions.env).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tooling import k8s_schemas, versions

ROOT = versions.ROOT
TOOLS = versions.TOOLS_BIN
# The clients that talk to a live cluster (e2e tests, `make bench TARGET=k8s`): the Makefile names the test
# cluster's kubectl and the project's helm; by hand, whatever is on PATH.
HELM = os.environ.get("MLRT_HELM") or shutil.which("helm") or str(TOOLS / "helm")
KUBECTL = os.environ.get("MLRT_KUBECTL") or shutil.which("kubectl") or "kubectl"
CHART = ROOT / "k8s" / "helm" / "mlrt"
VALUE_SETS = CHART / "ci"
KUSTOMIZE = ROOT / "k8s" / "kustomize"
BASE = KUSTOMIZE / "base" / "mlrt.yaml"
# The one Spark defaults file (images/spark/conf/) and the chart's copy of it: helm reads files inside the chart
# only, and a symlink there draws a warning on every render. `make k8s-kustomize-base` refreshes the copy.
SHARED_SPARK_DEFAULTS = ROOT / "images" / "spark" / "conf" / "spark-defaults.conf"
CHART_SPARK_DEFAULTS = CHART / "files" / "spark-defaults.conf"
RELEASE, NAMESPACE = "mlrt", "mlrt"


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        sys.exit(f"k8s: {name} is missing; run `make k8s-tools`")
    return str(path)


def run(cmd: list[str], stdin: str | None = None) -> str:
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        stderr = "\n".join(line for line in result.stderr.splitlines() if "symbolic link" not in line)
        raise RuntimeError(
            f"{' '.join(Path(c).name if c.startswith('/') else c for c in cmd[:3])} failed:\n"
            f"{stderr}{result.stdout[-3000:]}"
        )
    return result.stdout


def render(values: list[Path] | None = None, sets: list[str] | None = None) -> str:
    cmd = [
        tool("helm"),
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        versions.load()["KUBERNETES_VERSION"],
    ]
    for path in values or []:
        cmd += ["--values", str(path)]
    for item in sets or []:
        cmd += ["--set", item]
    return run(cmd)


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kubeconform(manifests: str) -> str:
    schemas = k8s_schemas.generate(versions.load()["KUBERNETES_VERSION"])
    return run(
        [
            tool("kubeconform"),
            "-strict",
            "-summary",
            "-schema-location",
            f"{schemas}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
            "-",
        ],
        stdin=manifests,
    )


def is_helm_test(doc: dict) -> bool:
    """Objects only `helm test` uses (hooks); kustomize has no equivalent."""
    return "helm.sh/hook" in (doc["metadata"].get("annotations") or {})


def kustomize_base_text() -> str:
    """The chart rendered with default values, minus what kustomize makes itself (Secrets, via
    secretGenerator) and what only `helm test` uses."""
    kept = []
    for doc in documents(render()):
        if doc["kind"] == "Secret" or is_helm_test(doc):
            continue
        kept.append(doc)
    header = (
        "# Generated from the Helm chart by `make k8s-kustomize-base` (tooling/k8s.py); do not edit.\n"
        "# `make test` fails when this drifts from the chart.\n"
    )
    return header + yaml.safe_dump_all(kept, sort_keys=False)


def write_secrets(overlay: Path) -> list[Path]:
    """Write each `<name>.env` the overlay's secretGenerator reads from its `<name>.env.example`, every
    CHANGE_ME a fresh random value (48 hex digits). A file that exists is left alone: it may hold a live
    deployment's credentials. Returns the files written."""
    examples = sorted(overlay.glob("*.env.example"))
    if not examples:
        raise RuntimeError(
            f"{overlay} has no *.env.example files; give an overlay directory, e.g. "
            f"{(KUSTOMIZE / 'overlays' / 'dev').relative_to(ROOT)}"
        )
    written = []
    for example in examples:
        target = example.with_name(example.name.removesuffix(".example"))
        if target.exists():
            continue
        lines = [line.replace("CHANGE_ME", secrets.token_hex(24)) for line in example.read_text().splitlines()]
        target.touch(mode=0o600)
        target.write_text("".join(f"{line}\n" for line in lines if line and not line.startswith("#")))
        written.append(target)
    return written


def kustomize_build(overlay: Path) -> str:
    """Build an overlay in a scratch copy with generated secrets.env files (real ones are git-ignored)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "kustomize"
        shutil.copytree(KUSTOMIZE, copy, ignore=shutil.ignore_patterns("*-secret.env"))
        write_secrets(copy / "overlays" / overlay.name)
        return run([tool("kustomize"), "build", str(copy / "overlays" / overlay.name)])


def overlays() -> list[Path]:
    return sorted(p for p in (KUSTOMIZE / "overlays").iterdir() if p.is_dir())


FLOWS_DOC = ROOT / "docs" / "kubernetes-network-flows.md"


def describe_pods(selector: dict) -> str:
    """A release pod selector in words: its component or Spark role, or every pod of the release."""
    labels = selector.get("matchLabels") or {}
    if not labels:
        return "any pod of the namespace"
    if "app.kubernetes.io/component" in labels:
        return labels["app.kubernetes.io/component"]
    if labels.get("mlrt.io/spark-role"):
        return f"{labels['mlrt.io/spark-role']}s"
    if "app.kubernetes.io/instance" in labels:
        return "every release pod"
    return ", ".join(f"{k}={v}" for k, v in labels.items())


def describe_peer(peer: dict) -> str:
    if "ipBlock" in peer:
        return f"addresses {peer['ipBlock']['cidr']}"
    where = ""
    if "namespaceSelector" in peer:
        where = " in namespaces " + (
            ", ".join(f"{k}={v}" for k, v in peer["namespaceSelector"].get("matchLabels", {}).items()) or "(any)"
        )
    return describe_pods(peer.get("podSelector", {})) + where


def describe_ports(rule: dict) -> str:
    ports = rule.get("ports")
    if not ports:
        return "any port"
    return ", ".join(f"{p['port']}" + (f"/{p['protocol']}" if p.get("protocol", "TCP") != "TCP" else "") for p in ports)


def flows_doc_text(values: list[Path] | None = None) -> str:
    """Every flow the chart's NetworkPolicies allow (default values), one row per rule, from the rendered
    policies: what the live e2e tests probe (tests/e2e/test_helm.py), in words."""
    rows = []
    denied = []
    for doc in documents(render(values)):
        if doc["kind"] != "NetworkPolicy":
            continue
        spec, name = doc["spec"], doc["metadata"]["name"]
        pods = describe_pods(spec["podSelector"])
        for direction, key, peers_key in (("Ingress", "ingress", "from"), ("Egress", "egress", "to")):
            if direction not in spec.get("policyTypes", []):
                continue
            rules = spec.get(key) or []
            if not rules:
                denied.append(f"- `{name}`: {direction.lower()} of {pods}: nothing, unless another policy allows it")
            for rule in rules:
                peers = "; ".join(describe_peer(peer) for peer in rule.get(peers_key, [])) or "anywhere"
                if direction == "Ingress":
                    rows.append(f"| {peers} | {pods} | {describe_ports(rule)} | `{name}` |")
                else:
                    rows.append(f"| {pods} | {peers} | {describe_ports(rule)} | `{name}` |")
    return "\n".join(
        [
            "# Network flows the chart allows",
            "",
            "Generated by `make k8s-docs` (tooling/k8s.py) from the chart's NetworkPolicies rendered with its default",
            "values (`networkPolicy.enabled: true`, `ingressFrom: []`, `rayOnSpark: true`); `make test` fails when it",
            "drifts. The end-to-end tests probe them live on a cluster that enforces NetworkPolicy (tests/e2e/",
            "test_enforcement.py shows the enforcement, tests/e2e/test_helm.py the flows, allowed and dropped).",
            "",
            "Pods are named by their `app.kubernetes.io/component` label; *drivers* are the pods labelled",
            "`mlrt.io/spark-role=driver`: JupyterLab, Spark Connect, spark-submit drivers and helm test's.",
            "`networkPolicy.ingressFrom` replaces *any pod of the namespace* with the peers it names (MLflow stays",
            "open to the release's drivers and executors, which log to it).",
            "",
            "Default deny (everything not listed below is dropped):",
            "",
            *denied,
            "",
            "| from | to | ports | policy |",
            "|---|---|---|---|",
            *sorted(rows),
            "",
        ]
    )


VALUES_DOC = ROOT / "docs" / "kubernetes-values.md"


def values_doc_text() -> str:
    """A reference of every value: path, type/constraints, default (values.yaml) and description (schema)."""
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = []

    def walk(node: dict, path: list[str], default) -> None:
        if node.get("type") == "object" and "properties" in node:
            for key, sub in node["properties"].items():
                walk(sub, [*path, key], (default or {}).get(key) if isinstance(default, dict) else None)
            return
        kind = node.get("type") or ("one of " + ", ".join(map(str, node["enum"])) if "enum" in node else "any")
        if "pattern" in node:
            kind = f"{kind}, matching `{node['pattern']}`"
        if "minimum" in node or "maximum" in node:
            kind = f"{kind} in [{node.get('minimum', '')}, {node.get('maximum', '')}]"
        shown = json.dumps(default) if default not in (None, "") else '""'
        cells = [f"`{'.'.join(path)}`", kind.replace("|", "\\|"), f"`{shown}`", node.get("description", "")]
        rows.append("| " + " | ".join(cells) + " |")

    walk(schema, [], defaults)
    return (
        "# Helm values reference\n\nGenerated from `k8s/helm/mlrt/values.schema.json` and `values.yaml` by "
        "`make k8s-docs`; do not edit. Helm rejects values that break these rules, naming the field.\n\n"
        "| value | type | default | description |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def validate() -> None:
    print(run([tool("helm"), "lint", str(CHART), "--kube-version", versions.load()["KUBERNETES_VERSION"]]).strip())
    sets = [None, *sorted(VALUE_SETS.glob("*.yaml"))]
    for values in sets:
        label = values.name if values else "default values"
        print(f"chart, {label}: {kubeconform(render([values] if values else None)).strip()}")
    for overlay in overlays():
        print(f"kustomize overlay {overlay.name}: {kubeconform(kustomize_build(overlay)).strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    render_parser = sub.add_parser("render")
    render_parser.add_argument("values", nargs="*", type=Path)
    sub.add_parser("validate")
    sub.add_parser("kustomize-base")
    sub.add_parser("drift")
    sub.add_parser("values-doc")
    sub.add_parser("flows-doc")
    secrets_parser = sub.add_parser("secrets")
    secrets_parser.add_argument("overlay", type=Path)
    args = parser.parse_args()
    try:
        if args.command == "render":
            sys.stdout.write(render(args.values))
        elif args.command == "validate":
            validate()
        elif args.command == "kustomize-base":
            CHART_SPARK_DEFAULTS.write_text(SHARED_SPARK_DEFAULTS.read_text())
            print(f"k8s: wrote {CHART_SPARK_DEFAULTS.relative_to(ROOT)}", file=sys.stderr)
            BASE.write_text(kustomize_base_text())
            print(f"k8s: wrote {BASE.relative_to(ROOT)}", file=sys.stderr)
        elif args.command == "secrets":
            written = write_secrets(args.overlay)
            for path in written:
                print(f"k8s: wrote {path} (random values, mode 600)", file=sys.stderr)
            if not written:
                print(f"k8s: every secret file of {args.overlay} exists; none changed", file=sys.stderr)
        elif args.command == "flows-doc":
            FLOWS_DOC.write_text(flows_doc_text())
            print(f"k8s: wrote {FLOWS_DOC.relative_to(ROOT)}", file=sys.stderr)
        elif args.command == "values-doc":
            VALUES_DOC.write_text(values_doc_text())
            print(f"k8s: wrote {VALUES_DOC.relative_to(ROOT)}", file=sys.stderr)
        elif CHART_SPARK_DEFAULTS.read_text() != SHARED_SPARK_DEFAULTS.read_text():
            sys.exit(f"k8s: {CHART_SPARK_DEFAULTS.relative_to(ROOT)} drifted; run `make k8s-kustomize-base`")
        elif BASE.read_text() != kustomize_base_text():
            sys.exit(f"k8s: {BASE.relative_to(ROOT)} drifted from the chart; run `make k8s-kustomize-base`")
        else:
            print("k8s: kustomize base matches the chart", file=sys.stderr)
    except RuntimeError as err:
        sys.exit(f"k8s: {err}")


if __name__ == "__main__":
    main()
