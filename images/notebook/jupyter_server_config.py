# JupyterLab as the Spark driver of the mlrt runtime. Login always needs a token: JUPYTER_TOKEN from the
# environment (compose and the Helm chart set it), otherwise a random one printed in the log.
c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file

c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = 8888
c.ServerApp.open_browser = False
c.ServerApp.root_dir = "/home/mlrt/work"
c.ServerApp.allow_remote_access = True
c.IdentityProvider.token_required = True  # never run without authentication, even if a token is unset
c.ServerApp.password_required = False
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}
