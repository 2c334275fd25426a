"""`make bench`: what users feel, measured on this machine, written to docs/benchmarks.md with plots.

  python -m bench.run [--target compose|k8s] [--quick] [--only SECTION ...] [--out DIR]

--only SECTION ... reruns those sections into the existing report: the others stay as measured before, each
marked with the commit and date of the run that measured it.

Sections (each figure over several runs, min / median / max; a comparison is a ratio taken pair by pair, the
two sides in turn A B A B in one run, so it holds when the machine's speed drifts):
  startup   `make up` with the images present until JupyterLab's login works, both workers are registered
            and MLflow is healthy (the cluster is stopped first; volumes are kept)
  session   a new driver (a notebook's first cell): SparkSession.builder.getOrCreate() until both executors
            are registered
  overhead  each distributed API against its local counterpart on trivial work, in the driver (bench/driver.py)
  imports   the runtime's cut to the launchers' start, before and after in one run: `import pyspark.ml` in a new
            Python process on each executor from Spark's archives as shipped (sources) and as the image has them
  scaling   a CPU-bound job of 60 core-seconds on 1 and on 2 workers
  shuffle   a shuffle between two executor JVMs with and without RPC encryption (bench/shuffle.py)
  images    each image's size over its parent, split into CUDA libraries and the rest

`--target k8s` measures the Helm release on Kubernetes instead (bench/on_k8s.py: startup, session, overhead,
imports) and writes docs/benchmarks-kubernetes.md. The compose cluster is started when it is not up, and left
up. `--quick` (what `make test` runs, on compose) takes one run of a few cases with small work, the driver's cases
in one Spark application (`driver.py quick`), and writes to a scratch directory: it proves the benchmarks still
run, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench import on_k8s
from scripts import dotenv
from tooling import images, versions

ROOT = versions.ROOT

DOCS = ROOT / "docs"
SECTIONS = ("startup", "session", "overhead", "imports", "scaling", "shuffle", "images")
JUPYTER = "http://127.0.0.1:8888"
MASTER = "http://127.0.0.1:8080/json/"
MLFLOW = "http://127.0.0.1:5000/health"
READY_TIMEOUT_S = 300
# What a CUDA build of a framework brings: NVIDIA's wheels (nvidia-*), Triton, and the CUDA parts of torch.
CUDA_PATH = re.compile(r"/nvidia/|/triton/|cuda|cudnn|cublas|cufft|curand|cusolver|cusparse|nccl|nvjitlink|nvrtc")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": len(values)}


def ratios(a: list[float], b: list[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=True) if y > 0]


def compose(*args: str, timeout: int = 900) -> str:
    proc = subprocess.run(["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"bench: `docker compose {' '.join(args)}` failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


# ---- the compose cluster -------------------------------------------------------------------------------------
def cluster_ready(workers: int = 2) -> bool:
    """JupyterLab's login works, `workers` workers are alive at the master, MLflow is healthy."""
    try:
        token = dotenv.read(dotenv.ENV_FILE)[1]["JUPYTER_TOKEN"]
        lab = requests.get(f"{JUPYTER}/lab", params={"token": token}, timeout=5)
        alive = [w for w in requests.get(MASTER, timeout=5).json()["workers"] if w["state"] == "ALIVE"]
        mlflow = requests.get(MLFLOW, timeout=5)
    except (requests.RequestException, KeyError, ValueError):
        return False
    return lab.status_code == 200 and "JupyterLab" in lab.text and len(alive) == workers and mlflow.ok


def wait_ready(workers: int = 2) -> None:
    started = time.monotonic()
    while not cluster_ready(workers):
        if time.monotonic() - started > READY_TIMEOUT_S:
            raise SystemExit(f"bench: the compose cluster was not ready after {READY_TIMEOUT_S} s (docker compose ps)")
        time.sleep(0.5)


def make_up() -> None:
    """`make up` (builds what is missing, starts the cluster), then until the cluster answers."""
    subprocess.run(["make", "--no-print-directory", "up"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wait_ready()


def ensure_up() -> None:
    if not cluster_ready():
        log("starting the compose cluster (make up)")
        make_up()


# The notebooks' driver on each target: (the command that copies a file into it, its name there, the command that
# runs something in it): the JupyterLab container, or the JupyterLab pod.
DRIVERS = {
    "compose": (["docker", "compose", "cp"], "jupyter", ["docker", "compose", "exec", "-T", "jupyter"]),
    "k8s": (on_k8s.COPY_TO_DRIVER, on_k8s.NOTEBOOK, on_k8s.EXEC_IN_DRIVER),
}


def in_driver(script: str, *args: str, target: str = "compose", timeout: int = 3600) -> dict:
    """Run a bench script in the notebooks' driver; its last output line is JSON."""
    copy, name, execute = DRIVERS[target]
    copied = subprocess.run(
        [*copy, str(ROOT / "bench" / script), f"{name}:/tmp/{script}"], cwd=ROOT, capture_output=True, text=True
    )
    if copied.returncode:
        raise SystemExit(f"bench: copying {script} into {name} failed:\n{copied.stderr[-3000:]}")
    proc = subprocess.run(
        [*execute, "python", f"/tmp/{script}", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(
            f"bench: {script} {' '.join(args)} failed in {name} ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    return json.loads(lines[-1])


# ---- sections ------------------------------------------------------------------------------------------------
def startup(quick: bool) -> dict:
    seconds = []
    for run in range(1 if quick else 3):
        compose("down", "--remove-orphans")
        started = time.monotonic()
        make_up()
        seconds.append(time.monotonic() - started)
        log(f"startup run {run + 1}: {seconds[-1]:.1f} s")
    return {"seconds": seconds}


@functools.cache
def quick_driver() -> dict:
    """--quick on compose: the driver's cases (session, overhead, imports, scaling) in one Spark application
    (`driver.py quick`), run once and shared by those sections."""
    return in_driver("driver.py", "quick")


def shares_quick_driver(quick: bool, driver: Callable[..., dict]) -> bool:
    return quick and driver is in_driver


# The catalog comparison of `session`: the deployment's shared catalog (a Hive metastore) against Spark's
# in-memory one per session, the two in turn.
IN_MEMORY = ("--conf", "spark.sql.catalogImplementation=in-memory")
# The session-start goal (docs/benchmarks.md): a new session ready for its first job within 2x a local[2] session
# in the same container.
# (no RPC authentication or encryption: one JVM; on Kubernetes the secret comes from a file, which Spark allows in
# Kubernetes mode only)
LOCAL = ("--conf", "spark.master=local[2]", "--conf", "spark.authenticate=false",
         "--conf", "spark.network.crypto.enabled=false")  # fmt: skip
SESSION_KEYS = ("getOrCreate", "executors", "catalog")
# The same session without the image's class-data sharing archive (images/spark/cds-archive): the JVMs load Spark's
# classes from the jars, as before the archive (the JDK's own default archive stays).
NO_ARCHIVE = tuple(
    arg
    for key in ("driver", "executor")
    for arg in ("--conf", f"spark.{key}.defaultJavaOptions=", "--conf", f"spark.{key}.extraClassPath=")
)


def session(quick: bool, driver: Callable[..., dict] = in_driver) -> dict:
    if shares_quick_driver(quick, driver):
        runs, local = [quick_driver()["session"]], []
    else:
        runs, local = [], []
        first: dict[str, list[float]] = {"cluster": [], "local": [], "no_archive": []}
        for _ in range(1 if quick else 5):
            runs.append(driver("driver.py", "session"))
            local.append(driver("driver.py", "session", *IN_MEMORY))
            first["cluster"].append(driver("driver.py", "first-job")["ready"])
            first["local"].append(driver("driver.py", "first-job", *LOCAL)["ready"])
            first["no_archive"].append(driver("driver.py", "first-job", *NO_ARCHIVE)["ready"])
    result = {key: [run[key] for run in runs] for key in SESSION_KEYS}
    result["implementation"] = runs[0]["implementation"]
    if local:
        result["first_job"] = {
            **first,
            "ratio": ratios(first["cluster"], first["local"]),
            "archive_saves": [b - a for a, b in zip(first["cluster"], first["no_archive"], strict=True)],
        }
        result["in-memory"] = {key: [run[key] for run in local] for key in SESSION_KEYS}
        result["extra"] = {
            key: [a - b for a, b in zip(result[key], result["in-memory"][key], strict=True)] for key in SESSION_KEYS
        }
    return result


def overhead(quick: bool, driver: Callable[..., dict] = in_driver) -> dict:
    args = ["--repeats", "1", "--warmup", "0", "--only", "spark-job", "joblibspark"] if quick else ["--repeats", "3"]
    rows = quick_driver()["overhead"] if shares_quick_driver(quick, driver) else driver("driver.py", "overhead", *args)
    for row in rows.values():
        if row["local"] and row["cluster"]:
            row["ratio"] = ratios(row["cluster"], row["local"])
            row["extra"] = [c - lo for c, lo in zip(row["cluster"], row["local"], strict=True)]
    return rows


def executor_imports(quick: bool, driver: Callable[..., dict] = in_driver) -> dict:
    if shares_quick_driver(quick, driver):
        row = dict(quick_driver()["imports"])
    else:
        row = driver("driver.py", "imports", "--repeats", "1" if quick else "5")
    row["ratio"] = ratios(row["shipped"], row["image"])
    return row


def scale_workers(count: int) -> None:
    compose("up", "-d", "--wait", "--no-recreate", "--scale", f"spark-worker={count}", "spark-worker")
    wait_ready(count)


def scaling(quick: bool) -> dict:
    """The same job on each setup: sized once, on an executor core, to 60 core-seconds (4 with --quick), then
    repeated in each setup (once with --quick)."""
    if quick:  # one run in the quick driver's session, on the cluster as it is (2 workers, 4 cores)
        shared = quick_driver()
        return {
            "core_seconds": 4,
            "calibration": shared["calibration"],
            "setups": {"2 workers, 4 cores": shared["scaling"]},
        }
    core_seconds = 60
    repeats = "3"
    # (workers, spark.cores.max)
    setups = [(1, 1), (1, 2), (2, 2), (2, 4)]
    calibration = in_driver("driver.py", "calibrate", "--repeats", "5")
    steps = round(core_seconds * calibration["steps_per_second"])
    log(f"scaling: {calibration['steps_per_second']:,.0f} loop steps/s on an executor core -> {steps:,} a job")
    out = {"core_seconds": core_seconds, "calibration": calibration, "setups": {}}
    try:
        for workers, cores in setups:
            scale_workers(workers)
            conf = f"spark.cores.max={cores}"
            args = ("--steps", str(steps), "--repeats", repeats, "--conf", conf)
            row = in_driver("driver.py", "scaling", *args)
            setup = f"{workers} worker{'s' if workers > 1 else ''}, {cores} core{'s' if cores > 1 else ''}"
            out["setups"][setup] = row
            log(f"scaling {workers} workers, {cores} cores: {row['seconds']} {row['executors']}")
    finally:
        scale_workers(2)
    return out


def shuffle(quick: bool) -> dict:
    ref = images.ref("ml", versions.load())
    rows = "20000" if quick else "2000000"
    off = ["--conf", "spark.network.crypto.enabled=false"]

    def run(extra: list[str]) -> float:
        proc = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "-v",
                f"{ROOT / 'bench'}:/bench:ro",
                ref,
                "python",
                "/bench/shuffle.py",
                "--rows",
                rows,
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        found = re.search(r"^shuffle ([0-9.]+) s, (\d+) MB", proc.stdout, re.M)
        if proc.returncode != 0 or not found:
            raise SystemExit(f"bench: shuffle.py failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return float(found.group(1))

    on_s, off_s = [], []
    for _ in range(1 if quick else 3):
        on_s.append(run(["--conf", "spark.network.crypto.enabled=true"]))
        off_s.append(run(off))
        log(f"shuffle: encrypted {on_s[-1]:.1f} s, plain {off_s[-1]:.1f} s")
    return {"rows": int(rows), "encrypted": on_s, "plain": off_s, "ratio": ratios(on_s, off_s)}


def layer_dirs(ref: str) -> list[str]:
    """The image's overlay2 layer directories, bottom first."""
    data = json.loads(images.inspect(ref, "{{json .GraphDriver.Data}}") or "{}")
    lower = [d for d in data.get("LowerDir", "").split(":") if d]
    return list(reversed(lower)) + [data["UpperDir"]]


def tree_size(path: str) -> tuple[int, int]:
    """(CUDA bytes, other bytes) of the regular files under path."""
    cuda = other = 0
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            try:
                size = os.lstat(full).st_size
            except OSError:
                continue
            if CUDA_PATH.search(full[len(path) :].lower()):
                cuda += size
            else:
                other += size
    return cuda, other


def image_sizes(quick: bool) -> dict:
    pins = versions.load()
    out = {}
    for name, parent in images.IMAGES.items():
        ref = images.ref(name, pins)
        if images.inspect(ref, "{{.Id}}") is None:
            raise SystemExit(f"bench: image {ref} is not built; run `make build` first")
        if images.inspect(ref, "{{.GraphDriver.Name}}") != "overlay2":
            raise SystemExit("bench: the image sizes need Docker's overlay2 storage driver (docker info)")
        own = layer_dirs(ref)
        if parent:
            own = own[len(layer_dirs(images.ref(parent, pins))) :]
        cuda = other = 0
        for layer in own:
            c, o = tree_size(layer)
            cuda, other = cuda + c, other + o
        out[name] = {"parent": parent, "layers": len(own), "cuda_bytes": cuda, "other_bytes": other}
        log(f"image {name}: {len(own)} layers, CUDA {cuda / 1e9:.2f} GB, other {other / 1e9:.2f} GB")
    return out


ON_K8S = functools.partial(in_driver, target="k8s")
RUNNERS: dict[str, dict[str, Callable[[bool], dict]]] = {
    "compose": {
        "startup": startup,
        "session": session,
        "overhead": overhead,
        "imports": executor_imports,
        "scaling": scaling,
        "shuffle": shuffle,
        "images": image_sizes,
    },
    "k8s": {
        "startup": on_k8s.startup,
        "session": lambda quick: session(quick, ON_K8S),
        "overhead": lambda quick: overhead(quick, ON_K8S),
        "imports": lambda quick: executor_imports(quick, ON_K8S),
    },
}
# What differs in the report between the targets: where the driver runs, what start-up means, the output.
WORDS = {
    "compose": {
        "host": "One host: both compose workers share its cores.",
        "startup": "`make up` with the images present, from a stopped cluster (volumes kept) until JupyterLab's login"
        " works,\nboth workers are registered at the master and MLflow answers its health check.",
        "startup_row": "make up → ready",
        "driver": "the JupyterLab container",
        "report": "benchmarks",
    },
    "k8s": {
        "host": "One node (the Kubernetes test cluster of `make k8s-up`): the pods share its cores.",
        "startup": "`helm install --wait` of the release (the e2e tests' small-node values,"
        " `tests/e2e/values-local.yaml`) after\n`helm uninstall` (kept claims stay, as for a user's reinstall)"
        " until every pod is ready: JupyterLab, MLflow, the\nhistory server, the object store and the Spark Connect"
        " server answer their readiness probes.",
        "startup_row": "helm install → ready",
        "driver": "the JupyterLab pod",
        "report": "benchmarks-kubernetes",
    },
}


# ---- report --------------------------------------------------------------------------------------------------
def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True).stdout
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "docker": docker.strip(),
        "commit": commit.strip(),
        "mlrt": versions.load()["MLRT_VERSION"],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def plot(results: dict, out: Path) -> list[str]:
    """PNG plots drawn by matplotlib in the ml image (the runtime's own pinned matplotlib), copied out."""
    ref = images.ref("ml", versions.load())
    proc = subprocess.run(
        ["docker", "run", "--rm", "-i", "-v", f"{ROOT / 'bench'}:/bench:ro", ref, "python", "/bench/plot.py"],
        input=json.dumps(results).encode(),
        capture_output=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: plot.py failed:\n{proc.stderr.decode()[-3000:]}")
    names = []
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".png"):
                name = Path(member.name).name
                (out / name).write_bytes(tar.extractfile(member).read())
                names.append(name)
    return sorted(names)


def fmt(s: dict[str, float], unit: str = " s", digits: int = 1) -> str:
    return f"{s['min']:.{digits}f} / {s['median']:.{digits}f} / {s['max']:.{digits}f}{unit}"


# Each section's heading in the report, to say where a section comes from an earlier run (--only).
HEADINGS = {
    "startup": "## Start-up",
    "session": "## A new session",
    "overhead": "## Launch overhead of the distributed APIs",
    "imports": "## A cut: pyspark's bytecode on the executors",
    "scaling": "## Scaling",
    "shuffle": "## Shuffle with and without RPC encryption",
    "images": "## Image sizes",
}


def merged(earlier: dict, results: dict) -> dict:
    """--only into a report that exists: the sections not run now stay as the earlier run measured them (each
    keeps the commit and date it was measured at); the header names this run."""
    if earlier.get("target", "compose") != results["target"] or earlier.get("quick"):
        return results
    measured = earlier.get("measured") or {key: earlier["machine"] for key in HEADINGS if key in earlier}
    kept = {key: earlier[key] for key in HEADINGS if key in earlier}
    return {**kept, **results, "measured": dict(measured)}


def provenance(lines: list[str], results: dict) -> list[str]:
    """A line under each section measured by an earlier run than the header's (merged by --only)."""
    now = results["machine"]
    out = []
    for line in lines:
        out.append(line)
        key = next((k for k, heading in HEADINGS.items() if line == heading), None)
        when = results.get("measured", {}).get(key) if key else None
        if when and (when["commit"], when["date"]) != (now["commit"], now["date"]):
            out += ["", f"*Measured by an earlier run: mlrt at {when['commit']}, {when['date']}.*"]
    return out


def report(results: dict, plots: list[str], plot_dir: str) -> str:
    m = results["machine"]
    words = WORDS[results.get("target", "compose")]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run.py`); do not edit. Figures are min / median / max over the runs;",
        "a comparison is a ratio taken pair by pair, the two sides run in turn (A B A B) in the same run.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, Docker {m['docker']};"
        f" mlrt {m['mlrt']} at {m['commit']}, {m['date']}. {words['host']}",
        "",
    ]
    if "startup" in results:
        s = stats(results["startup"]["seconds"])
        lines += [
            "## Start-up",
            "",
            words["startup"],
            "",
            f"| | runs | min / median / max |\n|---|---|---|\n| {words['startup_row']} | {s['runs']} | {fmt(s)} |",
            "",
        ]
    if "session" in results:
        r = results["session"]
        lines += [
            "## A new session",
            "",
            f"A fresh driver process in {words['driver']} (what a notebook's first cell does): from",
            "`SparkSession.builder.getOrCreate()` until it returns, and until both executors are registered.",
            "",
            "| | runs | seconds |\n|---|---|---|",
            f"| getOrCreate() returns | {len(r['getOrCreate'])} | {fmt(stats(r['getOrCreate']))} |",
            f"| both executors registered | {len(r['executors'])} | {fmt(stats(r['executors']))} |",
            f"| then the first catalog call (`SHOW TABLES`) | {len(r['catalog'])} | {fmt(stats(r['catalog']))} |",
            "",
        ]
        if "first_job" in r:
            f = r["first_job"]
            lines += [
                "Ready for its first job: a fresh driver from `getOrCreate()` until an 8-task job is done (a",
                "notebook's first two cells), on the cluster and with `spark.master=local[2]` in the same container,",
                "in turn; the goal is at most 2x local[2].",
                "",
                "| | cluster | local[2] | ratio (min / median / max) |\n|---|---|---|---|",
                f"| first job done | {fmt(stats(f['cluster']))} | {fmt(stats(f['local']))} | "
                f"{fmt(stats(f['ratio']), unit='x')} |",
                "",
            ]
            if f.get("no_archive"):
                lines += [
                    "The same on the cluster without the image's class-data sharing archive",
                    "(`images/spark/cds-archive`; `spark.driver/executor.defaultJavaOptions` and `extraClassPath`",
                    "empty: the JVMs load Spark's classes from the jars), in turn with the runs above; saved =",
                    "without minus with, pair by pair.",
                    "",
                    "| | with the archive | without | saved (min / median / max) |\n|---|---|---|---|",
                    f"| first job done | {fmt(stats(f['cluster']))} | {fmt(stats(f['no_archive']))} | "
                    f"{fmt(stats(f['archive_saves']))} |",
                    "",
                ]
        if "in-memory" in r:
            m, extra = r["in-memory"], r["extra"]
            lines += [
                f"The shared catalog ({r['implementation']}: the deployment's Hive metastore) against Spark's",
                "in-memory catalog per session (`spark.sql.catalogImplementation=in-memory`), the two in turn;",
                "extra = shared minus in-memory, pair by pair. Spark starts the metastore client at the session's",
                "first catalog call, not in `getOrCreate()`.",
                "",
                "| | shared catalog | in-memory | extra (min / median / max) |\n|---|---|---|---|",
                *[
                    f"| {label} | {fmt(stats(r[key]))} | {fmt(stats(m[key]))} | {fmt(stats(extra[key]))} |"
                    for key, label in (
                        ("getOrCreate", "getOrCreate() returns"),
                        ("executors", "both executors registered"),
                        ("catalog", "first catalog call"),
                    )
                ],
                "",
            ]
    if "overhead" in results:
        lines += [
            "## Launch overhead of the distributed APIs",
            "",
            "Trivial work, one driver with its SparkSession already up (a notebook's situation), 2 ranks / workers /",
            "parallel trials. *Extra* is the cluster run's time minus the local run's, pair by pair.",
            "",
            "| API | compared | local (s) | cluster (s) | cluster / local | extra (s) |",
            "|---|---|---|---|---|---|",
        ]
        for name, row in results["overhead"].items():
            if row.get("error"):
                lines.append(f"| {name} | {row['what']} | failed: {row['error']} | | | |")
                continue
            lines.append(
                f"| {name} | {row['what']} | {fmt(stats(row['local']), '', 2)} | {fmt(stats(row['cluster']), '', 2)}"
                f" | {fmt(stats(row['ratio']), '×', 1)} | {fmt(stats(row['extra']), '', 1)} |"
            )
        lines.append("")
    if "imports" in results:
        r = results["imports"]
        lines += [
            "## A cut: pyspark's bytecode on the executors",
            "",
            "Spark puts `pyspark.zip` and py4j's zip first on the path of every Python process an executor starts;",
            "TorchDistributor's and DeepSpeed's ranks, Horovod's task processes and the workers of a new Python",
            "daemon all import pyspark from there. Spark ships the archives with sources only, so each compiled",
            "pyspark again; the image adds the bytecode (`images/spark/compile-python-zips`). Below, a new process's",
            "`import pyspark.ml` on each executor, from the archives as shipped and as in the image, in turn.",
            "",
            "| | as shipped (s) | mlrt image (s) | shipped / image |",
            "|---|---|---|---|",
            f"| import pyspark.ml | {fmt(stats(r['shipped']), '', 2)} | {fmt(stats(r['image']), '', 2)}"
            f" | {fmt(stats(r['ratio']), '×', 2)} |",
            "",
        ]
    if "scaling" in results:
        r = results["scaling"]
        rate = r["calibration"]["steps_per_second"]
        tasks = next(iter(r["setups"].values()))["tasks"]
        lines += [
            "## Scaling",
            "",
            f"A CPU-bound job (pure Python, {tasks} tasks) of {r['core_seconds']} core-seconds, by workers and the",
            "session's `spark.cores.max`: the same number of loop steps in every setup, sized once on an executor",
            f"core ({rate:,.0f} steps/s, median of {len(r['calibration']['rates'])} one-task runs). On this one host",
            "the workers share its cores: more workers cannot add CPU, the figure shows what the scheduling and the",
            "extra executor cost.",
            "",
            "| setup | executors (host: cores) | seconds | core-seconds / seconds |",
            "|---|---|---|---|",
        ]
        for setup, row in r["setups"].items():
            executors = ", ".join(f"{h}: {c}" for h, c in sorted(row["executors"].items()))
            speedup = [r["core_seconds"] / t for t in row["seconds"]]
            lines.append(f"| {setup} | {executors} | {fmt(stats(row['seconds']))} | {fmt(stats(speedup), '×', 2)} |")
        lines.append("")
    if "shuffle" in results:
        r = results["shuffle"]
        lines += [
            "## Shuffle with and without RPC encryption",
            "",
            f"{r['rows']:,} rows of 64-character hashes shuffled between two executor JVMs (`bench/shuffle.py`,",
            "`spark.network.crypto.enabled` true vs false).",
            "",
            "| | encrypted (s) | plain (s) | encrypted / plain |",
            "|---|---|---|---|",
            f"| shuffle | {fmt(stats(r['encrypted']), '')} | {fmt(stats(r['plain']), '')}"
            f" | {fmt(stats(r['ratio']), '×', 2)} |",
            "",
        ]
    if "images" in results:
        lines += [
            "## Image sizes",
            "",
            "What each image adds over its parent (files in its own layers), split into CUDA libraries (NVIDIA's",
            "wheels, Triton, torch's CUDA parts: PyPI's torch carries them and cannot import without them) and the",
            "rest.",
            "",
            "| image | over | layers | CUDA (GB) | other (GB) | total (GB) |",
            "|---|---|---|---|---|---|",
        ]
        for name, row in results["images"].items():
            cuda, other = row["cuda_bytes"] / 1e9, row["other_bytes"] / 1e9
            over = row["parent"] or "Debian"
            lines.append(f"| {name} | {over} | {row['layers']} | {cuda:.2f} | {other:.2f} | {cuda + other:.2f} |")
        lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({plot_dir}/{p})" for p in plots] + [""]
    return "\n".join(provenance(lines, results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=sorted(RUNNERS), default="compose", help="the compose cluster or k8s")
    parser.add_argument("--quick", action="store_true", help="one small run of each: proves they run")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=[])
    parser.add_argument("--out", type=Path, help="where the report goes (default docs/; --quick: build/bench)")
    args = parser.parse_args()
    out = args.out or (ROOT / "build" / "bench" if args.quick else DOCS)
    runners = RUNNERS[args.target]
    if unknown := set(args.only) - set(runners):
        parser.error(f"--target {args.target} has no section {', '.join(sorted(unknown))}: {', '.join(runners)}")
    sections = args.only or list(runners)
    results: dict = {"machine": machine(), "quick": args.quick, "target": args.target}
    name = WORDS[args.target]["report"]
    earlier = out / name / "results.json"
    if args.only and not args.quick and earlier.is_file():
        results = merged(json.loads(earlier.read_text()), results)
    failed: dict[str, str] = {}
    if args.target == "k8s":
        on_k8s.ensure_installed()
    elif set(sections) - {"images", "shuffle"}:
        ensure_up()
    for section in sections:
        log(f"{section} ...")
        started = time.monotonic()
        try:
            results[section] = runners[section](args.quick)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - the other sections still run and are written
            failed[section] = str(error) or type(error).__name__
            log(f"{section} FAILED: {failed[section]}")
            continue
        log(f"{section}: {time.monotonic() - started:.0f} s")
        results.setdefault("measured", {})[section] = results["machine"]
    plot_dir = out / name
    plot_dir.mkdir(parents=True, exist_ok=True)
    (plot_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    plots = plot(results, plot_dir)
    (out / f"{name}.md").write_text(report(results, plots, name))
    log(f"wrote {out / f'{name}.md'} and {len(plots)} plots in {plot_dir}")
    if failed:
        raise SystemExit(f"bench: sections failed: {', '.join(f'{k}: {v}' for k, v in failed.items())}")


if __name__ == "__main__":
    main()
