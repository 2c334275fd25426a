"""The spark image and its children: pinned Spark/Java, SPARK_HOME on the pyspark install, the entrypoint."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT
from tests.wheels import wheel
from tooling import jars

from .conftest import PINS, inspect, key_pair_dir, run

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


def test_executor_python_loads_pyspark_compiled_from_sparks_archives(image):
    """Executors put $SPARK_HOME/python/lib/*.zip first on their Python processes' path: the archives carry
    bytecode for the image's interpreter (nothing compiled at import), and still the sources for tracebacks."""
    script = (
        "import inspect, sys, pyspark.ml, py4j.java_gateway;"
        "print(pyspark.ml.__file__); print(py4j.java_gateway.__file__);"
        "print('class Pipeline(' in inspect.getsource(pyspark.ml.Pipeline))"
    )
    out = run(
        image,
        "bash",
        "-c",
        'PYTHONPATH="$(ls "$SPARK_HOME"/python/lib/*.zip | paste -sd:)" python -B -c "$0"',
        script,
    )
    ml, py4j, source = out.split()
    assert ml.endswith("/python/lib/pyspark.zip/pyspark/ml/__init__.pyc"), ml
    assert py4j.endswith(".zip/py4j/java_gateway.pyc"), py4j
    assert source == "True"


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
    # every member encrypts its RPC and block traffic, and speaks to no member that does not
    assert "spark.network.crypto.enabled                    true" in out
    assert "spark.network.crypto.saslFallback               false" in out


def test_mlflow_account_becomes_the_clients_credentials_file(image, tmp_path):
    """MLRT_MLFLOW_CREDENTIALS_DIR (username, password) becomes ~/.mlflow/credentials (mode 600), which MLflow's
    clients read; the password is in no environment variable; a directory without the files is named."""
    account = tmp_path / "account"
    account.mkdir()
    (account / "username").write_text("admin\n")
    (account / "password").write_text("a-long-mlflow-password\n")
    account.chmod(0o755)
    script = "stat -c 'MODE %a' ~/.mlflow/credentials; cat ~/.mlflow/credentials; env | grep -c a-long-mlflow || true"
    done = run(image, "bash", "-c", script, env={"MLRT_MLFLOW_CREDENTIALS_DIR": "/a"}, volumes={account: "/a"})
    assert "MODE 600" in done, done
    assert "mlflow_tracking_username = admin\nmlflow_tracking_password = a-long-mlflow-password" in done, done
    assert done.strip().splitlines()[-1] == "0", "the password is in the environment"
    bad = run(image, "true", check=False, env={"MLRT_MLFLOW_CREDENTIALS_DIR": "/nonexistent"})
    assert bad.returncode == 64 and "needs the files username and password" in bad.stderr, bad.stderr


def test_object_store_settings_from_the_environment(image, tmp_path):
    keys = key_pair_dir(tmp_path / "keys", "mlrt-key", "mlrt-secret-value\n")
    script = (
        "cat /tmp/spark-conf/spark-defaults.conf; stat -c 'MODE %a' ~/.aws/credentials; env | grep ^AWS_ || true; "
        "python -c 'import boto3; c = boto3.Session().get_credentials(); print(\"BOTO3\", c.access_key, c.secret_key)'"
    )
    env = {
        "MLRT_S3_CREDENTIALS_DIR": "/keys",
        "MLRT_S3_ENDPOINT": "http://objectstore:8333",
        "MLRT_WAREHOUSE_DIR": "s3a://lake/warehouse",
    }
    done = run(image, "bash", "-c", script, env=env, volumes={keys: "/keys"})
    assert "spark.hadoop.fs.s3a.endpoint http://objectstore:8333" in done
    assert "spark.hadoop.fs.s3a.path.style.access true" in done
    assert "spark.hadoop.fs.s3a.endpoint.region us-east-1" in done
    assert "spark.sql.warehouse.dir s3a://lake/warehouse" in done
    # The key pair is the AWS SDKs' default profile (mode 600), in neither the Spark conf nor the environment.
    assert "MODE 600" in done and "BOTO3 mlrt-key mlrt-secret-value" in done
    assert done.count("mlrt-secret-value") == 1, done
    bad = run(image, "true", check=False, env={"MLRT_S3_ENDPOINT": "objectstore:8333"})
    assert bad.returncode == 64 and "not an http(s)://host[:port] URL" in bad.stderr, bad.stderr
    bad = run(image, "true", check=False, env={"MLRT_S3_CREDENTIALS_DIR": "/nonexistent"})
    assert bad.returncode == 64 and "needs the files access_key_id and secret_access_key" in bad.stderr, bad.stderr


def test_kubernetes_executor_contract_is_checked(image):
    result = run(image, "executor", check=False)
    assert result.returncode != 0 and "SPARK_EXECUTOR_MEMORY" in result.stderr, result.stderr


def test_locked_jars_are_in_spark_home_with_their_sha256(image):
    script = (
        "import hashlib, json, os\n"
        "lock = json.load(open('/opt/mlrt/locks/jars.lock'))\n"
        "jars = os.path.join(os.environ['SPARK_HOME'], 'jars')\n"
        "for jar in lock['jars']:\n"
        "    path = os.path.join(jars, jar['file'])\n"
        "    got = hashlib.sha256(open(path, 'rb').read()).hexdigest() if os.path.exists(path) else 'missing'\n"
        "    print(jar['file'], 'ok' if got == jar['sha256'] else got)\n"
    )
    lines = run(image, "python", "-c", script).splitlines()
    assert lines and all(line.endswith(" ok") for line in lines), lines
    locked = json.loads((ROOT / "images/spark/jars.lock").read_text())
    assert len(lines) == len(locked["jars"]), "the image's jar lock is the committed one"


# One local Spark session per image for every check that needs one (each session costs a JVM start, ~15 s on
# a busy 2-core host): an Arrow job as the non-root user; a Delta table and a --packages resolution, Delta as
# configured by the one shared spark-defaults.conf and spark.jars.packages resolved from MLRT_MAVEN_REPOSITORIES
# only (here a file:// repository made in the container; Maven Central is not asked); and S3A with the SDK modules
# (not the bundle) against a closed port.
LOCAL_SESSION = """
import glob, os, shutil, time
import pandas as pd
repo = "/tmp/repo/org/mlrt/probe/hello/1.0"
os.makedirs(repo)
shutil.copy(glob.glob(os.environ["SPARK_HOME"] + "/jars/io.delta.delta-storage-*.jar")[0], repo + "/hello-1.0.jar")
open(repo + "/hello-1.0.pom", "w").write(
    '<project><modelVersion>4.0.0</modelVersion><groupId>org.mlrt.probe</groupId>'
    '<artifactId>hello</artifactId><version>1.0</version></project>')
import delta
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
# Delta rebuilds a table's state in 50 partitions by default: a few suffice for a tiny table.
s = (SparkSession.builder.master("local[2]").config("spark.eventLog.enabled", "false")
     .config("spark.databricks.delta.snapshotPartitions", "2").config("spark.sql.shuffle.partitions", "2")
     .config("spark.jars.packages", "org.mlrt.probe:hello:1.0").getOrCreate())
df = s.createDataFrame(pd.DataFrame({"x": range(100)}))
print("ARROW", os.getuid(), df.groupBy().sum("x").collect()[0][0], df.toPandas().shape[0])
# A notebook's %pip environment as its session ships it (mlrt.libraries): an archive named mlrt-libs-*, added to a
# running session, is on the Python workers' path from the next task on (mlrt.pyspark_daemon).
import zipfile
with zipfile.ZipFile("/tmp/mlrt-libs-image-1.zip", "w") as zf:
    zf.writestr("mlrt_image_probe.py", "VALUE = 41\\n")
s.sparkContext.addArchive("/tmp/mlrt-libs-image-1.zip")
print("ARCHIVE", s.sparkContext.parallelize(range(2), 2).map(lambda _: __import__("mlrt_image_probe").VALUE + 1).sum())
print("PACKAGES", ",".join(j for j in s.sparkContext._jsc.sc().listJars().mkString(",").split(",") if "hello" in j))
s.range(0, 100).write.format("delta").save("/tmp/t")
DeltaTable.forPath(s, "/tmp/t").delete("id < 10")
print("DELTA", s.read.format("delta").load("/tmp/t").count(),
      s.read.format("delta").option("versionAsOf", 0).load("/tmp/t").count(),
      s.sql("DESCRIBE HISTORY delta.`/tmp/t`").count())
maps = open(f"/proc/{type(s.sparkContext)._gateway.proc.pid}/maps").read()
print("CDS", int("/opt/mlrt/cds/spark.jsa" in maps))
t = time.time()
try:
    s.read.parquet("s3a://lake/x").count()
except Exception as e:
    print("S3A", round(time.time() - t), str(e).splitlines()[1][:300])
s.stop()
"""


@pytest.fixture(scope="module")
def local_session(image) -> dict[str, str]:
    """The LOCAL_SESSION's output lines by their first word, from one container of the image."""
    env = {
        "MLRT_MAVEN_REPOSITORIES": "file:///tmp/repo",
        "MLRT_S3_ENDPOINT": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    out = run(image, "python", "-c", LOCAL_SESSION, env=env)
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.splitlines() if " " in line}
    lines["output"] = out
    return lines


def test_local_job_with_arrow_runs_as_non_root(local_session):
    assert local_session["ARROW"].split() == ["185", "4950", "100"], local_session["output"]


def test_a_notebook_environment_added_to_a_running_session_reaches_its_python_workers(local_session):
    assert local_session["ARCHIVE"] == "84", local_session["output"]


def test_cluster_libraries_install_at_start_from_a_wheelhouse_and_refuse_a_runtime_change(image, tmp_path):
    """MLRT_LIBRARIES through the entrypoint (offline: a wheelhouse directory): importable by the container's Python
    (PYTHONPATH, which executors inherit); a list that needs another numpy stops the container, named."""
    house = tmp_path / "wheels"
    house.mkdir()
    wheel(house, "mlrt_cluster_probe", "1.0", code="VALUE = 7\n")
    house.chmod(0o755)
    env = {"MLRT_LIBRARIES": "mlrt_cluster_probe==1.0", "MLRT_LIBRARIES_WHEELHOUSE": "/wheels"}
    env["MLRT_LIBRARIES_DIR"] = "/tmp/libraries"
    env["MLRT_PIP_INDEX_URL"] = "https://pypi.example/simple"
    probe = "import mlrt_cluster_probe as m; print(m.VALUE, m.__file__)"
    # no PYTHONPATH: any Python of the container (an exec session too) finds them; pip's settings in its config file
    out = run(image, "bash", "-c", f"env -u PYTHONPATH python -c '{probe}' && cat ~/.config/pip/pip.conf", env=env,
              volumes={str(house): "/wheels"})  # fmt: skip
    assert out.split()[0] == "7" and out.split()[1].startswith("/tmp/libraries/cluster-"), out
    assert "[global]\nindex-url = https://pypi.example/simple" in out, out
    refused = run(image, "true", env={**env, "MLRT_LIBRARIES": "numpy==1.0.0"}, volumes={str(house): "/wheels"},
                  check=False)  # fmt: skip
    assert refused.returncode == 64, refused.stderr
    assert "cluster libraries cannot replace" in refused.stderr and "mlrt-entrypoint: ERROR" in refused.stderr


def test_a_session_maps_the_images_class_archive_which_holds_for_its_jars(image, local_session):
    """images/spark/cds-archive: the driver's JVM maps the archive; -Xshare:on (fail rather than run without it)
    proves it holds for the image's jars and JDK, in every image above spark (one that changed a jar would fail)."""
    assert local_session["CDS"] == "1", local_session["output"]
    java = "$JAVA_HOME/bin/java -XX:SharedArchiveFile=/opt/mlrt/cds/spark.jsa -Xshare:on"
    out = run(image, "bash", "-c", f"{java} -cp /opt/mlrt/cds/classpath.jar -Xlog:cds=info -version 2>&1")
    assert "Mapped dynamic region" in out, out


def test_delta_and_packages_from_the_configured_repositories(image, local_session):
    assert "org.mlrt.probe_hello-1.0.jar" in local_session["PACKAGES"], local_session["output"]
    assert local_session["DELTA"].split() == ["90", "100", "2"], local_session["output"]
    settings = run(image, "cat", "/tmp/mlrt-ivy/ivysettings.xml", env={"MLRT_MAVEN_REPOSITORIES": "https://a/m2"})
    assert 'root="https://a/m2/"' in settings and "repo1.maven.org" not in settings


def test_s3a_reaches_an_s3_endpoint_with_the_sdk_modules(local_session):
    """hadoop-aws with the SDK modules (not the bundle) loads and talks S3: a closed port is reported in
    seconds as a connection failure (the S3 API itself is exercised by the smoke tests against the store)."""
    line = local_session.get("S3A", local_session["output"])
    assert "Connect to 127.0.0.1:9" in line, local_session["output"]
    assert int(line.split()[0]) < 30, line


def test_the_image_resolves_from_maven_central_unless_told_at_run_time(image):
    """The list is run-time configuration (compose and the chart pass it; tests/unit and tests/k8s check them)."""
    env = dict(item.split("=", 1) for item in inspect(image, ".Config.Env"))
    assert env["MLRT_MAVEN_REPOSITORIES"] == jars.MAVEN_CENTRAL
    assert (
        run(image, "python", "-c", "import delta, importlib.metadata as m; print(m.version('delta-spark'))").strip()
        == (PINS["DELTA_VERSION"])
    )


def test_a_kubernetes_driver_writes_the_ivy_settings_its_client_names(image):
    """A cluster-mode client passes spark.jars.ivySettings on; the driver role writes the file it names."""
    out = run(
        image,
        "-c",
        "/opt/mlrt/bin/entrypoint.sh driver --version >/dev/null 2>&1; cat /tmp/mlrt-ivy/ivysettings.xml",
        entrypoint="bash",
        env={"SPARK_DRIVER_BIND_ADDRESS": "127.0.0.1", "MLRT_MAVEN_REPOSITORIES": "https://mirror.example/m2"},
    )
    assert 'root="https://mirror.example/m2/"' in out, out
