"""spark-submit a Python application to the compose cluster or to Kubernetes, checking the input first.

  python -m scripts.submit compose APP.py [--conf spark.x=y ...] [-- APP ARGS]
  python -m scripts.submit k8s APP.py [--namespace NS] [--release NAME] [--image IMAGE]
                                      [--conf spark.x=y ...] [-- APP ARGS]

compose: copies APP.py into the driver (jupyter) container and runs spark-submit there (client mode, the
standalone master). k8s: cluster mode on the cluster of the current kubeconfig, with the release's image,
service account and Spark defaults; the application travels in a ConfigMap mounted into the driver pod.
Every check (kubeconfig, cluster reachable, namespace, service account, image, application file, conf) runs
before anything is created; a failed check names the fix.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from tooling import versions

ROOT = versions.ROOT


class BadInput(Exception):
    pass


def parse_conf(items: list[str]) -> dict[str, str]:
    conf = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("spark.") or not value or " " in key:
            raise BadInput(f"invalid --conf {item!r}: write it as spark.some.key=value (e.g. spark.executor.memory=2g)")
        conf[key] = value
    return conf


def check_app(path: str) -> Path:
    app = Path(path)
    if not app.is_file():
        raise BadInput(f"application file {path} does not exist; give the path of a Python file")
    if app.suffix != ".py":
        raise BadInput(f"application {path} is not a .py file; this command submits Python applications")
    return app


def submit_args(conf: dict[str, str]) -> list[str]:
    return [arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")]


def compose_running() -> set[str]:
    """The compose cluster's running services (none when it is down or compose cannot tell)."""
    state = subprocess.run(
        ["docker", "compose", "ps", "--status", "running", "--services"], cwd=ROOT, capture_output=True, text=True
    )
    return set(state.stdout.split()) if state.returncode == 0 else set()


def compose(app: Path, conf: dict[str, str], app_args: list[str]) -> int:
    if "jupyter" not in compose_running():
        raise BadInput("the compose cluster is not running (no jupyter service); start it with `make up`")
    target = f"/tmp/mlrt-submit-{uuid.uuid4().hex[:8]}-{app.name}"
    subprocess.run(
        ["docker", "compose", "cp", str(app), f"jupyter:{target}"], cwd=ROOT, check=True, capture_output=True
    )
    return subprocess.run(
        ["docker", "compose", "exec", "-T", "jupyter", "spark-submit", *submit_args(conf), target, *app_args], cwd=ROOT
    ).returncode


def kubeconfig_path(given: str | None) -> str:
    """--kubeconfig, else the first file of KUBECONFIG, else ~/.kube/config."""
    return (given or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")).split(":")[0]


def k8s_client(path: str):
    from kubernetes import client, config

    if not Path(path).is_file():
        raise BadInput(
            f"no kubeconfig at {path}; set KUBECONFIG or pass --kubeconfig (make k8s-up creates one "
            "for the Kubernetes test cluster)"
        )
    try:
        config.load_kube_config(config_file=path)
    except Exception as err:  # the client raises several types for unreadable configs
        raise BadInput(f"kubeconfig {path} is unusable ({err}); fix it or point KUBECONFIG at another") from err
    api = client.CoreV1Api()
    host = client.Configuration.get_default_copy().host
    try:
        client.VersionApi().get_code(_request_timeout=10)
    except Exception as err:
        raise BadInput(
            f"cannot reach the Kubernetes API at {host} ({type(err).__name__}); check the cluster "
            "and your kubeconfig's current context"
        ) from err
    return api, host


NAMES_SELECTOR = "app.kubernetes.io/instance={release},app.kubernetes.io/component=names"


def driver_image(names: dict[str, str]) -> str:
    """The release's own ml image (its image.registry and tag, published in its names ConfigMap). Without a
    registry the nodes must already have it, as this host does after `make build` (a one-node or kind cluster);
    a real multi-node cluster pulls from a registry: `make push REGISTRY=...` and the chart's image.registry."""
    image = names.get("mlImage") or f"mlrt/ml:{versions.load()['MLRT_VERSION']}"
    if "/" not in image.removeprefix("mlrt/"):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
            raise BadInput(
                f"image {image} is not present here, and the release names no registry; run `make build`, "
                "then on a multi-node cluster `make push REGISTRY=host[:port]/path` and install or upgrade the "
                "release with `--set image.registry=host[:port]/path` (or pass --image with an image your cluster "
                "can pull)"
            )
        print(f"submit: the driver image {image} has no registry: the cluster's nodes must have it loaded; for a "
              f"multi-node cluster: make push REGISTRY=host[:port]/path, then --set image.registry=host[:port]/path",
              file=sys.stderr)  # fmt: skip
    return image


def release_names(api, namespace: str, release: str) -> dict[str, str]:
    """The names the release publishes in its names ConfigMap (the chart's templates/names.yaml), found by its
    labels: the chart defines its objects' names once and this reads them rather than recomputing them."""
    from kubernetes.client.exceptions import ApiException

    try:
        found = api.list_namespaced_config_map(namespace, label_selector=NAMES_SELECTOR.format(release=release)).items
    except ApiException as err:
        raise BadInput(f"cannot list ConfigMaps in namespace {namespace} ({err.reason}); check your RBAC") from err
    if len(found) != 1:
        raise BadInput(
            f"no mlrt release {release!r} in namespace {namespace} (no ConfigMap labelled "
            f"{NAMES_SELECTOR.format(release=release)}); install the chart (or its kustomize overlay) or pass "
            "--release and --namespace"
        )
    return found[0].data


# Lines of the release's spark-defaults.conf that describe its notebook driver (client mode), not a submission.
CLIENT_MODE_KEYS = {"spark.master", "spark.submit.deployMode", "spark.kubernetes.driver.pod.name", "spark.driver.host"}


def submission_defaults(release_defaults: str) -> str:
    """The release's Spark defaults (executor sizes, auth secret, event log, MLflow...) for a cluster-mode driver."""
    kept = [line for line in release_defaults.splitlines() if not set(line.split()[:1]) & CLIENT_MODE_KEYS]
    return "\n".join(kept) + "\n"


def driver_template(executor_template: str, app_map: str, events_claim: str) -> str:
    """The release's pod template plus the application's ConfigMap at /opt/mlrt/app and the event-log claim
    (Spark's own volume options know no ConfigMaps; a pod template can carry any volume)."""
    import yaml

    pod = yaml.safe_load(executor_template)
    spec = pod.setdefault("spec", {})
    spec["automountServiceAccountToken"] = True  # the driver creates its executors through the API
    spec.setdefault("volumes", []).extend(
        [
            {"name": "mlrt-app", "configMap": {"name": app_map}},
            {"name": "spark-events", "persistentVolumeClaim": {"claimName": events_claim}},
        ]
    )
    container = spec.setdefault("containers", [{}])[0]
    container.setdefault("volumeMounts", []).extend(
        [
            {"name": "mlrt-app", "mountPath": "/opt/mlrt/app", "readOnly": True},
            {"name": "spark-events", "mountPath": "/opt/mlrt/spark-events"},
        ]
    )
    return yaml.safe_dump(pod, sort_keys=False)


def k8s(app: Path, conf: dict[str, str], app_args: list[str], args: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    kubeconfig = kubeconfig_path(args.kubeconfig)
    api, host = k8s_client(kubeconfig)
    try:
        api.read_namespace(args.namespace)
    except ApiException as err:
        raise BadInput(
            f"namespace {args.namespace!r} does not exist (or is not readable); pass --namespace "
            f"with the namespace of your mlrt release (helm install -n NS)"
        ) from err
    names = release_names(api, args.namespace, args.release)
    name = names["prefix"]
    image = args.image or driver_image(names)
    try:
        api.read_namespaced_service_account(names["serviceAccount"], args.namespace)
        spark_map = api.read_namespaced_config_map(names["sparkConfigMap"], args.namespace).data
        template, release_defaults = spark_map["executor-pod-template.yaml"], spark_map["spark-defaults.conf"]
    except (ApiException, KeyError, TypeError) as err:
        raise BadInput(
            f"mlrt release {args.release!r} in namespace {args.namespace} is incomplete (service account "
            f"{names['serviceAccount']} / ConfigMap {names['sparkConfigMap']}); reinstall the chart"
        ) from err

    run_id = uuid.uuid4().hex[:8]
    app_map = f"{name}-app-{run_id}"
    driver_pod = f"{name}-submit-{run_id}-driver"
    api.create_namespaced_config_map(
        args.namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=app_map, labels={"app.kubernetes.io/part-of": "mlrt-submit"}),
            data={app.name: app.read_text()},
        ),
    )
    conf = {
        "spark.kubernetes.namespace": args.namespace,
        # The release's auth secret for the driver (its executors get it from the release's defaults).
        f"spark.kubernetes.driver.secrets.{names['sparkAuthSecret']}": "/etc/mlrt/spark-auth",
        "spark.kubernetes.container.image": image,
        "spark.kubernetes.authenticate.driver.serviceAccountName": names["serviceAccount"],
        # Pod Security "restricted" for the driver and its executors, from the release's template.
        "spark.kubernetes.driver.podTemplateFile": "/tmp/mlrt/driver-pod-template.yaml",
        "spark.kubernetes.executor.podTemplateFile": "/tmp/mlrt/pod-template.yaml",
        "spark.kubernetes.driver.label.mlrt.io/spark-role": "driver",
        "spark.kubernetes.driver.pod.name": driver_pod,
        **conf,
    }
    notebook = f"mlrt/notebook:{versions.load()['MLRT_VERSION']}"  # the local submitting client
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "pod-template.yaml").write_text(template)
        (Path(tmp) / "driver-pod-template.yaml").write_text(driver_template(template, app_map, names["eventLogClaim"]))
        (Path(tmp) / "conf").mkdir()
        (Path(tmp) / "conf" / "spark-defaults.conf").write_text(submission_defaults(release_defaults))
        os.chmod(Path(tmp) / "conf", 0o755)
        # The client runs as the image's non-root user: give it a readable copy of the kubeconfig (the
        # original is often mode 600), in a directory removed when the submission returns.
        (Path(tmp) / "kubeconfig").write_text(Path(kubeconfig).read_text())
        os.chmod(Path(tmp) / "kubeconfig", 0o644)
        os.chmod(tmp, 0o755)
        submitted = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "host",
                "-v",
                f"{tmp}:/tmp/mlrt:ro",
                "-e",
                "KUBECONFIG=/tmp/mlrt/kubeconfig",
                "-e",
                "SPARK_DEFAULTS_FILE=/tmp/mlrt/conf/spark-defaults.conf",
                notebook,
                "spark-submit",
                "--master",
                f"k8s://{host}",
                "--deploy-mode",
                "cluster",
                *submit_args(conf),
                f"local:///opt/mlrt/app/{app.name}",
                *app_args,
            ]
        ).returncode
    # The application's ConfigMap served the driver, which has finished (spark-submit waits for it).
    api.delete_namespaced_config_map(app_map, args.namespace)
    # spark-submit exits 0 in cluster mode whatever the driver did: the driver pod's phase is the answer.
    try:
        phase = api.read_namespaced_pod(driver_pod, args.namespace).status.phase
    except ApiException:
        phase = None
    print(f"submit: driver pod {args.namespace}/{driver_pod}: {phase or 'not created'}", file=sys.stderr)
    if submitted != 0:
        return submitted
    if phase != "Succeeded":
        print(f"submit: the application failed; see `kubectl -n {args.namespace} logs {driver_pod}`", file=sys.stderr)
        return 1
    return 0


def release_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that find a Helm release (shared by make submit and make job)."""
    parser.add_argument("--namespace", default="mlrt")
    parser.add_argument("--release", default="mlrt")
    parser.add_argument("--kubeconfig")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=["compose", "k8s"])
    parser.add_argument("app")
    parser.add_argument("--conf", action="append", default=[])
    parser.add_argument("--image")
    release_arguments(parser)
    argv = sys.argv[1:] if argv is None else argv
    app_args: list[str] = []
    if "--" in argv:
        app_args = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    args = parser.parse_args(argv)
    try:
        app = check_app(args.app)
        conf = parse_conf(args.conf)
        if args.target == "compose":
            return compose(app, conf, app_args)
        return k8s(app, conf, app_args, args)
    except BadInput as err:
        print(f"submit: ERROR: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
