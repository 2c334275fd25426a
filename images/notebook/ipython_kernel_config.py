# Every IPython kernel of the mlrt notebook image shows live Spark job progress under its cells (mlrt.job_progress).
c = get_config()  # noqa: F821 - provided by IPython when it loads this file

c.InteractiveShellApp.extensions.append("mlrt.job_progress")
