"""Jobs: notebooks and Spark apps run with parameters, now or on a schedule, each run kept (docs/jobs.md).

  python -m mlrt.jobs run NAME [--param KEY=VALUE ...]   run a job of the jobs file now (`make job NAME=...`)
  python -m mlrt.jobs scheduler                         the compose cluster's jobs service: runs the schedules
  python -m mlrt.jobs check [FILE]                      validate a jobs file (every error, each naming its fix)
  python -m mlrt.jobs list                              the jobs, their schedules and next runs, or their errors
  python -m mlrt.jobs attempt SPEC                      one attempt of a run, in this process (the runner's child)

The jobs file (MLRT_JOBS_FILE, default jobs.yaml in the workspace, edited in JupyterLab) has the shape of the Helm
chart's `jobs:` values:

  jobs:
    - name: daily-report                 # letters, digits and -, as Kubernetes names
      notebook: reports/daily.ipynb      # in the workspace; or app: path/to/app.py (spark-submit) with args: [..]
      parameters: {table: sales}         # dbutils.widgets.get("table") in the run
      schedule: {cron: "0 6 * * *", timezone: Europe/Berlin}   # none: the job runs only when asked
      timeoutSeconds: 3600               # the run is stopped (its Spark application too) after this long
      maxRetries: 1                      # a failed run is tried again this many times (a timed-out one is not)
      minRetryIntervalSeconds: 10
      concurrencyPolicy: Forbid          # Allow | Forbid (a run due while one runs is skipped) | Replace
      sparkConf: {spark.cores.max: "2"}  # the run's Spark resources

A run: its notebook executed by papermill in a new kernel (the Spark driver of its own application, named after the
job), parameters as widget values; the executed notebook kept in the workspace (jobs/<name>/<run>.ipynb) beside a
record of the run (<run>.json); an MLflow run in the experiment /jobs/<name> (parameters, status, duration, the
executed notebook as an artifact in the object store).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

WORKSPACE = Path(os.environ.get("MLRT_WORKSPACE_DIR", "/home/mlrt/work"))
JOBS_FILE_ENV = "MLRT_JOBS_FILE"
RUNS_DIR_ENV = "MLRT_JOBS_RUNS_DIR"
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
POLICIES = ("Allow", "Forbid", "Replace")
KEYS = {
    "name", "notebook", "app", "args", "parameters", "schedule", "timeoutSeconds", "maxRetries",
    "minRetryIntervalSeconds", "concurrencyPolicy", "sparkConf", "successfulRunsHistoryLimit",
    "failedRunsHistoryLimit", "suspend",
}  # fmt: skip


class JobError(Exception):
    """A job definition or run request that cannot be done as given; the message names the fix."""


def jobs_file() -> Path:
    return Path(os.environ.get(JOBS_FILE_ENV) or WORKSPACE / "jobs.yaml")


def runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV) or WORKSPACE / "jobs")


@dataclass
class Job:
    name: str
    notebook: str | None = None
    app: str | None = None
    args: list[str] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    cron: str | None = None
    timezone: str = "UTC"
    timeout: int = 0
    retries: int = 0
    retry_interval: int = 10
    policy: str = "Forbid"
    spark_conf: dict[str, str] = field(default_factory=dict)
    suspend: bool = False

    @property
    def source(self) -> Path:
        path = Path(self.notebook or self.app or "")
        return path if path.is_absolute() else WORKSPACE / path

    def trigger(self):
        """APScheduler's cron trigger of the schedule (its own parser: minute hour day month day-of-week)."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from apscheduler.triggers.cron import CronTrigger

        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise JobError(
                f"job {self.name!r}: schedule.timezone {self.timezone!r} is not a time zone; use an IANA name such "
                "as UTC or Europe/Berlin"
            ) from None
        try:
            return CronTrigger.from_crontab(self.cron, timezone=zone)
        except (ValueError, TypeError) as error:
            raise JobError(
                f"job {self.name!r}: schedule.cron {self.cron!r} is not a cron expression ({error}); give five "
                "fields, minute hour day-of-month month day-of-week, e.g. '0 6 * * *' (every day at 6:00)"
            ) from None


def _int(name: str, key: str, value, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise JobError(f"job {name!r}: {key} must be a whole number >= {low}, not {value!r}")
    return value


def parse_job(raw, check_source: bool = True) -> Job:
    """One entry of the jobs file, checked; JobError names what to fix (check_source: its file is here)."""
    if not isinstance(raw, dict):
        raise JobError(f"a job must be a mapping with at least name and notebook (or app), not {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise JobError(
            f"job name {name!r}: use 1-40 lower-case letters, digits and '-' (it names Kubernetes CronJobs and "
            "Spark applications)"
        )
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise JobError(f"job {name!r}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KEYS))}")
    if bool(raw.get("notebook")) == bool(raw.get("app")):
        raise JobError(f"job {name!r}: give exactly one of notebook (a .ipynb path) or app (a .py path)")
    for key, mapping in (("parameters", raw.get("parameters")), ("sparkConf", raw.get("sparkConf"))):
        if mapping is not None and not isinstance(mapping, dict):
            raise JobError(f"job {name!r}: {key} must be a mapping of names to values")
    schedule = raw.get("schedule") or {}
    if not isinstance(schedule, dict) or (schedule and "cron" not in schedule):
        raise JobError(f"job {name!r}: schedule must be a mapping with cron (and timezone), e.g. {{cron: '0 6 * * *'}}")
    policy = raw.get("concurrencyPolicy", "Forbid")
    if policy not in POLICIES:
        raise JobError(f"job {name!r}: concurrencyPolicy {policy!r} is not one of {', '.join(POLICIES)}")
    args = raw.get("args") or []
    if not isinstance(args, list):
        raise JobError(f"job {name!r}: args must be a list of strings")
    job = Job(
        name=name,
        notebook=raw.get("notebook"),
        app=raw.get("app"),
        args=[str(a) for a in args],
        parameters={str(k): str(v) for k, v in (raw.get("parameters") or {}).items()},
        cron=schedule.get("cron"),
        timezone=schedule.get("timezone") or "UTC",
        timeout=_int(name, "timeoutSeconds", raw.get("timeoutSeconds", 0)),
        retries=_int(name, "maxRetries", raw.get("maxRetries", 0)),
        retry_interval=_int(name, "minRetryIntervalSeconds", raw.get("minRetryIntervalSeconds", 10)),
        policy=policy,
        spark_conf={str(k): str(v) for k, v in (raw.get("sparkConf") or {}).items()},
        suspend=bool(raw.get("suspend", False)),
    )
    suffix = ".ipynb" if job.notebook else ".py"
    if job.source.suffix != suffix or (check_source and not job.source.is_file()):
        kind = "notebook" if job.notebook else "app"
        raise JobError(
            f"job {name!r}: {kind} {job.notebook or job.app!r} is not a {suffix} file in the workspace "
            f"({job.source}); give its path relative to the workspace ({WORKSPACE})"
        )
    if job.cron is not None:
        job.trigger()
    return job


def load(path: Path | None = None, check_sources: bool = True) -> tuple[dict[str, Job], list[str]]:
    """The jobs file's valid jobs by name, and one error per invalid job (or for the file)."""
    import yaml

    path = path or jobs_file()
    if not path.exists():
        return {}, []
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        return {}, [f"{path}: not YAML ({error}); fix the file (its jobs are not run until then)"]
    entries = document.get("jobs") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return {}, [f"{path}: expected a top-level `jobs:` list (see docs/jobs.md)"]
    jobs, errors = {}, []
    for raw in entries:
        try:
            job = parse_job(raw, check_sources)
        except JobError as error:
            errors.append(str(error))
            continue
        if job.name in jobs:
            errors.append(f"job {job.name!r} is defined twice; give each job its own name")
            continue
        jobs[job.name] = job
    return jobs, errors


# ---- JupyterLab's workspace over its contents API (Kubernetes: the job pod is not where the notebooks live) -------
def remote() -> tuple[str, str] | None:
    """(JupyterLab's URL, its token) when the workspace is JupyterLab's (MLRT_WORKSPACE_URL), else None."""
    url = os.environ.get("MLRT_WORKSPACE_URL", "").rstrip("/")
    return (url, os.environ.get("JUPYTER_TOKEN", "")) if url else None


def _contents(method: str, path: str, body: dict | None = None) -> dict:
    import urllib.error
    import urllib.parse
    import urllib.request

    url, token = remote()
    request = urllib.request.Request(
        f"{url}/api/contents/{urllib.parse.quote(path)}" + ("?type=file&format=text" if method == "GET" else ""),
        method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        if error.code == 404 and method == "GET":
            raise JobError(f"{path!r} is not in JupyterLab's workspace ({url}); give a path relative to it") from None
        raise JobError(f"JupyterLab's workspace ({url}) answered {error.code} for {method} {path}") from None
    except OSError as error:
        raise JobError(
            f"JupyterLab's workspace ({url}) cannot be reached ({error}); is the release's JupyterLab up?"
        ) from None


def fetch(relative: str) -> Path:
    """A file of JupyterLab's workspace, copied to the same place under WORKSPACE."""
    target = WORKSPACE / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(_contents("GET", relative)["content"])
    return target


def publish(local: Path) -> None:
    """A file under WORKSPACE, written to the same place in JupyterLab's workspace (its folders made first)."""
    relative = local.relative_to(WORKSPACE)
    for depth in range(1, len(relative.parts)):
        _contents("PUT", "/".join(relative.parts[:depth]), {"type": "directory"})
    _contents("PUT", str(relative), {"type": "file", "format": "text", "content": local.read_text()})


# ---- one run -------------------------------------------------------------------------------------------------------
def _kill_tree(process: subprocess.Popen) -> None:
    """Stop an attempt and everything it started (papermill, the kernel, its Spark driver JVM)."""
    import psutil

    try:
        parent = psutil.Process(process.pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for proc in family:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=10)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait()


def spark_submit_args(conf: dict[str, str], current: str = "") -> str:
    """PYSPARK_SUBMIT_ARGS with the conf after the container's own (PySpark splits it as a shell would)."""
    given = [a for a in shlex.split(current) if a != "pyspark-shell"]
    pairs = [shlex.quote(f"--conf={k}={v}") for k, v in conf.items()]
    return " ".join([*map(shlex.quote, given), *pairs, "pyspark-shell"])


def stop_running(name: str) -> None:
    """concurrencyPolicy Replace: stop the job's runs in progress before a new one starts."""
    for process in list(_running.get(name, [])):
        _kill_tree(process)


def run_attempt(spec: dict, timeout: int, log_path: Path, name: str = "") -> tuple[str, str, str]:
    """Run one attempt in a child process; (status, error, exit value). status: SUCCEEDED, FAILED or TIMEDOUT."""
    exit_file = log_path.with_suffix(".exit")
    env = {
        **os.environ,
        "MLRT_JOB_PARAMETERS": json.dumps(spec["parameters"]),
        "MLRT_NOTEBOOK_EXIT_FILE": str(exit_file),
        "PYSPARK_SUBMIT_ARGS": spark_submit_args(spec["spark_conf"], os.environ.get("PYSPARK_SUBMIT_ARGS", "")),
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlrt.jobs", "attempt", json.dumps(spec)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        _running.setdefault(name, []).append(process)
        try:
            code = process.wait(timeout=timeout or None)
        except subprocess.TimeoutExpired:
            _kill_tree(process)
            if spec.get("driver_pod"):  # a cluster-mode driver outlives its client: its executors go with it
                Kube().call("DELETE", f"pods/{spec['driver_pod']}")
            return "TIMEDOUT", f"stopped after its timeout of {timeout} s (timeoutSeconds)", ""
        finally:
            _running[name].remove(process)
    if code < 0:
        return "FAILED", f"stopped by signal {-code} (a newer run replaced it, or the service stopped)", ""
    value = exit_file.read_text() if exit_file.exists() else ""
    exit_file.unlink(missing_ok=True)
    if code == 0:
        return "SUCCEEDED", "", value
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.startswith("mlrt-job-error:")]
    error = lines[-1].split(":", 1)[1].strip() if lines else f"the attempt exited with {code} (its log: {log_path})"
    return "FAILED", error, value


def attempt(spec: dict) -> int:
    """In the attempt process: execute the notebook (papermill) or the app (spark-submit)."""
    if spec.get("driver_pod"):
        return submit_to_kubernetes(spec)
    if spec.get("app"):
        command = [os.path.join(os.environ["SPARK_HOME"], "bin", "spark-submit")]
        for key, value in spec["spark_conf"].items():
            command += ["--conf", f"{key}={value}"]
        code = subprocess.call([*command, spec["app"], *spec["args"]])
        if code:
            print(f"mlrt-job-error: the app exited with {code}", flush=True)
        return 1 if code else 0
    import papermill

    try:
        papermill.execute_notebook(
            spec["notebook"], spec["output"], kernel_name="python3", cwd=str(Path(spec["notebook"]).parent),
            progress_bar=False, log_output=True, request_save_on_cell_execute=True,
        )  # fmt: skip
    except Exception as error:  # noqa: BLE001 - any failure of the run is reported the same way
        if os.path.exists(os.environ.get("MLRT_NOTEBOOK_EXIT_FILE", "")):
            return 0  # dbutils.notebook.exit(value) wrote its value, then ended the notebook
        print(f"mlrt-job-error: {error_summary(error)}", flush=True)
        return 1
    return 0


# Kubernetes (the chart's CronJobs): an app runs through cluster-mode spark-submit, its driver a pod of its own that
# starts from this pod template (the release's, Pod Security "restricted"), with the auth Secret and event-log claim.
DRIVER_TEMPLATE_ENV = "MLRT_JOBS_DRIVER_TEMPLATE"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def cluster_mode() -> bool:
    return bool(os.environ.get(DRIVER_TEMPLATE_ENV))


class Kube:
    """The few calls of the Kubernetes API a cluster-mode app needs, as this pod's service account."""

    def __init__(self) -> None:
        import requests

        self.namespace = (SERVICE_ACCOUNT / "namespace").read_text().strip()
        self.base = f"https://kubernetes.default.svc/api/v1/namespaces/{self.namespace}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {(SERVICE_ACCOUNT / 'token').read_text().strip()}"
        self.session.verify = str(SERVICE_ACCOUNT / "ca.crt")

    def call(self, method: str, path: str, **kwargs):
        answer = self.session.request(method, f"{self.base}/{path}", timeout=60, **kwargs)
        if answer.status_code >= 400 and not (method == "DELETE" and answer.status_code == 404):
            raise JobError(f"Kubernetes API {method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer


# Lines of this pod's Spark defaults that make it a client-mode driver; Spark refuses spark.driver.host in a
# cluster-mode submission (the driver's Service gives it).
CLIENT_MODE_KEYS = {"spark.submit.deployMode", "spark.kubernetes.driver.pod.name", "spark.driver.host",
                    "spark.driver.bindAddress"}  # fmt: skip


def submission_conf(conf_dir: Path, driver: str) -> Path:
    """A copy of the Spark conf directory for a cluster-mode submission: without the client-mode keys."""
    target = Path(f"/tmp/{driver}-conf")
    target.mkdir(exist_ok=True)
    for item in conf_dir.iterdir():
        if item.is_file() and item.name != "spark-defaults.conf":
            (target / item.name).write_bytes(item.read_bytes())
    lines = (conf_dir / "spark-defaults.conf").read_text().splitlines()
    kept = [line for line in lines if not set(line.split()[:1]) & CLIENT_MODE_KEYS]
    (target / "spark-defaults.conf").write_text("\n".join(kept) + "\n")
    return target


def submit_to_kubernetes(spec: dict) -> int:
    """In the attempt process: the app through cluster-mode spark-submit. The app's file reaches the driver pod in a
    ConfigMap (owned by this pod, so it goes with it); the driver's log is copied into the attempt's log; its pod's
    phase is the attempt's result (spark-submit exits 0 whatever the driver did)."""
    import yaml

    kube, app, driver = Kube(), Path(spec["app"]), spec["driver_pod"]
    me = kube.call("GET", f"pods/{os.environ['SPARK_DRIVER_POD_NAME']}").json()["metadata"]
    owner = [{"apiVersion": "v1", "kind": "Pod", "name": me["name"], "uid": me["uid"]}]
    labels = {"app.kubernetes.io/part-of": "mlrt-jobs", "mlrt.io/job": spec["job"]}
    app_map = driver.removesuffix("-driver") + "-app"
    kube.call("POST", "configmaps", json={
        "metadata": {"name": app_map, "labels": labels, "ownerReferences": owner}, "data": {app.name: app.read_text()},
    })  # fmt: skip
    pod = yaml.safe_load(Path(os.environ[DRIVER_TEMPLATE_ENV]).read_text())
    pod.setdefault("metadata", {})["ownerReferences"] = owner  # the driver pod goes with this run's pod
    pod_spec = pod.setdefault("spec", {})
    pod_spec["automountServiceAccountToken"] = True  # the driver creates its executors through the API
    pod_spec.setdefault("volumes", []).extend([
        {"name": "mlrt-app", "configMap": {"name": app_map}},
        {"name": "spark-events", "persistentVolumeClaim": {"claimName": os.environ["MLRT_EVENT_LOG_CLAIM"]}},
    ])  # fmt: skip
    container = pod_spec.setdefault("containers", [{}])[0]
    container.setdefault("volumeMounts", []).extend([
        {"name": "mlrt-app", "mountPath": "/opt/mlrt/app", "readOnly": True},
        {"name": "spark-events", "mountPath": "/opt/mlrt/spark-events"},
    ])  # fmt: skip
    template = Path(f"/tmp/{driver}-template.yaml")
    template.write_text(yaml.safe_dump(pod))
    conf = {
        **spec["spark_conf"],
        "spark.kubernetes.driver.pod.name": driver,
        "spark.kubernetes.driver.podTemplateFile": str(template),
        f"spark.kubernetes.driver.secrets.{os.environ['MLRT_SPARK_AUTH_SECRET']}": "/etc/mlrt/spark-auth",
        "spark.kubernetes.driver.label.mlrt.io/spark-role": "driver",
        "spark.kubernetes.driver.label.mlrt.io/job": spec["job"],
        "spark.kubernetes.driverEnv.MLRT_JOB_PARAMETERS": json.dumps(spec["parameters"]),
        "spark.kubernetes.submission.waitAppCompletion": "true",
    }
    command = [os.path.join(os.environ["SPARK_HOME"], "bin", "spark-submit"), "--deploy-mode", "cluster"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    env = dict(os.environ, SPARK_CONF_DIR=str(submission_conf(Path(os.environ["SPARK_CONF_DIR"]), driver)))
    code = subprocess.call([*command, f"local:///opt/mlrt/app/{app.name}", *spec["args"]], env=env)
    try:
        phase = kube.call("GET", f"pods/{driver}").json()["status"].get("phase")
        print(f"---- the driver pod {driver}: {phase}; its log ----", flush=True)
        print(kube.call("GET", f"pods/{driver}/log").text, flush=True)
    except JobError as error:
        phase = None
        print(f"mlrt-job-error: the driver pod {driver} was not created ({error}); spark-submit exited {code}")
    finally:
        kube.call("DELETE", f"configmaps/{app_map}")
    if phase != "Succeeded":
        if phase:
            print(f"mlrt-job-error: the app's driver pod {driver} ended {phase} (its log is above)", flush=True)
        return 1
    return 0


def error_summary(error: Exception) -> str:
    """One line for a failed run: the exception's name and message, with the JVM's exception when py4j raised."""
    name = getattr(error, "ename", "") or type(error).__name__
    lines = [line.strip(" :") for line in str(getattr(error, "evalue", "") or error).splitlines() if line.strip(" :")]
    text = lines[0] if lines else ""
    java = next((line for line in lines[1:] if re.match(r"^[\w.$]+(Exception|Error)\b", line)), "")
    cell = getattr(error, "exec_count", None)
    return f"{name}: {text}" + (f" {java}" if java else "") + (f" (cell {cell})" if cell else "")


@dataclass
class Run:
    job: str
    run_id: str
    status: str = "RUNNING"
    started: float = 0.0
    duration_s: float = 0.0
    attempts: list[dict] = field(default_factory=list)
    output: str = ""
    error: str = ""
    exit_value: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    trigger: str = "manual"
    mlflow_run_id: str = ""


_running: dict[str, list[subprocess.Popen]] = {}


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y%m%d-%H%M%S")


def run_job(job: Job, parameters: dict[str, str] | None = None, trigger: str = "manual") -> Run:
    """A run of the job: attempts (retries) within the timeout each, its record, its MLflow run."""
    started = time.time()
    run = Run(job.name, f"{_stamp(started)}-{secrets.token_hex(3)}", started=started, trigger=trigger)
    run.parameters = {**job.parameters, **(parameters or {})}
    folder = runs_dir() / job.name
    folder.mkdir(parents=True, exist_ok=True)
    # Kubernetes: the run's executor pods get names of their own (JupyterLab's sessions use the release's prefix).
    prefix = f"{job.name[:30]}-{run.run_id[-6:]}"
    conf = {"spark.app.name": f"job {job.name} {run.run_id}", "spark.kubernetes.executor.podNamePrefix": prefix}
    conf.update(job.spark_conf)
    for number in range(1, job.retries + 2):
        suffix = "" if number == 1 else f"-attempt{number}"
        output = folder / f"{run.run_id}{suffix}{'.ipynb' if job.notebook else '.log'}"
        spec = {
            "notebook": str(job.source) if job.notebook else None, "app": str(job.source) if job.app else None,
            "args": job.args, "output": str(output), "parameters": run.parameters, "spark_conf": conf,
            # Kubernetes: an app runs in cluster mode, its driver a pod of its own (named per attempt)
            "driver_pod": f"{prefix}-{number}-driver" if job.app and cluster_mode() else None, "job": job.name,
        }  # fmt: skip
        begun = time.time()
        log = output.with_suffix(".log") if job.notebook else output
        status, error, value = run_attempt(spec, job.timeout, log, job.name)
        if job.notebook and status == "SUCCEEDED":
            log.unlink(missing_ok=True)
        run.attempts.append({"number": number, "status": status, "error": error, "seconds": time.time() - begun,
                             "output": str(output)})  # fmt: skip
        run.status, run.error, run.exit_value, run.output = status, error, value, str(output)
        if status != "FAILED" or number > job.retries:
            break
        time.sleep(job.retry_interval)
    run.duration_s = round(time.time() - started, 1)
    run.mlflow_run_id = log_to_mlflow(job, run)
    record = folder / f"{run.run_id}.json"
    record.write_text(json.dumps(asdict(run), indent=1) + "\n")
    if remote():
        for kept in [Path(a["output"]) for a in run.attempts] + [record]:
            if kept.exists():
                publish(kept)
    return run


def log_to_mlflow(job: Job, run: Run) -> str:
    """The run in MLflow (experiment /jobs/<name>): parameters, status, duration, attempts, the executed notebook."""
    try:
        import mlflow

        mlflow.set_experiment(f"/jobs/{job.name}")
        status = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "TIMEDOUT": "KILLED"}[run.status]
        with mlflow.start_run(run_name=f"{job.name} {run.run_id}", tags={
            "mlrt.job": job.name, "mlrt.job.run_id": run.run_id, "mlrt.job.status": run.status,
            "mlrt.job.trigger": run.trigger, "mlrt.job.error": run.error[:5000],
            "mlrt.job.source": job.notebook or job.app,
        }) as active:  # fmt: skip
            if run.parameters:
                mlflow.log_params(run.parameters)
            mlflow.log_metrics({"duration_s": run.duration_s, "attempts": len(run.attempts)})
            for attempt_ in run.attempts:
                if Path(attempt_["output"]).exists():
                    mlflow.log_artifact(attempt_["output"], "job-run")
            mlflow.end_run(status)
            return active.info.run_id
    except Exception as error:  # noqa: BLE001 - the run happened; its record says why MLflow has no copy
        run.error = (run.error + "; " if run.error else "") + f"not logged to MLflow: {type(error).__name__}: {error}"
        print(f"mlrt.jobs: {job.name} {run.run_id}: {run.error}", file=sys.stderr, flush=True)
        return ""


def run_child_notebook(path: str, timeout: int, arguments: dict) -> str:
    """dbutils.notebook.run: the notebook (relative to this kernel's directory) in a new kernel; its exit value."""
    source = Path(path)
    if source.suffix != ".ipynb":
        source = source.with_name(source.name + ".ipynb")
    source = source.resolve()
    if not source.is_file() and remote() and source.is_relative_to(WORKSPACE):
        fetch(str(source.relative_to(WORKSPACE)))
    if not source.is_file():
        raise JobError(f"dbutils.notebook.run: no notebook {path!r} ({source}); give a path relative to this notebook")
    parameters = {str(k): str(v) for k, v in arguments.items()}
    folder = runs_dir() / "notebook-runs"
    folder.mkdir(parents=True, exist_ok=True)
    run_id = f"{source.stem}-{_stamp(time.time())}-{secrets.token_hex(3)}"
    output = folder / f"{run_id}.ipynb"
    spec = {"notebook": str(source), "app": None, "args": [], "output": str(output), "parameters": parameters,
            "spark_conf": {"spark.app.name": f"notebook {source.stem}",
                           "spark.kubernetes.executor.podNamePrefix": f"notebook-{run_id[-6:]}"}}  # fmt: skip
    status, error, value = run_attempt(spec, timeout, output.with_suffix(".log"))
    if status != "SUCCEEDED":
        raise JobError(f"dbutils.notebook.run({path!r}): {status.lower()}: {error} (its output: {output})")
    output.with_suffix(".log").unlink(missing_ok=True)
    return value


# ---- the scheduler (compose) ---------------------------------------------------------------------------------------
def write_schedule(scheduler, jobs: dict[str, Job], errors: list[str]) -> None:
    """jobs/schedule.json in the workspace: each job's next run (or that it has none), and the file's errors."""
    folder = runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, job in jobs.items():
        scheduled = scheduler.get_job(name) if scheduler else None
        when = scheduled.next_run_time.isoformat() if scheduled and scheduled.next_run_time else None
        entries[name] = {"cron": job.cron, "timezone": job.timezone, "next_run": when, "suspended": job.suspend}
    document = {"file": str(jobs_file()), "jobs": entries, "errors": errors, "checked": datetime.now(UTC).isoformat()}
    (folder / "schedule.json").write_text(json.dumps(document, indent=1) + "\n")


def scheduled_run(name: str) -> None:
    jobs, _ = load()
    job = jobs.get(name)
    if job is None:
        return
    if job.policy == "Replace":
        stop_running(name)
    run = run_job(job, trigger="schedule")
    print(f"mlrt.jobs: {name} {run.run_id}: {run.status} in {run.duration_s} s {run.error}", flush=True)


def scheduler_main() -> int:
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC", job_defaults={"coalesce": True, "misfire_grace_time": 60})
    state = {"mtime": None, "jobs": {}}
    lock = threading.Lock()

    def reload() -> None:
        path = jobs_file()
        mtime = path.stat().st_mtime if path.exists() else None
        with lock:
            if mtime == state["mtime"] and state["mtime"] is not None:
                return
            state["mtime"] = mtime
            jobs, errors = load(path)
            for scheduled in scheduler.get_jobs():
                if scheduled.id != "mlrt-reload" and scheduled.id not in jobs:
                    scheduled.remove()
            for name, job in jobs.items():
                if job.cron is None or job.suspend:
                    if scheduler.get_job(name):
                        scheduler.remove_job(name)
                    continue
                instances = {"Forbid": 1, "Replace": 2, "Allow": 8}[job.policy]
                scheduler.add_job(scheduled_run, job.trigger(), args=[name], id=name, name=name,
                                  replace_existing=True, max_instances=instances)  # fmt: skip
            for error in errors:
                print(f"mlrt.jobs: {error}", file=sys.stderr, flush=True)
            write_schedule(scheduler, jobs, errors)
            print(f"mlrt.jobs: {path}: {len(jobs)} job(s), {len(errors)} error(s)", flush=True)

    scheduler.add_job(reload, "interval", seconds=int(os.environ.get("MLRT_JOBS_RELOAD_S", "10")),
                      id="mlrt-reload", next_run_time=datetime.now(UTC))  # fmt: skip
    print(f"mlrt.jobs: scheduling the jobs of {jobs_file()}", flush=True)
    scheduler.start()
    return 0


# ---- commands ------------------------------------------------------------------------------------------------------
def _parameters(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise JobError(f"--param {item!r}: give KEY=VALUE")
        values[key] = value
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlrt.jobs", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run a job of the jobs file now")
    run_p.add_argument("name")
    run_p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    run_p.add_argument("--trigger", default="manual", choices=("manual", "schedule"))
    sub.add_parser("scheduler", help="run the jobs file's schedules (the compose jobs service)")
    check_p = sub.add_parser("check", help="validate a jobs file")
    check_p.add_argument("file", nargs="?")
    sub.add_parser("list", help="the jobs and their next runs")
    attempt_p = sub.add_parser("attempt", help=argparse.SUPPRESS)
    attempt_p.add_argument("spec")
    args = parser.parse_args(argv)
    try:
        if args.command == "attempt":
            return attempt(json.loads(args.spec))
        if args.command == "scheduler":
            return scheduler_main()
        here = not (args.command == "run" and remote())  # on Kubernetes the notebook is fetched when it runs
        jobs, errors = load(Path(args.file) if getattr(args, "file", None) else None, check_sources=here)
        if args.command in ("check", "list"):
            for error in errors:
                print(f"error: {error}", file=sys.stderr)
            for job in jobs.values():
                when = f"cron '{job.cron}' {job.timezone}" if job.cron else "no schedule (run it with make job)"
                print(f"{job.name}: {job.notebook or job.app}; {when}")
            return 1 if errors else 0
        if args.name not in jobs:
            hint = next((e for e in errors if repr(args.name) in e), "")
            known = ", ".join(jobs) or "none"
            raise JobError(
                hint or f"no job {args.name!r} in {jobs_file()} (jobs: {known}); add it there (docs/jobs.md)"
            )
        job = jobs[args.name]
        if not here:
            fetch(job.notebook or job.app)
        run = run_job(job, _parameters(args.param), trigger=args.trigger)
        print(json.dumps(asdict(run)))
        return 0 if run.status == "SUCCEEDED" else 1
    except JobError as error:
        print(f"mlrt.jobs: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
