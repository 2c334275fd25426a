"""Build the mlrt images in layer order and tag them from what the built images report.

  python -m tooling.images build [IMAGE ...]   build (default: all) images, parents first
  python -m tooling.images list                the image references, one a line

Every image is images/<name>/Dockerfile with images/<name>/ as its context, chained by ARG BASE_IMAGE.
Build args come from versions.env (each ARG a Dockerfile declares and versions.env has). An extra CA bundle
(MLRT_CA_BUNDLE, else SSL_CERT_FILE, REQUESTS_CA_BUNDLE or PIP_CERT) is passed as the BuildKit secret
"mlrt_ca" and never lands in a layer. Before the spark image, the jar lock's jars are downloaded from
MLRT_MAVEN_REPOSITORIES and verified into images/spark/jars/ (tooling/jars.py fetch); before the objectstore
image, rclone is built at RCLONE_VERSION with `go install` (tooling/install-go-tools.sh) into its bin/.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tooling import jars, versions

ROOT = versions.ROOT
# name -> parent (None: the Debian base from versions.env). Order is build order.
IMAGES: dict[str, str | None] = {
    "base": None,
    "spark": "base",
    "ml": "spark",
    "notebook": "ml",
    "objectstore": "base",
    "postgres": "base",
    "hub": "base",
}
CA_ENV_VARS = ("MLRT_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")


def log(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


def ref(name: str, pins: dict[str, str]) -> str:
    return f"mlrt/{name}:{pins['MLRT_VERSION']}"


def inspect(ref: str, field: str) -> str | None:
    """One field of `docker image inspect` (a Go template such as "{{.Id}}"); None when Docker has no such image."""
    proc = subprocess.run(["docker", "image", "inspect", "--format", field, ref], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def run_in(
    ref: str,
    *command: str,
    entrypoint: str | None = None,
    env: dict[str, str] | None = None,
    volumes: dict[str, str] | None = None,
    timeout: int = 300,
) -> subprocess.CompletedProcess:
    """Run a command in a fresh, removed container of the image: the one way build, the runtime manifest and tests run
    something in an image. Through the image's entrypoint unless `entrypoint` is given; volumes mount read-only
    (host path -> container path). Returns the finished process (text stdout/stderr); the caller checks it."""
    cmd = ["docker", "run", "--rm"]
    if entrypoint is not None:
        cmd += ["--entrypoint", entrypoint]
    for key, value in (env or {}).items():
        cmd += ["-e", f"{key}={value}"]
    for host, target in (volumes or {}).items():
        cmd += ["-v", f"{host}:{target}:ro"]
    return subprocess.run([*cmd, ref, *command], capture_output=True, text=True, timeout=timeout)


def output_of(ref: str, *command: str, entrypoint: str | None = None) -> str:
    """run_in, for a command that must succeed: its stdout, or a RuntimeError with its stderr."""
    proc = run_in(ref, *command, entrypoint=entrypoint)
    if proc.returncode:
        shown = " ".join([entrypoint or "", *command]).strip()
        raise RuntimeError(f"`{shown}` in {ref} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def run_python(ref: str, code: str) -> str:
    """Run Python code in the image (its entrypoint bypassed) and return its stdout."""
    return output_of(ref, "-c", code, entrypoint="python")


def ca_bundle() -> Path | None:
    for var in CA_ENV_VARS:
        value = os.environ.get(var)
        if not value:
            continue
        path = Path(value)
        if not path.is_file():
            raise SystemExit(f"images: ERROR: {var}={value} is not a file; point it at a PEM CA bundle or unset it")
        return path
    return None


def declared_args(dockerfile: Path) -> list[str]:
    return re.findall(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)", dockerfile.read_text(), flags=re.M)


def build_command(name: str, pins: dict[str, str], ca: Path | None) -> list[str]:
    context = ROOT / "images" / name
    dockerfile = context / "Dockerfile"
    parent = IMAGES[name]
    declared = declared_args(dockerfile)
    args = {key: pins[key] for key in declared if key in pins}
    args["BASE_IMAGE"] = pins["BASE_IMAGE"] if parent is None else ref(parent, pins)
    cmd = [
        "docker",
        "buildx",
        "build",
        "--file",
        str(dockerfile),
        "--tag",
        ref(name, pins),
        "--label",
        f"org.mlrt.version={pins['MLRT_VERSION']}",
        "--label",
        f"org.mlrt.image={name}",
    ]
    for key, value in sorted(args.items()):
        cmd += ["--build-arg", f"{key}={value}"]
    if ca:
        cmd += ["--secret", f"id=mlrt_ca,src={ca}"]
    if os.environ.get("MLRT_BUILD_PROGRESS"):
        cmd += ["--progress", os.environ["MLRT_BUILD_PROGRESS"]]
    return cmd + [str(context)]


TAG_PROBE = (
    "import platform\n"
    "parts = ['python' + '.'.join(platform.python_version_tuple()[:2])]\n"
    "try:\n    import pyspark\n    parts.append('spark' + pyspark.__version__)\nexcept ImportError:\n    pass\n"
    "print('-'.join(parts))"
)


def computed_tags(name: str, pins: dict[str, str]) -> list[str]:
    """Extra tags taken from what the built image reports (as docker-stacks' taggers do), e.g.
    mlrt/spark:0.1.0-python3.11-spark4.1.4."""
    image = ref(name, pins)
    return [f"{image}-{run_python(image, TAG_PROBE).strip()}"]


def runtime_images() -> list[str]:
    """What deployments run (compose, the chart, `make push`): every image but the base the others are built on."""
    return [name for name in IMAGES if name != "base"]


def with_parents(names: list[str]) -> list[str]:
    wanted: set[str] = set()
    for name in names:
        if name not in IMAGES:
            raise SystemExit(f"images: ERROR: unknown image {name!r}; known: {', '.join(IMAGES)}")
        current: str | None = name
        while current:
            wanted.add(current)
            current = IMAGES[current]
    return [name for name in IMAGES if name in wanted]


def stage_jars() -> None:
    """Download and verify the jar lock's jars into the spark image's context (images/spark/jars/, ignored by
    git); the Dockerfile checks them against the lock again and installs them."""
    try:
        data = jars.fetch(ROOT / "images" / "spark" / "jars", jars.repositories())
    except jars.JarError as err:
        raise SystemExit(f"images: ERROR: {err}") from None
    log(f"jar lock: {jars.summary(data)}, verified")
    for package in jars.unresolved(data):
        log(f"NOT in the images (the jar lock has it unresolved): {package['coordinate']} ({package['reason']})")


def stage_smoke_tests() -> None:
    """The cluster smoke tests (smoke_tests/*.py) into the notebook image's context (images/notebook/smoke_tests/,
    ignored by git): the image carries them for `helm test`, which cannot read files outside the chart."""
    target = ROOT / "images" / "notebook" / "smoke_tests"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for source in sorted((ROOT / "smoke_tests").glob("*.py")):
        shutil.copy2(source, target / source.name)


def stage_rclone() -> None:
    """Build rclone from Go modules (cached by version in versions.TOOLS_BIN) into the objectstore image's context
    (images/objectstore/bin/, ignored by git)."""
    subprocess.run(["bash", str(ROOT / "tooling" / "install-go-tools.sh"), "rclone"], check=True)
    dest = ROOT / "images" / "objectstore" / "bin"
    dest.mkdir(exist_ok=True)
    shutil.copy2(versions.TOOLS_BIN / "rclone", dest / "rclone")


STAGE = {"spark": stage_jars, "notebook": stage_smoke_tests, "objectstore": stage_rclone}


def build(names: list[str]) -> None:
    pins = versions.load()
    ca = ca_bundle()
    log(f"extra CA bundle for the build: {ca or 'none'}")
    subprocess.run([sys.executable, "-m", "tooling.base_image"], cwd=ROOT, check=True)
    for name in with_parents(names or list(IMAGES)):
        started = time.monotonic()
        if name in STAGE:
            STAGE[name]()
        log(f"building {ref(name, pins)}")
        subprocess.run(build_command(name, pins, ca), check=True)
        tags = computed_tags(name, pins)
        for tag in tags:
            subprocess.run(["docker", "tag", ref(name, pins), tag], check=True)
        log(f"built {ref(name, pins)} in {time.monotonic() - started:.0f}s (also tagged {', '.join(tags)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build_parser = sub.add_parser("build")
    build_parser.add_argument("images", nargs="*")
    sub.add_parser("list")
    args = parser.parse_args()
    if args.command == "build":
        build(args.images)
    else:
        pins = versions.load()
        print("\n".join(ref(name, pins) for name in IMAGES))


if __name__ == "__main__":
    main()
