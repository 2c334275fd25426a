"""The JupyterLab workspace of the mlrt notebook image: the cluster's web UIs proxied behind Jupyter's login, and
the example notebooks copied into the user's workspace.

Proxied UIs (jupyter-server-proxy named servers, each with a launcher entry, opened inside JupyterLab):
  /spark-ui/      this container's Spark driver UI (localhost:MLRT_SPARK_UI_PORT, default 4040)
  /spark-history/ the Spark history server (MLRT_HISTORY_URL)
  /mlflow/        the MLflow tracking server (MLFLOW_TRACKING_URI, when it is an http(s) URL); with the account in
                  ~/.mlflow/credentials (the entrypoint writes it) the proxy signs each request in with it, so the
                  UI opens without a second login behind Jupyter's
  /spark-master/  the standalone master's UI (MLRT_SPARK_MASTER_UI_URL; its reverse proxy serves the workers'
                  pages and the executors' log links, so the master runs with spark.ui.reverseProxyUrl set to
                  this route)
Spark's pages take their prefix from the X-Forwarded-Context header the proxy sends; route names must not be
"proxy" or "history", which Spark's page scripts read as an application id's parent.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from jupyter_server_proxy.config import ServerProcess
from tornado import web
from traitlets import Unicode

EXAMPLES_SOURCE = Path(os.environ.get("MLRT_EXAMPLES_DIR", "/opt/mlrt/examples"))
LAUNCHER_CATEGORY = "mlrt cluster"
ICONS = Path(__file__).parent / "icons"


class RemoteServer(ServerProcess):
    """A named proxy to a server on another host. jupyter-server-proxy's named servers reach localhost only (its
    /proxy/<host>:<port>/ route reaches others, without a launcher entry and with a path Spark misreads), so the
    connection's host is swapped after the library's own checks ran for localhost."""

    host = Unicode(help="host of the proxied server")

    def get_proxy_base_class(self):
        cls, kwargs = super().get_proxy_base_class()
        if cls is None:
            return cls, kwargs
        remote = self.host

        class Remote(cls):
            def get_client_uri(self, protocol, host, port, proxied_path):
                return super().get_client_uri(protocol, remote, port, proxied_path)

        return Remote, kwargs

    def get_proxy_attributes(self):
        # The server sees its own name as Host (MLflow refuses other Host headers: DNS rebinding protection).
        attributes = super().get_proxy_attributes()
        attributes["request_headers_override"] = {"Host": f"{self.host}:{self.port}", **self.request_headers_override}
        return attributes


class SparkUIServer(ServerProcess):
    """The driver's UI on localhost: a clear 503 while no Spark application runs in this container."""

    def get_proxy_base_class(self):
        cls, kwargs = super().get_proxy_base_class()

        class SparkUI(cls):
            async def proxy(self, port, path):
                try:
                    return await super().proxy(port, path)
                except OSError:  # connection refused (tornado raises it as is) or closed
                    raise web.HTTPError(
                        503,
                        f"No Spark application is running in this container (nothing listens on port {port}): "
                        "create a SparkSession in a notebook, then reload. This route serves the first session's UI; "
                        "a session in another kernel at the same time gets the next port (4041, ...).",
                    ) from None

        return SparkUI, kwargs


def mlflow_authorization(home: Path) -> str | None:
    """The HTTP Authorization header for the MLflow account in home/.mlflow/credentials; None without one."""
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(home / ".mlflow" / "credentials"):
        return None
    user = parser.get("mlflow", "mlflow_tracking_username", fallback="")
    password = parser.get("mlflow", "mlflow_tracking_password", fallback="")
    if not (user and password):
        return None
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _entry(name: str, title: str) -> dict:
    """A launcher tile: its title and icon (icons/<name>.svg, shipped beside this module)."""
    return {"enabled": True, "title": title, "category": LAUNCHER_CATEGORY, "icon_path": str(ICONS / f"{name}.svg")}


def _http_url(name: str, env: dict[str, str]) -> tuple[str, int] | None:
    """host and port of an http(s) URL in env[name]; None when unset or not http(s)."""
    value = env.get(name, "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if name == "MLFLOW_TRACKING_URI":
            return None  # a file or database tracking URI: nothing to proxy
        raise ValueError(f"{name}={value} is not an http(s)://host:port URL; fix or unset it")
    if parts.path.strip("/"):
        raise ValueError(f"{name}={value} has a path; give the server's root URL (http(s)://host:port)")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def proxied_servers(env: dict[str, str] | None = None) -> dict[str, ServerProcess]:
    """The c.ServerProxy.servers entries for the UIs this environment names."""
    env = dict(os.environ if env is None else env)
    port = env.get("MLRT_SPARK_UI_PORT", "4040")
    if not port.isdigit():
        raise ValueError(f"MLRT_SPARK_UI_PORT={port} is not a port number")
    servers: dict[str, ServerProcess] = {
        # Spark redirects / to an absolute http://<host>/jobs/ that ignores the proxy's prefix: serve /jobs/ there.
        "spark-ui": SparkUIServer(
            name="spark-ui",
            port=int(port),
            mappath={"/": "/jobs/"},
            launcher_entry=_entry("spark-ui", "Spark UI"),
            new_browser_tab=False,
        ),
    }
    remotes = [
        ("spark-history", "MLRT_HISTORY_URL", "Spark history"),
        ("mlflow", "MLFLOW_TRACKING_URI", "MLflow"),
        ("spark-master", "MLRT_SPARK_MASTER_UI_URL", "Spark master"),
    ]
    authorization = mlflow_authorization(Path(env.get("HOME", "~")).expanduser())
    for name, variable, title in remotes:
        address = _http_url(variable, env)
        if address:
            extra = (
                {"request_headers_override": {"Authorization": authorization}}
                if name == "mlflow" and authorization
                else {}
            )
            servers[name] = RemoteServer(
                name=name,
                host=address[0],
                port=address[1],
                launcher_entry=_entry(name, title),
                new_browser_tab=False,
                **extra,
            )
    return servers


LAUNCHER_CSS_MARK = "/* mlrt: the launcher tiles' icons (mlrt.workspace.write_launcher_css) */"


def launcher_css(servers: dict[str, ServerProcess]) -> str:
    """CSS that puts each proxied UI's icon on its launcher tile. jupyter-server-proxy hands JupyterLab the icon as
    a kernel icon URL, which the launcher draws for its Notebook and Console sections only, so a tile in another
    section (ours) stays blank; the icon is served at server-proxy/icon/<name>, relative to this CSS's URL."""
    rules = [LAUNCHER_CSS_MARK]
    for name, server in servers.items():
        entry = server.launcher_entry
        if entry.icon_path:
            rules.append(
                f'.jp-LauncherCard[data-category="{LAUNCHER_CATEGORY}"][title="{entry.title}"] .jp-LauncherCard-icon '
                f'{{ background: url("../server-proxy/icon/{name}") center / 52px 52px no-repeat; }}'
            )
    return "\n".join(rules) + "\n"


def write_launcher_css(path: Path, servers: dict[str, ServerProcess]) -> bool:
    """Write the launcher CSS to JupyterLab's custom.css (LabApp.custom_css), unless the file is a user's own."""
    if path.exists() and not path.read_text().startswith(LAUNCHER_CSS_MARK):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(launcher_css(servers))
    return True


def kernel_idle_timeout(env: dict[str, str] | None = None) -> int:
    """Seconds a kernel may stay idle before Jupyter shuts it down (MLRT_KERNEL_IDLE_TIMEOUT_S; 0: never)."""
    value = (os.environ if env is None else env).get("MLRT_KERNEL_IDLE_TIMEOUT_S", "3600").strip()
    if not value.isdigit():
        raise ValueError(f"MLRT_KERNEL_IDLE_TIMEOUT_S={value} is not a number of seconds (0 keeps idle kernels)")
    return int(value)


def copy_examples(workspace: Path, source: Path = EXAMPLES_SOURCE) -> list[str]:
    """Copy the image's example notebooks into workspace/examples. A file is copied once: never over an existing
    file, and not again after the user deleted or renamed it (the names delivered are kept in
    workspace/.mlrt/examples.json). Returns the names copied."""
    if not source.is_dir():
        return []
    record = workspace / ".mlrt" / "examples.json"
    delivered = set(json.loads(record.read_text())) if record.exists() else set()
    target = workspace / "examples"
    copied = []
    for path in sorted(source.iterdir()):
        if not path.is_file() or path.name in delivered:
            continue
        destination = target / path.name
        delivered.add(path.name)
        if destination.exists() or destination.is_symlink():
            continue
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        copied.append(path.name)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(sorted(delivered), indent=1) + "\n")
    return copied
