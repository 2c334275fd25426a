"""templates/jobs/: one CronJob per job (values jobs), its pod the run's Spark driver; the jobs' ConfigMap; secret
scopes mounted for dbutils.secrets (docs/jobs.md, docs/dbutils.md)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tooling import k8s

from .chart import by, env_of

JOBS = k8s.VALUE_SETS / "jobs.yaml"


@pytest.fixture(scope="module")
def docs():
    return k8s.documents(k8s.render([JOBS]))


def cronjobs(docs):
    return {d["metadata"]["labels"]["mlrt.io/job"]: d for d in docs if d["kind"] == "CronJob"}


def test_no_jobs_no_cronjobs_and_no_jobs_configmap():
    docs = k8s.documents(k8s.render())
    assert not [d for d in docs if d["kind"] == "CronJob" or d["metadata"]["name"] == "mlrt-jobs"]


def test_each_job_is_a_cronjob_with_its_schedule_time_zone_policy_and_history(docs):
    jobs = cronjobs(docs)
    assert set(jobs) == {"daily-report", "on-demand", "etl-app"}
    daily = jobs["daily-report"]["spec"]
    assert (daily["schedule"], daily["timeZone"], daily["suspend"]) == ("0 6 * * *", "Europe/Berlin", False)
    assert daily["concurrencyPolicy"] == "Replace" and daily["successfulJobsHistoryLimit"] == 5
    assert daily["failedJobsHistoryLimit"] == 3
    # the runner retries and times out each attempt; Kubernetes' deadline only backs it up
    assert daily["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert daily["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 600 * 3 + 10 * 2 + 300
    # a job without a schedule is there to be run with `make job TARGET=k8s`
    assert jobs["on-demand"]["spec"]["suspend"] is True
    assert "activeDeadlineSeconds" not in jobs["on-demand"]["spec"]["jobTemplate"]["spec"]
    assert jobs["etl-app"]["spec"]["schedule"] == "@hourly"


def test_a_job_pod_is_the_run_s_driver_reading_its_job_from_the_configmap(docs):
    pod = cronjobs(docs)["daily-report"]["spec"]["jobTemplate"]["spec"]["template"]
    assert pod["metadata"]["labels"]["mlrt.io/spark-role"] == "driver"
    container = pod["spec"]["containers"][0]
    assert container["image"].startswith("mlrt/notebook:")
    assert container["args"] == ["python", "-m", "mlrt.jobs", "run", "daily-report", "--trigger", "schedule"]
    env = env_of(pod["spec"])
    assert env["MLRT_JOBS_FILE"] == "/etc/mlrt/jobs/jobs.yaml" and env["MLRT_WORKSPACE_DIR"] == "/tmp/workspace"
    # the lake: managed tables, and the cluster libraries' install (MLRT_LIBRARIES_DIR) the entrypoint writes there
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/opt/mlrt/lake", "/tmp", "/etc/mlrt/jobs"}
    assert env["MLRT_WORKSPACE_URL"] == "http://mlrt-jupyter:8888"
    assert "spark.kubernetes.driver.pod.name=$(SPARK_DRIVER_POD_NAME)" in env["PYSPARK_SUBMIT_ARGS"]
    assert [e for e in container["env"] if e["name"] == "JUPYTER_TOKEN"][0]["valueFrom"]["secretKeyRef"]["key"]
    mounted = yaml.safe_load(by(docs, "ConfigMap", "mlrt-jobs")["data"]["jobs.yaml"])
    assert [j["name"] for j in mounted["jobs"]] == ["daily-report", "on-demand", "etl-app"]
    assert mounted["jobs"][0]["parameters"] == {"table": "sales", "rows": 100}


def test_secret_scopes_are_mounted_read_only_in_jupyterlab_and_job_pods(docs):
    for spec in (by(docs, "StatefulSet", "mlrt-jupyter")["spec"]["template"]["spec"],
                 cronjobs(docs)["on-demand"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]):  # fmt: skip
        mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        for scope in ("demo", "warehouse.creds"):
            mount = mounts[f"/opt/mlrt/secrets/{scope}"]
            assert mount["readOnly"] is True and volumes[mount["name"]]["secret"]["secretName"] == scope


def test_the_names_configmap_publishes_the_jobs_names(docs):
    names = by(docs, "ConfigMap", "mlrt-names")["data"]
    assert names["jobsConfigMap"] == "mlrt-jobs" and names["jobCronJobPrefix"] == "mlrt-job-"
    assert all(d["metadata"]["name"].startswith(names["jobCronJobPrefix"]) for d in cronjobs(docs).values())


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("jobs[0].schedule.cron=61 * *", "/jobs/0/schedule/cron"),
        ("jobs[0].name=Daily_Report", "/jobs/0/name"),
        ("jobs[0].concurrencyPolicy=Sometimes", "/jobs/0/concurrencyPolicy"),
        ("jobs[0].app=x.py", "/jobs/0"),
    ],
)
def test_a_bad_job_is_refused_naming_the_value(item, message):
    cmd = [k8s.tool("helm"), "template", "mlrt", str(k8s.CHART), "--set", "jobs[0].name=daily",
           "--set", "jobs[0].notebook=a.ipynb", "--set", item]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode != 0 and message in done.stderr, done.stderr
