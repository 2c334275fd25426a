"""IPython kernel extension: live Spark job and stage progress under the notebook cell that runs them.

Loads sparkmonitor's kernel extension (a socket its Spark listener reports to, a comm to its JupyterLab
extension), then makes every Spark driver this kernel starts report there without any code in the notebook:
the listener jar that sparkmonitor ships joins the driver's class path (SPARK_DIST_CLASSPATH) and
spark.extraListeners names it (SPARK_SUBMIT_OPTS), both only in this kernel's environment. A session that sets
spark.extraListeners itself replaces the listener (and has no progress display). Processes outside a kernel
(spark-submit, pytest) never load the listener: without a kernel to report to it would only log errors.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

LISTENER_CLASS = "sparkmonitor.listener.JupyterSparkMonitorListener"
log = logging.getLogger(__name__)


def listener_jar() -> Path:
    import sparkmonitor

    jars = sorted(Path(sparkmonitor.__file__).parent.glob("listener_spark4_2.13.jar"))
    if not jars:
        raise FileNotFoundError(f"sparkmonitor {sparkmonitor.__version__} has no Spark 4 / Scala 2.13 listener jar")
    return jars[0]


def _append(name: str, value: str, sep: str) -> None:
    current = os.environ.get(name, "")
    if value not in current.split(sep):
        os.environ[name] = f"{current}{sep}{value}" if current else value


def _send_when_open(self, msg) -> None:
    """sparkmonitor's ScalaMonitor.send, tolerant of no frontend: until JupyterLab's extension opens its comm (and
    always under headless runners such as nbclient) there is no comm, and the original's AttributeError would end
    the socket thread, leaving the listener to log a broken pipe for every Spark event."""
    comm = getattr(self, "comm", None)
    if comm is not None:
        comm.send(msg)


def load_ipython_extension(ipython) -> None:
    ipython.extension_manager.load_extension("sparkmonitor.kernelextension")
    from sparkmonitor import kernelextension

    kernelextension.ScalaMonitor.send = _send_when_open
    kernelextension.logger.setLevel(logging.WARNING)  # its INFO lines (every socket event) flood the server log
    # sparkmonitor leaves a SparkConf named `conf` (and an alias) in the user's namespace for sessions to start
    # from; the listener is switched on through the environment instead, so the namespace stays the user's.
    for name in ("conf", "swan_spark_conf"):
        ipython.user_ns.pop(name, None)
    if not os.environ.get("SPARKMONITOR_KERNEL_PORT"):
        log.warning("sparkmonitor did not start (not a Jupyter kernel?): no Spark job progress in this kernel")
        return
    _append("SPARK_DIST_CLASSPATH", str(listener_jar()), ":")
    _append("SPARK_SUBMIT_OPTS", f"-Dspark.extraListeners={LISTENER_CLASS}", " ")
