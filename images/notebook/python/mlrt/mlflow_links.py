"""MLflow's "View run" links, opened from a notebook, reach the run through JupyterLab (an IPython extension).

MLflow prints `View run <name> at: <tracking URI>/#/experiments/...` when a run ends; in the workspace the tracking
URI is the cluster's MLflow server (http://mlflow:5000 on compose, a Service on Kubernetes), which the user's
browser cannot reach. JupyterLab proxies that server at <base URL>mlflow/ behind its own login (mlrt.workspace),
so when the run's tracking URI is the one proxied, the cell shows the links as HTML relative to JupyterLab's base
URL (they open wherever JupyterLab is served); the plain-text form, for logs and converted notebooks, is MLflow's.

MLflow is not imported at kernel start (it takes seconds): the links are wired when a cell first imports it."""

from __future__ import annotations

import html
import os

CLIENT = "mlflow.tracking._tracking_service.client"


def base_url(env: dict[str, str] | None = None) -> str:
    """JupyterLab's base URL as the kernel knows it: MLRT_JUPYTER_BASE_URL, JupyterHub's prefix, else "/"."""
    env = os.environ if env is None else env
    value = env.get("MLRT_JUPYTER_BASE_URL") or env.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
    return value if value.endswith("/") else value + "/"


def proxied(tracking_uri: str, env: dict[str, str] | None = None) -> bool:
    """Whether this tracking URI is the server JupyterLab proxies at mlflow/ (MLFLOW_TRACKING_URI's)."""
    env = os.environ if env is None else env
    served = env.get("MLFLOW_TRACKING_URI", "").rstrip("/")
    return bool(served) and served.startswith(("http://", "https://")) and tracking_uri.rstrip("/") == served


def links_html(experiment_id: str, run_id: str, run_name: str, env: dict[str, str] | None = None) -> str:
    experiment = f"{base_url(env)}mlflow/#/experiments/{experiment_id}"
    run = f"{experiment}/runs/{run_id}"
    name = html.escape(run_name or run_id)
    return (
        f'View run <a href="{run}" target="_blank">{name}</a> in MLflow '
        f'(<a href="{experiment}" target="_blank">its experiment</a>)'
    )


def wire(module) -> None:
    """Wrap TrackingServiceClient._log_url of an imported mlflow client module."""
    cls = module.TrackingServiceClient
    original = cls._log_url
    if getattr(original, "_mlrt", False):
        return

    def _log_url(self, run_id):
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is None or not proxied(self.tracking_uri):
                return original(self, run_id)
            run = self.store.get_run(run_id)
        except Exception:
            return original(self, run_id)
        plain = f"View run {run.info.run_name} at: {self.tracking_uri.rstrip('/')}/#/experiments/"
        plain += f"{run.info.experiment_id}/runs/{run_id}"
        bundle = {"text/plain": plain, "text/html": links_html(run.info.experiment_id, run_id, run.info.run_name)}
        display(bundle, raw=True)

    _log_url._mlrt = True
    cls._log_url = _log_url


def load_ipython_extension(ipython) -> None:
    from mlrt.after_import import after_import

    after_import(CLIENT, wire)
