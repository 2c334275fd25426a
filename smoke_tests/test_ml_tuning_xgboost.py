"""scikit-learn through joblibspark, hyperopt SparkTrials and xgboost.spark, each distributed on executors."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DRIVER_HOST, ran_on_executors


@pytest.mark.example("03-scikit-learn-joblibspark")
def test_sklearn_through_joblibspark(spark):
    from joblib import parallel_backend
    from joblibspark import register_spark
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score

    register_spark()
    x, y = make_classification(n_samples=600, n_features=8, random_state=0)
    with ran_on_executors(spark, "scikit-learn/joblibspark"), parallel_backend("spark", n_jobs=4):
        scores = cross_val_score(RandomForestClassifier(n_estimators=20, random_state=0), x, y, cv=4)
    assert len(scores) == 4 and scores.mean() > 0.8, f"scikit-learn/joblibspark: scores {scores}"


@pytest.mark.example("04-hyperopt-sparktrials")
def test_hyperopt_spark_trials(spark):
    from hyperopt import STATUS_OK, SparkTrials, fmin, hp, tpe

    def objective(x):
        import socket

        return {"loss": (x - 3.0) ** 2, "status": STATUS_OK, "host": socket.gethostname()}

    trials = SparkTrials(parallelism=2, spark_session=spark)
    with ran_on_executors(spark, "hyperopt SparkTrials", at_least=1):
        best = fmin(
            objective,
            hp.uniform("x", -10, 10),
            algo=tpe.suggest,
            max_evals=12,
            trials=trials,
            show_progressbar=False,
            rstate=np.random.default_rng(7),
        )
    hosts = {result["host"] for result in trials.results}
    assert len(trials.results) == 12
    assert DRIVER_HOST not in hosts, "hyperopt SparkTrials: trials ran on the driver"
    # 12 evaluations are all in TPE's random start-up phase: the check is that fmin returns the best of the
    # losses the executors computed, not how close 12 random draws come to the optimum.
    losses = {round(result["loss"], 9) for result in trials.results}
    assert round((best["x"] - 3.0) ** 2, 9) == min(losses), f"hyperopt SparkTrials: best {best} not the minimum"


@pytest.mark.example("05-xgboost-spark")
def test_xgboost_spark_two_workers(spark):
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.sql import functions as F
    from xgboost.spark import SparkXGBClassifier

    df = (
        spark.range(0, 4000, numPartitions=4)
        .withColumn("a", F.rand(seed=3))
        .withColumn("b", F.rand(seed=4))
        .withColumn("label", (F.col("a") > F.col("b")).cast("int"))
    )
    classifier = SparkXGBClassifier(features_col=["a", "b"], label_col="label", num_workers=2, n_estimators=30)
    with ran_on_executors(spark, "xgboost.spark (num_workers=2)") as evidence:
        model = classifier.fit(df)
    auc = BinaryClassificationEvaluator(rawPredictionCol="rawPrediction").evaluate(model.transform(df))
    assert auc > 0.95, f"xgboost.spark: AUC {auc:.3f}"
    assert DRIVER_HOST not in evidence.hosts
