# Every IPython kernel of the mlrt notebook image shows live Spark job progress under its cells (mlrt.job_progress).
c = get_config()  # noqa: F821 - provided by IPython when it loads this file

c.InteractiveShellApp.extensions.append("mlrt.job_progress")
# A cell that fails because the table catalog cannot be reached says which metastore and how to check it.
c.InteractiveShellApp.extensions.append("mlrt.catalog_hints")
# `%pip install` makes notebook-scoped libraries that reach the session's executors (mlrt.notebook_libraries).
c.InteractiveShellApp.extensions.append("mlrt.notebook_libraries")
# MLflow's "View run" links open the run through JupyterLab's proxy (mlrt.mlflow_links).
c.InteractiveShellApp.extensions.append("mlrt.mlflow_links")
# An idle session gives its executors back to the cluster; its next cell gets them again (mlrt.idle_executors).
c.InteractiveShellApp.extensions.append("mlrt.idle_executors")
# The driver's start-up noise (JVM, Spark, Hadoop, Ivy notices) is kept out of cells (mlrt.spark_console).
c.InteractiveShellApp.extensions.append("mlrt.spark_console")
# Databricks' dbutils (fs, secrets, widgets, notebook, library), defined in every notebook as on Databricks.
c.InteractiveShellApp.exec_lines.append("from mlrt import dbutils")
