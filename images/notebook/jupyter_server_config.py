# JupyterLab as the Spark driver of the mlrt runtime. Login always needs a token: JUPYTER_TOKEN from the
# environment (compose and the Helm chart set it), otherwise a random one printed in the log.
import os

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
