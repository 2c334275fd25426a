"""Push the built images to a registry, for a real multi-node cluster (its nodes pull them from there).

  python -m scripts.push REGISTRY [IMAGE ...]      (make push REGISTRY=host[:port]/path [IMAGES="spark ml"])

REGISTRY is what the chart's `image.registry` takes: every image the chart runs (spark, ml, notebook, objectstore,
postgres; or the IMAGEs named) goes to REGISTRY/mlrt/<name> with all its tags (<version> and the computed
<version>-python3.11-spark4.1.4). Log in first (`docker login host[:port]`); a registry that refuses the push
says so, with the command. Afterwards it prints the `--set image.registry=...` that installs the chart from there.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from tooling import images, versions

# host[:port][/path]: lower-case path components, as Docker's reference grammar has them; no scheme.
REGISTRY = re.compile(r"^[a-zA-Z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
REFUSED = re.compile(r"(?i)no basic auth credentials|unauthorized|authentication required|denied|403 forbidden")


class BadInput(Exception):
    pass


def check_registry(value: str) -> str:
    value = value.strip().rstrip("/")
    if "://" in value or not REGISTRY.match(value):
        raise BadInput(
            f"REGISTRY={value!r} is not host[:port][/path] (no scheme, a lower-case path), "
            "e.g. registry.example.com:5000/team"
        )
    return value


def local_tags(name: str, version: str) -> list[str]:
    """The image's tags of this version present here: <version> and those `make build` computed from it."""
    out = subprocess.run(
        ["docker", "image", "ls", f"mlrt/{name}", "--format", "{{.Tag}}"], capture_output=True, text=True, check=True
    ).stdout.split()
    tags = sorted(t for t in out if t == version or t.startswith(f"{version}-"))
    if version not in tags:
        raise BadInput(f"image mlrt/{name}:{version} is not here; run `make build` first")
    return tags


def push(registry: str, names: list[str], version: str) -> list[str]:
    pushed = []
    for name in names:
        for tag in local_tags(name, version):
            target = f"{registry}/mlrt/{name}:{tag}"
            subprocess.run(["docker", "tag", f"mlrt/{name}:{tag}", target], check=True)
            print(f"push: {target}", file=sys.stderr)
            done = subprocess.run(["docker", "push", target], capture_output=True, text=True)
            if done.returncode:
                detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
                if REFUSED.search(done.stderr + done.stdout):
                    host = registry.split("/", maxsplit=1)[0]
                    raise BadInput(
                        f"{registry} refused the push of {target} ({detail[0]}): not logged in, or not allowed; "
                        f"run `docker login {host}` with an account that may push there"
                    )
                raise BadInput(f"pushing {target} failed: {detail[0]}")
            pushed.append(target)
    return pushed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("registry", help="host[:port]/path, as the chart's image.registry")
    parser.add_argument("images", nargs="*", help=f"of {', '.join(images.runtime_images())} (default: all)")
    args = parser.parse_args(argv)
    try:
        registry = check_registry(args.registry)
        unknown = [n for n in args.images if n not in images.runtime_images()]
        if unknown:
            raise BadInput(f"unknown image {', '.join(unknown)}; known: {', '.join(images.runtime_images())}")
        version = versions.load()["MLRT_VERSION"]
        pushed = push(registry, args.images or images.runtime_images(), version)
    except BadInput as err:
        print(f"push: ERROR: {err}", file=sys.stderr)
        return 2
    print(f"pushed {len(pushed)} tags. Install from there:", file=sys.stderr)
    print(f"  helm install mlrt k8s/helm/mlrt --set image.registry={registry}")
    print(f"  make submit TARGET=k8s APP=job.py  (uses the release's image.registry: {registry})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
