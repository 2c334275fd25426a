"""A notebook shows what Spark's driver says, less its start-up noise (an IPython kernel extension).

The driver JVM of a kernel's session writes to the kernel's stderr, which JupyterLab shows under the cell. At every
session start it printed lines a notebook user can do nothing about: the JVM's incubator-module notice, Spark's
"Setting default log level" banner, Hadoop's missing native library, Ivy's settings file, and Hadoop raising the S3A
connect timeout to its floor. This kernel starts the driver JVM with its stderr on a pipe and passes every other
line through, warnings and errors of the user's own work included. The console progress bar is off too: the
progress display under each cell (mlrt.job_progress) shows the same."""

from __future__ import annotations

import os
import re
import subprocess
import threading

NOISE = re.compile(
    r"^WARNING: Using incubator modules: jdk\.incubator\.vector$"
    r'|^Setting default log level to "\w+"\.$'
    r"|^To adjust logging level use sc\.setLogLevel\(newLevel\)\."
    r"|^:: loading settings :: file = "
    r"|WARN NativeCodeLoader: Unable to load native-hadoop library"
    r"|WARN ConfigurationHelper: Option fs\.s3a\.connection\.establish\.timeout is too low"
)


def noise(line: str) -> bool:
    return bool(NOISE.search(line.rstrip("\n")))


def forward(stream, fd: int = 2) -> None:
    """The driver's stderr, less the noise, to this process's fd 2 (where it went before: the kernel shows what
    reaches that descriptor under the cell running at the time)."""
    for raw in iter(stream.readline, b""):
        if not noise(raw.decode(errors="replace")):
            os.write(fd, raw)


def load_ipython_extension(ipython) -> None:
    from pyspark.core import context

    current = os.environ.get("SPARK_SUBMIT_OPTS", "")
    if "spark.ui.showConsoleProgress" not in current:
        os.environ["SPARK_SUBMIT_OPTS"] = f"{current} -Dspark.ui.showConsoleProgress=false".strip()
    original = context.launch_gateway
    if getattr(original, "_mlrt", False):
        return

    def launch_gateway(conf=None, popen_kwargs=None):
        kwargs = dict(popen_kwargs or {})
        if "stderr" in kwargs:
            return original(conf, kwargs)
        kwargs["stderr"] = subprocess.PIPE
        gateway = original(conf, kwargs)
        threading.Thread(target=forward, args=(gateway.proc.stderr,), name="mlrt-spark-stderr", daemon=True).start()
        return gateway

    launch_gateway._mlrt = True
    context.launch_gateway = launch_gateway
