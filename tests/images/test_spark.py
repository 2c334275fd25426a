"""The spark image and its children: pinned Spark/Java, SPARK_HOME on the pyspark install, the entrypoint."""

from __future__ import annotations

from .conftest import PINS, run

IMAGE = "spark"


def test_spark_and_java_versions(image):
    out = run(
        image,
        "python",
        "-c",
        "import pyspark, pandas, pyarrow; print(pyspark.__version__, pandas.__version__, pyarrow.__version__)",
    )
    assert out.split() == [PINS["PYSPARK_VERSION"], PINS["PANDAS_VERSION"], PINS["PYARROW_VERSION"]]
    java = run(image, "java", "-version", check=False).stderr
    assert f'version "{PINS["JAVA_VERSION"]}.' in java, java
    assert f"version {PINS['SPARK_VERSION']}" in run(image, "spark-submit", "--version", check=False).stderr


def test_spark_home_is_the_pyspark_install(image):
    out = run(image, "bash", "-c", 'echo "$SPARK_HOME"; command -v spark-submit; ls "$SPARK_HOME/jars" | wc -l')
    home, submit, jars = out.split()
    assert home.endswith("/site-packages/pyspark")
    assert submit.startswith("/opt/mlrt/venv/bin/")
    assert int(jars) > 100


def test_local_job_with_arrow_runs_as_non_root(image):
    script = (
        "from pyspark.sql import SparkSession; import pandas as pd;"
        "s = SparkSession.builder.master('local[2]').config('spark.eventLog.enabled', 'false').getOrCreate();"
        "df = s.createDataFrame(pd.DataFrame({'x': range(100)}));"
        "print(df.groupBy().sum('x').collect()[0][0], df.toPandas().shape[0]); s.stop()"
    )
    assert run(image, "python", "-c", script).split()[-2:] == ["4950", "100"]


def test_master_refuses_to_start_without_the_secret(image):
    result = run(image, "master", check=False)
    assert result.returncode != 0
    assert "SPARK_AUTH_SECRET_FILE" in result.stderr, result.stderr


def test_worker_names_the_missing_master_url(image):
    result = run(image, "worker", check=False, env={"SPARK_AUTH_SECRET_FILE": "/etc/hostname"})
    assert result.returncode != 0 and "SPARK_MASTER_URL" in result.stderr, result.stderr


def test_conf_is_assembled_from_the_environment(image):
    out = run(
        image,
        "cat",
        "/tmp/spark-conf/spark-defaults.conf",
        env={
            "SPARK_MASTER_URL": "spark://m:7077",
            "SPARK_DRIVER_HOST": "drv",
            "SPARK_AUTH_SECRET_FILE": "/etc/hostname",
        },
    )
    assert "spark.master spark://m:7077" in out
    assert "spark.driver.host drv" in out
    assert "spark.authenticate.secret " in out
    assert "spark.eventLog.dir" in out, "the shared spark-defaults.conf must be the base of the effective conf"


def test_kubernetes_executor_contract_is_checked(image):
    result = run(image, "executor", check=False)
    assert result.returncode != 0 and "SPARK_EXECUTOR_MEMORY" in result.stderr, result.stderr
