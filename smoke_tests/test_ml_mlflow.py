"""MLflow: the tracking server takes params/metrics from the driver and from executors; a model is logged,
loaded back and scored on the cluster with mlflow.pyfunc.spark_udf."""

from __future__ import annotations

import os
import uuid

from conftest import DRIVER_HOST, ran_on_executors


def test_mlflow_tracking_from_driver_and_executors(spark):
    import mlflow
    import numpy as np
    from mlflow.tracking import MlflowClient
    from sklearn.linear_model import LinearRegression

    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    assert uri.startswith("http"), f"MLflow: MLFLOW_TRACKING_URI is {uri!r}; the driver must use the server"
    mlflow.set_experiment(f"mlrt-smoke-{uuid.uuid4().hex[:8]}")
    import pandas as pd

    x = pd.DataFrame(np.random.RandomState(0).rand(200, 3), columns=["f0", "f1", "f2"])
    y = x.to_numpy() @ np.array([1.0, 2.0, 3.0]) + 0.5
    with mlflow.start_run() as run:
        mlflow.log_param("driver_host", DRIVER_HOST)
        mlflow.log_metric("driver_metric", 1.0)
        model = LinearRegression().fit(x, y)
        info = mlflow.sklearn.log_model(model, name="model", input_example=x[:2])
    run_id = run.info.run_id

    def log_from_executor(index, rows):
        import socket

        from mlflow.tracking import MlflowClient

        count = sum(1 for _ in rows)
        MlflowClient().log_metric(run_id, f"rows_partition_{index}", count)
        MlflowClient().set_tag(run_id, f"executor_host_{index}", socket.gethostname())
        yield count

    with ran_on_executors(spark, "MLflow logging from executors"):
        assert (
            sum(spark.sparkContext.parallelize(range(80), 4).mapPartitionsWithIndex(log_from_executor).collect()) == 80
        )
    data = MlflowClient().get_run(run_id).data
    assert data.params["driver_host"] == DRIVER_HOST and data.metrics["driver_metric"] == 1.0
    assert sorted(k for k in data.metrics if k.startswith("rows_partition_")) == [
        f"rows_partition_{i}" for i in range(4)
    ], f"MLflow: executor metrics missing: {data.metrics}"
    executor_hosts = {v for k, v in data.tags.items() if k.startswith("executor_host_")}
    assert executor_hosts and DRIVER_HOST not in executor_hosts, f"MLflow: executor tags {data.tags}"

    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert np.allclose(loaded.predict(x[:5]), model.predict(x[:5]))
    predict = mlflow.pyfunc.spark_udf(spark, info.model_uri, result_type="double")
    frame = spark.createDataFrame(x).repartition(4)
    with ran_on_executors(spark, "mlflow.pyfunc.spark_udf"):
        scored = frame.select(predict("f0", "f1", "f2").alias("p")).toPandas()["p"].to_numpy()
    assert np.allclose(np.sort(scored), np.sort(model.predict(x)), atol=1e-6), "MLflow: spark_udf predictions differ"


def test_mlflow_refuses_requests_without_the_account():
    """Where the deployment gives this container an MLflow account (compose and the chart do, by default), the
    server runs its basic-auth app: the same request that works signed in gets 401 without the account."""
    import requests
    from mlflow.utils.credentials import read_mlflow_creds
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    if not os.environ.get("MLRT_MLFLOW_CREDENTIALS_DIR"):
        import pytest

        pytest.skip("this deployment runs MLflow without authentication (no MLRT_MLFLOW_CREDENTIALS_DIR)")
    uri = os.environ["MLFLOW_TRACKING_URI"].rstrip("/")
    creds = read_mlflow_creds()
    assert creds.username and creds.password, "MLflow: ~/.mlflow/credentials holds no account"
    search = f"{uri}/api/2.0/mlflow/experiments/search"
    # A dropped connection is retried, as MLflow's own client does (seen once on Kubernetes under load).
    http = requests.Session()
    retry = Retry(total=5, connect=5, read=5, backoff_factor=1, allowed_methods=None, status_forcelist=[502, 503])
    http.mount("http://", HTTPAdapter(max_retries=retry))
    assert http.post(search, json={"max_results": 1}, timeout=10).status_code == 401
    signed = http.post(search, json={"max_results": 1}, auth=(creds.username, creds.password), timeout=10)
    assert signed.status_code == 200, signed.text
