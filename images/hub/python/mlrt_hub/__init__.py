"""mlrt's JupyterHub configuration (the chart's hub.enabled): a team workspace on Kubernetes.

The chart renders its values into one settings file (MLRT_HUB_SETTINGS, /etc/mlrt/hub/hub.yaml) and the Spark
defaults of hub users (beside it); /opt/mlrt/hub/jupyterhub_config.py calls `configure(c, settings)`.

Each user's server is a pod of the notebook image (KubeSpawner) and the Spark driver of their sessions in client
mode. Before it starts, `Workspace.pre_spawn` makes what is the user's own, in the release's namespace:
  <release>-spark-auth-<user>  Secret: the Spark RPC secret of their driver and executors (another user's
                               executors cannot talk to them)
  <release>-mlflow-<user>      Secret: their MLflow account (created on the MLflow server through its auth API with
                               the admin account) when MLflow authentication is on
  <release>-spark-<user>       ConfigMap: their Spark defaults: the release's, plus their executors' name prefix,
                               user label (mlrt.io/user) and Secrets, and their pod as the executors' owner (the
                               executor pods go with their server)
and their workspace claim (KubeSpawner's, kept when the server stops).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import yaml
from kubespawner.slugs import safe_slug
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator import handlers as native_handlers
from nativeauthenticator.orm import UserInfo

SETTINGS = Path(os.environ.get("MLRT_HUB_SETTINGS", "/etc/mlrt/hub/hub.yaml"))
USER_LABEL = "mlrt.io/user"


def load_settings(path: Path = SETTINGS) -> dict:
    return yaml.safe_load(path.read_text())


def user_slug(name: str) -> str:
    """A DNS-label-safe form of a hub user name (object names, labels, executor pod name prefixes)."""
    return safe_slug(name, max_length=24)


class NoStatsd:
    """JupyterHub 6 dropped its statsd client; NativeAuthenticator 1.3.0 (its newest) still times logins with it."""

    def timer(self, name):
        return self

    def start(self):
        return self

    def stop(self, send=True):
        pass


class LoginHandler(native_handlers.LoginHandler):
    """NativeAuthenticator's login page, on JupyterHub 6: no statsd, and its error page's extra arguments taken."""

    statsd = NoStatsd()

    def _render(self, login_error=None, username=None, **kwargs):
        return super()._render(login_error=login_error, username=username)


class MlrtNativeAuthenticator(NativeAuthenticator):
    """NativeAuthenticator (sign-up, admin approval) whose admin accounts exist from the start: each admin of the
    chart's values gets the password of the hub's Secret (MLRT_HUB_ADMIN_PASSWORD_FILE) unless the account exists
    (a changed password stays changed). Nobody can claim an admin name by signing up first."""

    def get_handlers(self, app):
        return [
            (path, LoginHandler if handler is native_handlers.LoginHandler else handler)
            for path, handler in super().get_handlers(app)
        ]

    def add_new_table(self):
        super().add_new_table()
        password_file = os.environ.get("MLRT_HUB_ADMIN_PASSWORD_FILE", "")
        if not password_file:
            return
        password = Path(password_file).read_text().strip().encode()
        import bcrypt

        for name in sorted(self.admin_users):
            if not UserInfo.find(self.db, name):
                hashed = bcrypt.hashpw(password, bcrypt.gensalt())
                self.db.add(UserInfo(username=name, password=hashed, is_authorized=True))
                self.log.info("mlrt: admin account %s created with the hub Secret's password", name)
        self.db.commit()


def spark_auth_secret(settings: dict, name: str) -> str:
    """The Secret with the user's own Spark RPC secret (their driver's and executors')."""
    return f"{settings['release']}-spark-auth-{user_slug(name)}"


def mlflow_secret(settings: dict, name: str) -> str:
    """The Secret with the user's MLflow account: their own, or for a hub admin whose name is MLflow's admin
    account's ("admin" by default, as is the hub's first admin's), that account's."""
    mlflow = settings["mlflow"]
    if name == mlflow.get("adminUsername"):
        return mlflow["adminSecret"]
    return f"{settings['release']}-mlflow-{user_slug(name)}"


def user_conf_lines(settings: dict, name: str, pod_name: str) -> list[str]:
    """The Spark defaults lines that are a user's own (after the release's hub-user defaults)."""
    release, slug = settings["release"], user_slug(name)
    lines = [
        f"# ---- hub user {name} ----",
        f"spark.kubernetes.driver.pod.name {pod_name}",
        f"spark.kubernetes.executor.podNamePrefix {release}-exec-{slug}",
        f"spark.kubernetes.executor.label.{USER_LABEL} {slug}",
        f"spark.kubernetes.executor.secrets.{spark_auth_secret(settings, name)} /etc/mlrt/spark-auth",
        f"spark.executorEnv.LOGNAME {name}",
        f"spark.executorEnv.SPARK_USER {name}",
        f"spark.executor.instances {settings['singleuser']['executors']}",
        f"spark.dynamicAllocation.maxExecutors {settings['singleuser']['executors']}",
    ]
    if settings["mlflow"].get("auth"):
        secret = mlflow_secret(settings, name)
        lines += [
            f"spark.kubernetes.executor.secrets.{secret} /etc/mlrt/mlflow",
            "spark.executorEnv.MLRT_MLFLOW_CREDENTIALS_DIR /etc/mlrt/mlflow",
            f"spark.kubernetes.driver.secrets.{secret} /etc/mlrt/mlflow",
            "spark.kubernetes.driverEnv.MLRT_MLFLOW_CREDENTIALS_DIR /etc/mlrt/mlflow",
        ]
    return lines


class Workspace:
    """What a user's server needs before it starts (see the module's docstring)."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.namespace = settings["namespace"]
        self.release = settings["release"]
        admin = Path(settings["mlflow"].get("adminCredentialsDir", "/nonexistent")) / "username"
        if admin.is_file():  # MLflow's admin account's name (mlflow.auth.username or the existing Secret's)
            settings["mlflow"]["adminUsername"] = admin.read_text().strip()

    def labels(self, slug: str) -> dict:
        return {**self.settings["labels"], USER_LABEL: slug}

    async def owner(self, api) -> dict:
        """The hub's settings ConfigMap as an owner reference: what it owns goes with `helm uninstall`."""
        owner = await api.read_namespaced_config_map(f"{self.release}-hub", self.namespace)
        return {"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid}

    def metadata(self, name: str, slug: str, owner: dict) -> dict:
        """A user's objects are owned by the hub's settings (the user's workspace claim is not: it stays)."""
        return {"name": name, "labels": self.labels(slug), "ownerReferences": [owner]}

    def own_pod(self, spawner, pod):
        """KubeSpawner's modify_pod_hook: the user's server is owned by the hub's settings too, so `helm uninstall`
        stops it (and its executors, which it owns) instead of leaving it running on the release's claims."""
        from kubernetes_asyncio.client import V1OwnerReference

        owner = spawner.mlrt_owner
        reference = V1OwnerReference(
            api_version=owner["apiVersion"], kind=owner["kind"], name=owner["name"], uid=owner["uid"]
        )
        pod.metadata.owner_references = [*(pod.metadata.owner_references or []), reference]
        return pod

    async def core(self):
        from kubespawner.clients import shared_client

        return shared_client("CoreV1Api")

    async def ensure_secret(self, api, name: str, slug: str, owner: dict, data: dict[str, str]) -> dict[str, str]:
        """The Secret's data if it exists (kept: the user's accounts stay the same), else it is created from data."""
        from kubernetes_asyncio.client.rest import ApiException

        try:
            found = await api.read_namespaced_secret(name, self.namespace)
            return {k: base64.b64decode(v).decode() for k, v in (found.data or {}).items()}
        except ApiException as err:
            if err.status != 404:
                raise
        body = {"metadata": self.metadata(name, slug, owner), "type": "Opaque", "stringData": data}
        await api.create_namespaced_secret(self.namespace, body)
        return data

    async def ensure_configmap(self, api, name: str, slug: str, owner: dict, data: dict[str, str]) -> None:
        from kubernetes_asyncio.client.rest import ApiException

        body = {"metadata": self.metadata(name, slug, owner), "data": data}
        try:
            await api.replace_namespaced_config_map(name, self.namespace, body)
        except ApiException as err:
            if err.status != 404:
                raise
            await api.create_namespaced_config_map(self.namespace, body)

    async def mlflow_account(self, name: str, password: str) -> None:
        """The user's MLflow account, created (or its password set again) through MLflow's auth API as the admin."""
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        mlflow = self.settings["mlflow"]
        admin_dir = Path(mlflow["adminCredentialsDir"])
        admin = ((admin_dir / "username").read_text().strip(), (admin_dir / "password").read_text().strip())
        client = AsyncHTTPClient()

        async def call(method: str, path: str, body: dict) -> None:
            await client.fetch(
                f"{mlflow['url']}/api/2.0/mlflow/users/{path}",
                method=method,
                body=json.dumps(body),
                headers={"Content-Type": "application/json"},
                auth_username=admin[0],
                auth_password=admin[1],
                request_timeout=30,
            )

        try:
            await call("POST", "create", {"username": name, "password": password})
        except HTTPClientError as err:
            if err.code != 400 or b"RESOURCE_ALREADY_EXISTS" not in (err.response.body if err.response else b""):
                raise
            await call("PATCH", "update-password", {"username": name, "password": password})

    async def pre_spawn(self, spawner) -> None:
        name = spawner.user.name
        slug = user_slug(name)
        api = await self.core()
        owner = spawner.mlrt_owner = await self.owner(api)  # own_pod reads it too
        spark_auth, spark_conf = spark_auth_secret(self.settings, name), f"{self.release}-spark-{slug}"
        await self.ensure_secret(api, spark_auth, slug, owner, {"secret": secrets.token_hex(32)})
        volumes = [
            {"name": "workspace", "persistentVolumeClaim": {"claimName": spawner.pvc_name}},
            {"name": "spark-auth", "secret": {"secretName": spark_auth}},
            {"name": "spark-user", "configMap": {"name": spark_conf}},
        ]
        mounts = [
            {"name": "workspace", "mountPath": "/home/mlrt/work"},
            {"name": "spark-auth", "mountPath": "/etc/mlrt/spark-auth", "readOnly": True},
            {"name": "spark-user", "mountPath": "/etc/mlrt/spark-user", "readOnly": True},
        ]
        mlflow = self.settings["mlflow"]
        if mlflow.get("auth"):
            secret = mlflow_secret(self.settings, name)
            if secret == mlflow["adminSecret"]:
                # MLflow's admin account by name: only a hub admin may be it (never a password reset of it)
                if not spawner.user.admin:
                    raise ValueError(
                        f"the user name {name!r} is MLflow's admin account (mlflow.auth.username): only a hub admin "
                        "of that name may use it; rename the user, or give MLflow's admin another name"
                    )
            else:
                account = await self.ensure_secret(
                    api, secret, slug, owner, {"username": name, "password": secrets.token_urlsafe(24)}
                )
                await self.mlflow_account(name, account["password"])
            volumes.append({"name": "mlflow-user", "secret": {"secretName": secret}})
            mounts.append({"name": "mlflow-user", "mountPath": "/etc/mlrt/mlflow", "readOnly": True})
        defaults = Path(self.settings["sparkDefaultsFile"]).read_text()
        conf = defaults.rstrip("\n") + "\n\n" + "\n".join(user_conf_lines(self.settings, name, spawner.pod_name)) + "\n"
        await self.ensure_configmap(api, spark_conf, slug, owner, {"spark-defaults.conf": conf})
        spawner.volumes = [*self.settings["singleuser"]["volumes"], *volumes]
        spawner.volume_mounts = [*self.settings["singleuser"]["volumeMounts"], *mounts]
        spawner.extra_labels = {**spawner.extra_labels, USER_LABEL: slug}
        spawner.environment = {
            **spawner.environment,
            "SPARK_USER": name,
            "LOGNAME": name,
            "MLRT_USER": name,
            "MLRT_USER_PREFIX": self.settings["userPrefix"].format(user=slug),
        }


SUFFIXES = {"m": 1e-3, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
SUFFIXES |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value) -> float:
    """A Kubernetes quantity (500m, 2, 4Gi) as a number (cores, bytes)."""
    text = str(value)
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * SUFFIXES[suffix]
    return float(text)


def environment(entries: list[dict]) -> dict:
    """The chart's env list (name/value or name/valueFrom) as KubeSpawner's environment (values or EnvVar dicts)."""
    return {e["name"]: e["value"] if "value" in e else {"valueFrom": e["valueFrom"]} for e in entries}


def configure(c, settings: dict) -> None:
    """Every JupyterHub, KubeSpawner, authenticator and culler setting from the chart's values."""
    hub, singleuser, auth = settings["hub"], settings["singleuser"], settings["auth"]
    c.JupyterHub.bind_url = "http://:8000"
    c.JupyterHub.hub_bind_url = "http://:8081"
    c.JupyterHub.hub_connect_url = f"http://{hub['service']}:8081"
    c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
    c.JupyterHub.cookie_secret_file = "/srv/jupyterhub/jupyterhub_cookie_secret"
    c.JupyterHub.cleanup_servers = False  # a hub restart leaves users' servers (and their Spark sessions) running
    c.ConfigurableHTTPProxy.pid_file = "/tmp/jupyterhub-proxy.pid"
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"

    workspace = Workspace(settings)
    c.KubeSpawner.namespace = settings["namespace"]
    c.KubeSpawner.image = singleuser["image"]
    c.KubeSpawner.image_pull_policy = singleuser["imagePullPolicy"]
    c.KubeSpawner.image_pull_secrets = singleuser.get("pullSecrets") or []
    c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
    c.KubeSpawner.default_url = "/lab"
    c.KubeSpawner.port = 8888
    c.KubeSpawner.uid = 185
    c.KubeSpawner.gid = 185
    c.KubeSpawner.fs_gid = 185
    c.KubeSpawner.service_account = singleuser["serviceAccount"]
    c.KubeSpawner.automount_service_account_token = True
    c.KubeSpawner.pod_name_template = f"{settings['release']}-user-{{user_server}}"
    # A Spark driver of the release (the catalog, MLflow, the store and the executors admit it) of its own component:
    # the drivers' ingress policy leaves it out, the hub-user one lets only the hub reach its server.
    # (KubeSpawner's own common labels would name the pod's app "jupyterhub": the release's policies select by these)
    c.KubeSpawner.common_labels = settings["labels"] | {"app.kubernetes.io/managed-by": "kubespawner"}
    c.KubeSpawner.component_label = "hub-user"
    c.KubeSpawner.extra_labels = {"mlrt.io/spark-role": "driver"}
    c.KubeSpawner.container_security_context = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    c.KubeSpawner.pod_security_context = {"seccompProfile": {"type": "RuntimeDefault"}}
    c.KubeSpawner.environment = environment(singleuser["env"])
    resources = singleuser.get("resources") or {}
    for kind, section in (("guarantee", "requests"), ("limit", "limits")):
        wanted = resources.get(section) or {}
        if "cpu" in wanted:
            setattr(c.KubeSpawner, f"cpu_{kind}", quantity(wanted["cpu"]))
        if "memory" in wanted:
            setattr(c.KubeSpawner, f"mem_{kind}", int(quantity(wanted["memory"])))
    c.KubeSpawner.start_timeout = singleuser["startTimeout"]
    c.KubeSpawner.http_timeout = 120
    # The workspace: a claim per user, kept when the server stops (and when the user is deleted from the hub).
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.pvc_name_template = f"{settings['release']}-workspace-{{user_server}}"
    c.KubeSpawner.storage_capacity = singleuser["storage"]["size"]
    c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
    if singleuser["storage"].get("storageClass"):
        c.KubeSpawner.storage_class = singleuser["storage"]["storageClass"]
    c.KubeSpawner.storage_extra_labels = settings["labels"]
    c.KubeSpawner.delete_pvc = False
    c.KubeSpawner.pre_spawn_hook = workspace.pre_spawn
    c.KubeSpawner.modify_pod_hook = workspace.own_pod

    c.Authenticator.admin_users = set(auth.get("admins") or [])
    if auth["type"] == "native":
        c.JupyterHub.authenticator_class = MlrtNativeAuthenticator
        c.NativeAuthenticator.open_signup = bool(auth["native"].get("openSignup"))
        c.NativeAuthenticator.minimum_password_length = auth["native"].get("minimumPasswordLength", 8)
        c.NativeAuthenticator.check_common_password = True
        c.Authenticator.allow_all = True  # NativeAuthenticator's approval is the gate: an approved user may log in
    else:
        c.JupyterHub.authenticator_class = auth["oauth"]["authenticatorClass"]
        # client_id, authorize_url, token_url, userdata_url, username_claim, scope, ...: OAuthenticator's settings
        # (every provider class reads them); the client secret comes from OAUTH_CLIENT_SECRET (the chart's Secret).
        for key, value in (auth["oauth"].get("config") or {}).items():
            setattr(c.OAuthenticator, key, value)
        c.OAuthenticator.allowed_users = set(auth["oauth"].get("allowedUsers") or [])

    culler = settings["culler"]
    if culler["enabled"]:
        c.JupyterHub.load_roles = [
            {
                "name": "idle-culler",
                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                "services": ["idle-culler"],
            }
        ]
        c.JupyterHub.services = [
            {
                "name": "idle-culler",
                "command": [
                    "python3",
                    "-m",
                    "jupyterhub_idle_culler",
                    f"--timeout={culler['timeoutSeconds']}",
                    f"--cull-every={culler['everySeconds']}",
                ],
            }
        ]
