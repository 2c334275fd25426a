"""PySpark's daemon with notebook-scoped libraries: spark.python.daemon.module in the Spark defaults.

PySpark's own daemon (pyspark.daemon) forks the Python workers of an executor; each worker reads a task's files
directory (setup_spark_files) before it unpickles the task's code. Here each worker then puts the newest notebook
environment the application's driver shipped (mlrt.libraries.activate) first on sys.path, so a `%pip install` in a
notebook reaches the executors of a session that was already running, and a worker reused across tasks picks up a
later install or uninstall. Without such an archive nothing changes.
"""

import sys

from mlrt import libraries
from pyspark import daemon, worker

_setup_spark_files = worker.setup_spark_files


def setup_spark_files(infile):
    _setup_spark_files(infile)
    try:
        from pyspark.core.files import SparkFiles

        libraries.activate(SparkFiles.getRootDirectory())
    except Exception as exc:  # never fail a task over it: the import that needs the library will say what is missing
        print(f"mlrt: notebook libraries not activated: {exc!r}", file=sys.stderr)


worker.setup_spark_files = setup_spark_files

if __name__ == "__main__":
    daemon.manager()
