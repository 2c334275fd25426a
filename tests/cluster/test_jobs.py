"""Jobs and dbutils on the compose cluster (docs/jobs.md, docs/dbutils.md): the example notebook scheduled every
minute by the jobs service, run now with parameters by `make job`, a hung job stopped by its timeout; a secret from
`make secret`. One module-wide session of ~3 minutes: the schedule's two runs take most of it, the others run beside
them (each run asks 2 cores, so three fit the cluster's 8 beside nothing else). The logic of runs (retries, bad
input, notebook.run, redaction) is proven in the image's tests (tests/images/test_notebook.py)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
import requests

from tests.cluster.conftest import MLFLOW, master_state, mlflow_account
from tests.conftest import ROOT
from tests.jobs import HANG, TICK, run_together

SECRET = "job-secret-" + uuid.uuid4().hex[:12]
EXAMPLE = "examples/20-dbutils-and-jobs.ipynb"
JOBS = f"""
jobs:
  - name: every-minute
    notebook: jobs-test/tick.ipynb
    parameters: {{rows: "100"}}
    schedule: {{cron: "* * * * *", timezone: Europe/Berlin}}
    timeoutSeconds: 170
  - name: demo-now
    notebook: {EXAMPLE}
    parameters: {{name: demo-now, secret_scope: demo}}
    timeoutSeconds: 170
    sparkConf: {{spark.cores.max: "2"}}
  - name: hang
    notebook: jobs-test/hang.ipynb
    timeoutSeconds: 45
    sparkConf: {{spark.cores.max: "2"}}
"""


def in_jupyter(script: str, *args: str, stdin: str = "", timeout: int = 60) -> str:
    done = subprocess.run(
        ["docker", "compose", "exec", "-T", "jupyter", "python", "-c", script, *args],
        cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


WRITE = "import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); "
RUNS = """
import json, pathlib
out = {}
for record in sorted(pathlib.Path("/home/mlrt/work/jobs").glob("*/*.json")):
    if record.name == "schedule.json":
        continue
    run = json.loads(record.read_text())
    saved = pathlib.Path(run["output"])
    run["notebook"] = saved.read_text() if saved.suffix == ".ipynb" and saved.exists() else ""
    out.setdefault(run["job"], []).append(run)
print(json.dumps(out))
"""


def write_file(path: str, text: str) -> None:
    in_jupyter(WRITE + "p.write_text(sys.stdin.read())", path, stdin=text)


def job_apps() -> list[str]:
    return [a["name"] for a in master_state().get("activeapps", []) if a["name"].startswith("job ")]


@pytest.fixture(scope="module")
def jobs_session():
    stored = subprocess.run(["make", "-s", "secret", "SCOPE=demo", "KEY=token"], cwd=ROOT, input=SECRET + "\n",
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    in_jupyter("import shutil; shutil.rmtree('/home/mlrt/work/jobs', ignore_errors=True)")
    write_file("/home/mlrt/work/jobs-test/hang.ipynb", HANG)
    write_file("/home/mlrt/work/jobs-test/tick.ipynb", TICK)
    started = time.monotonic()
    write_file("/home/mlrt/work/jobs.yaml", JOBS)
    made: dict = {}

    def make_job(name: str, *params: str) -> None:
        began = time.monotonic()
        args = ["make", "-s", "job", f"NAME={name}"] + ([f"PARAMS={' '.join(params)}"] if params else [])
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
        made[name] = {"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-3000:],
                      "seconds": time.monotonic() - began}  # fmt: skip

    def watch_hang() -> None:
        seen = []
        while "hang" not in made and time.monotonic() - started < 300:
            seen.append(job_apps())
            time.sleep(2)
        made["hang-apps-during"] = [a for apps in seen for a in apps if a.startswith("job hang")]

    run_together(lambda: make_job("demo-now", "rows=1000"), lambda: make_job("hang"), watch_hang)
    freed = time.monotonic() + 20  # the master ends an application when its driver's connection drops
    while [a for a in job_apps() if a.startswith("job hang")] and time.monotonic() < freed:
        time.sleep(1)
    made["apps-after-hang"] = job_apps()
    deadline = started + 200
    runs: dict = {}
    while time.monotonic() < deadline:
        runs = json.loads(in_jupyter(RUNS))
        if len([r for r in runs.get("every-minute", []) if r["trigger"] == "schedule"]) >= 2:
            break
        time.sleep(5)
    schedule = json.loads(in_jupyter("print(open('/home/mlrt/work/jobs/schedule.json').read())"))
    in_jupyter("import os; os.remove('/home/mlrt/work/jobs.yaml')")
    while job_apps() and time.monotonic() < deadline + 120:  # a run the schedule started meanwhile ends
        time.sleep(3)
    yield {"runs": runs, "made": made, "schedule": schedule, "seconds": time.monotonic() - started}


def test_a_scheduled_job_runs_every_minute_on_its_own_and_keeps_each_run(jobs_session):
    scheduled = [r for r in jobs_session["runs"].get("every-minute", []) if r["trigger"] == "schedule"]
    assert len(scheduled) >= 2, jobs_session["runs"]
    assert jobs_session["schedule"]["jobs"]["every-minute"]["timezone"] == "Europe/Berlin"
    assert jobs_session["schedule"]["errors"] == []
    for run in scheduled[:2]:
        assert run["status"] == "SUCCEEDED", run
        assert run["exit_value"] == "100"
        assert "the token is [REDACTED]" in run["notebook"] and SECRET not in run["notebook"]
        assert run["mlflow_run_id"], run
    # each on a minute of its own, at its start (a minute whose run would overlap the last is skipped: Forbid)
    starts = sorted(r["started"] for r in scheduled)
    assert all(s % 60 < 10 for s in starts) and starts[1] - starts[0] > 50, starts


def test_make_job_runs_now_with_parameters_and_dbutils_fs_lists_what_executors_on_both_workers_wrote(jobs_session):
    made = jobs_session["made"]["demo-now"]
    assert made["code"] == 0, made
    run = json.loads(made["stdout"].strip().splitlines()[-1])
    assert run["status"] == "SUCCEEDED" and run["parameters"]["rows"] == "1000", run
    value = json.loads(run["exit_value"])
    assert value["rows"] == 1000 and value["hosts"] == 2 and value["folder"].startswith("s3a://lake/"), value
    saved = next(r["notebook"] for r in jobs_session["runs"]["demo-now"] if r["run_id"] == run["run_id"])
    assert "host=" in saved and "is [REDACTED] (" in saved and SECRET not in saved


def test_each_run_has_its_mlflow_run_and_its_spark_application_in_the_history_server(jobs_session):
    run = next(r for r in jobs_session["runs"]["demo-now"] if r["status"] == "SUCCEEDED")
    answer = requests.get(f"{MLFLOW}/api/2.0/mlflow/runs/get", params={"run_id": run["mlflow_run_id"]},
                          auth=mlflow_account(), timeout=30).json()["run"]  # fmt: skip
    tags = {t["key"]: t["value"] for t in answer["data"]["tags"]}
    params = {p["key"]: p["value"] for p in answer["data"]["params"]}
    assert answer["info"]["status"] == "FINISHED" and tags["mlrt.job"] == "demo-now" and params["rows"] == "1000"
    artifacts = requests.get(f"{MLFLOW}/api/2.0/mlflow/artifacts/list",
                             params={"run_id": run["mlflow_run_id"], "path": "job-run"},
                             auth=mlflow_account(), timeout=30).json()  # fmt: skip
    assert any(f["path"].endswith(f"{run['run_id']}.ipynb") for f in artifacts.get("files", [])), artifacts
    # named after the run (over the notebook's own .appName(...)), as the hung job's
    apps = requests.get("http://127.0.0.1:18080/api/v1/applications", timeout=30).json()
    assert any(a["name"] == f"job demo-now {run['run_id']}" for a in apps), [a["name"] for a in apps][:20]
    assert any(a["name"].startswith("job hang ") for a in apps), [a["name"] for a in apps][:20]


def test_a_timeout_stops_a_hung_job_and_frees_its_executors(jobs_session):
    made = jobs_session["made"]
    assert made["hang"]["code"] != 0, made["hang"]  # make job exits non-zero when the run did not succeed
    run = json.loads(made["hang"]["stdout"].strip().splitlines()[-1])
    assert run["status"] == "TIMEDOUT" and "timeout of 45 s" in run["error"], run
    assert made["hang"]["seconds"] < 90, made["hang"]["seconds"]
    assert made["hang-apps-during"], "the hung job's Spark application never ran on the cluster"
    assert not [a for a in made["apps-after-hang"] if a.startswith("job hang")], made["apps-after-hang"]
