"""Generate Kubernetes JSON schemas for offline, strict kubeconform validation.

The OpenAPI spec comes from the k8s.io/kubernetes Go module (api/openapi-spec/swagger.json) at
KUBERNETES_VERSION, fetched through the Go module proxy with `go mod download`. Each kind gets a standalone
schema ($refs inlined) named as kubeconform's default layout expects ({kind}{-group}-{version}.json), strict:
unknown fields are errors.

  python -m tooling.k8s_schemas     print the schema directory (created if missing)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tooling import versions

CACHE = versions.ROOT / ".cache" / "k8s-schemas"
INT_OR_STRING = {"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]}
QUANTITY = {"oneOf": [{"type": ["string", "null"]}, {"type": ["number", "null"]}]}


def swagger(version: str) -> dict:
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
    )
    if out.returncode != 0:
        sys.exit(f"k8s-schemas: ERROR: go mod download k8s.io/kubernetes@{version} failed:\n{out.stdout}{out.stderr}")
    return json.loads((Path(json.loads(out.stdout)["Dir"]) / "api/openapi-spec/swagger.json").read_text())


def inline(node, definitions: dict, seen: tuple[str, ...] = ()):
    if isinstance(node, list):
        return [inline(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].split("/")[-1]
        if name.endswith("util.intstr.IntOrString"):
            return INT_OR_STRING
        if name.endswith("api.resource.Quantity"):
            return QUANTITY
        if name in seen:  # recursive types (CRD validation schemas): accept anything below
            return {}
        return inline(definitions[name], definitions, (*seen, name))
    result = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes") or key in ("description", "format"):
            continue
        if key == "properties":
            result[key] = {prop: inline(sub, definitions, seen) for prop, sub in value.items()}
        else:
            result[key] = inline(value, definitions, seen)
    if isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    if "properties" in result:
        result["additionalProperties"] = False
    return result


def generate(version: str) -> Path:
    target = CACHE / version
    if (target / ".complete").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    definitions = swagger(version)["definitions"]
    count = 0
    for definition in definitions.values():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            group = gvk["group"].split(".")[0]
            suffix = f"-{group}-{gvk['version']}" if group else f"-{gvk['version']}"
            schema = inline(definition, definitions)
            schema["$schema"] = "http://json-schema.org/schema#"
            (target / f"{gvk['kind'].lower()}{suffix}.json").write_text(json.dumps(schema))
            count += 1
    (target / ".complete").write_text(f"{count}\n")
    print(f"k8s-schemas: wrote {count} schemas for Kubernetes {version} to {target}", file=sys.stderr)
    return target


if __name__ == "__main__":
    print(generate(versions.load()["KUBERNETES_VERSION"]))
