# JupyterLab as the Spark driver of the mlrt runtime. Login always needs a token: JUPYTER_TOKEN from the
# environment (compose and the Helm chart set it), otherwise a random one printed in the log.
import os
from pathlib import Path

from jupyter_core.paths import jupyter_config_dir
from mlrt import workspace

c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file

# An empty JUPYTER_TOKEN would switch authentication off: drop it so Jupyter generates a random token.
if not os.environ.get("JUPYTER_TOKEN", "").strip():
    os.environ.pop("JUPYTER_TOKEN", None)

c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = 8888
c.ServerApp.open_browser = False
c.ServerApp.root_dir = "/home/mlrt/work"
c.ServerApp.allow_remote_access = True
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}

# A kernel idle for MLRT_KERNEL_IDLE_TIMEOUT_S seconds (default an hour; 0: never) is shut down, open tab or not,
# so that its Spark session gives the cluster's cores back (docs/notebooks.md). A busy kernel is never culled.
try:
    c.MappingKernelManager.cull_idle_timeout = workspace.kernel_idle_timeout()
except ValueError as err:  # SystemExit: Jupyter would log an Exception from a config file and start without it
    raise SystemExit(f"jupyter_server_config: {err}") from None
c.MappingKernelManager.cull_interval = max(1, min(300, c.MappingKernelManager.cull_idle_timeout // 2 or 300))
c.MappingKernelManager.cull_connected = True
c.MappingKernelManager.cull_busy = False

# No outbound calls (air-gapped clusters): no Jupyter news, no update checks, no extension listing from PyPI.
# The news prompt's plugin is disabled in /etc/jupyter/labconfig/page_config.json.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"

# The Spark UI, the history server, MLflow and the standalone master's UI behind the same login, each with a
# launcher entry (mlrt.workspace); nothing else is reachable through the proxy.
c.ServerProxy.servers = workspace.proxied_servers()
# Their tiles' icons: CSS in JupyterLab's custom.css (the launcher draws server-proxy's icons for kernels only).
c.LabApp.custom_css = True
workspace.write_launcher_css(Path(jupyter_config_dir()) / "custom" / "custom.css", c.ServerProxy.servers)
c.ServerProxy.host_allowlist = ["localhost", "127.0.0.1"]

# Example notebooks into the workspace on start, never over a user's file (mlrt.workspace.copy_examples).
workspace.copy_examples(Path(c.ServerApp.root_dir))
