"""Spark-native ML on the cluster: a pyspark.ml pipeline and the pandas API on Spark."""

from __future__ import annotations

import pytest

from conftest import ran_on_executors


@pytest.mark.example("01-pyspark-ml")
def test_pyspark_ml_pipeline(spark):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.sql import functions as F

    df = (
        spark.range(0, 4000, numPartitions=8)
        .withColumn("a", F.rand(seed=1) * 10)
        .withColumn("b", F.rand(seed=2) * 10)
        .withColumn("label", (F.col("a") + F.col("b") > 10).cast("double"))
    )
    pipeline = Pipeline(
        stages=[
            VectorAssembler(inputCols=["a", "b"], outputCol="raw"),
            StandardScaler(inputCol="raw", outputCol="features"),
            LogisticRegression(maxIter=50),
        ]
    )
    with ran_on_executors(spark, "pyspark.ml"):
        model = pipeline.fit(df)
        auc = BinaryClassificationEvaluator().evaluate(model.transform(df))
    assert auc > 0.98, f"pyspark.ml: AUC {auc:.3f} on a linearly separable problem"


@pytest.mark.example("02-pandas-on-spark")
def test_pandas_api_on_spark(spark):
    import pyspark.pandas as ps

    with ran_on_executors(spark, "pandas API on Spark"):
        psdf = ps.DataFrame({"k": [i % 7 for i in range(7000)], "v": list(range(7000))}).spark.repartition(8)
        sums = psdf.groupby("k")["v"].sum().sort_index().to_pandas()
    expected = [sum(v for v in range(7000) if v % 7 == k) for k in range(7)]
    assert sums.tolist() == expected
