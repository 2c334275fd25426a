"""Run a job now (docs/jobs.md), on the compose cluster or a Kubernetes release, and wait for its run.

  python -m scripts.job compose NAME [--param KEY=VALUE ...]
  python -m scripts.job k8s NAME [--param KEY=VALUE ...] [--namespace NS] [--release NAME] [--kubeconfig PATH]
  (make job NAME=... [PARAMS="key=value ..."] [TARGET=k8s])

Compose: the jobs service runs it (a job of jobs.yaml in the workspace). Kubernetes: a Job made from the job's
CronJob (as `kubectl create job --from=cronjob/...`, with the parameters added), its pod followed to the end.
Prints the run's record (JSON, its last line); the exit status is the run's (0: SUCCEEDED).
"""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
import sys
import time

from scripts.submit import (
    ROOT,
    BadInput,
    compose_running,
    k8s_client,
    kubeconfig_path,
    release_arguments,
    release_names,
)

PARAM = re.compile(r"^[^=\s]+=.*$")


def parameters(items: list[str]) -> list[str]:
    for item in items:
        if not PARAM.match(item):
            raise BadInput(f'parameter {item!r}: give KEY=VALUE (PARAMS="key=value other=value")')
    return [arg for item in items for arg in ("--param", item)]


def compose(name: str, params: list[str]) -> int:
    if "jobs" not in compose_running():
        raise BadInput("the compose cluster's jobs service is not running; start the cluster with `make up`")
    command = ["docker", "compose", "exec", "-T", "jobs", "python", "-m", "mlrt.jobs", "run", name, *params]
    return subprocess.run(command, cwd=ROOT).returncode


def k8s(name: str, params: list[str], args: argparse.Namespace) -> int:
    from kubernetes import client

    api, _ = k8s_client(kubeconfig_path(args.kubeconfig))
    names = release_names(api, args.namespace, args.release)
    cronjob_name = f"{names['jobCronJobPrefix']}{name}"[:52].rstrip("-")
    batch = client.BatchV1Api()
    try:
        cronjob = batch.read_namespaced_cron_job(cronjob_name, args.namespace)
    except client.ApiException as err:
        if err.status != 404:
            raise
        selector = f"app.kubernetes.io/instance={args.release},app.kubernetes.io/component=job"
        listed = batch.list_namespaced_cron_job(args.namespace, label_selector=selector)
        known = ", ".join(c.metadata.labels.get("mlrt.io/job", "?") for c in listed.items) or "none"
        raise BadInput(f"release {args.release!r} has no job {name!r} (its jobs: {known}); add it to the chart's "
                       "`jobs:` values and upgrade") from None  # fmt: skip
    spec = cronjob.spec.job_template.spec
    container = spec.template.spec.containers[0]
    container.args = [*[a for a in container.args if a not in ("--trigger", "schedule")], *params]
    job_name = f"{cronjob_name[:44]}-{secrets.token_hex(3)}"
    job = client.V1Job(
        metadata=client.V1ObjectMeta(
            name=job_name, labels=(cronjob.spec.job_template.metadata or client.V1ObjectMeta()).labels,
            annotations={"cronjob.kubernetes.io/instantiate": "manual"},
            owner_references=[client.V1OwnerReference(api_version="batch/v1", kind="CronJob", name=cronjob_name,
                                                      uid=cronjob.metadata.uid)],
        ),
        spec=spec,
    )  # fmt: skip
    batch.create_namespaced_job(args.namespace, job)
    print(f"job: {args.namespace}/{job_name} (from cronjob/{cronjob_name})", file=sys.stderr)
    while True:
        status = batch.read_namespaced_job_status(job_name, args.namespace).status
        if status.succeeded or status.failed:
            break
        time.sleep(3)
    pods = api.list_namespaced_pod(args.namespace, label_selector=f"job-name={job_name}").items
    if pods:
        log = api.read_namespaced_pod_log(pods[0].metadata.name, args.namespace)
        lines = [line for line in log.splitlines() if line.startswith("{")]
        print(lines[-1] if lines else log[-3000:])
    return 0 if status.succeeded else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=["compose", "k8s"])
    parser.add_argument("name")
    parser.add_argument("--param", action="append", default=[])
    release_arguments(parser)
    args = parser.parse_args(argv)
    try:
        params = parameters(args.param)
        if args.target == "compose":
            return compose(args.name, params)
        return k8s(args.name, params, args)
    except BadInput as err:
        print(f"job: ERROR: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
