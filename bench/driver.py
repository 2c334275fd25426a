"""Benchmarks that run in a notebook's place: the driver container (compose) or pod (Kubernetes).

  python driver.py overhead [--repeats N] [--warmup N] [--only NAME ...]
  python driver.py calibrate [--steps N] [--repeats N]
  python driver.py scaling --steps N [--repeats N]
  python driver.py session [--executors N] [--conf key=value ...]
  python driver.py imports [--repeats N]
  python driver.py quick

`overhead`: each distributed API against its local counterpart on the same trivial work, in one driver with one
SparkSession already up (what a user iterating in a notebook feels), the two in turn A B A B after a warm-up of
each. `calibrate`: pure-Python loop steps a second on one executor core. `scaling`: a CPU-bound job (16 tasks
of N loop steps in all), timed on the executors this session has. `session`: a new driver's SparkSession until its
executors are registered, then its first catalog call (`SHOW TABLES`: the shared catalog's client starts there).
`imports`: the runtime's cut to the launchers' start on executors, before and after
(Spark's Python archives without and with bytecode). `quick` (`make bench --quick`, what `make test` checks): a
new session as `session` measures it, then in that one application one small run of `overhead`'s spark-job and
joblibspark pairs, `imports`, `calibrate` and `scaling` (one Spark application instead of five; its figures mean
nothing).
Prints one JSON document on the last line of its output; a case that fails is reported with its error, the
others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import urllib.request
from collections.abc import Callable

WORLD = 2  # ranks, workers or parallel trials of every distributed case: one per compose worker


# ---- the work: trivial, the same on both sides of a pair ----------------------------------------------------------
def torch_all_reduce():
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    value = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(value)
    dist.destroy_process_group()
    return value.item()


def horovod_all_reduce():
    import horovod.torch as hvd
    import torch

    hvd.init()
    return hvd.allreduce(torch.tensor([float(hvd.rank() + 1)]), op=hvd.Sum).item()


def tf_reduce():
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None))


def square(x: float) -> float:
    return x * x


def objective(params: dict) -> float:
    return (params["x"] - 1.0) ** 2


def xgb_data():
    import numpy as np
    import pandas as pd

    rng = np.random.RandomState(0)
    frame = pd.DataFrame(rng.randn(2000, 4), columns=list("abcd"))
    frame["label"] = (frame.sum(axis=1) > 0).astype(int)
    return frame


# ---- the pairs: (local, distributed), each a callable of the session ----------------------------------------------
def torch_pair(spark):
    from pyspark.ml.torch.distributor import TorchDistributor

    def run(local: bool) -> Callable[[], object]:
        return lambda: TorchDistributor(num_processes=WORLD, local_mode=local, use_gpu=False).run(torch_all_reduce)

    return run(True), run(False)


def horovod_pair(spark):
    import horovod
    import horovod.spark

    return (
        lambda: horovod.run(horovod_all_reduce, np=WORLD, hosts=f"localhost:{WORLD}", use_gloo=True, verbose=0),
        lambda: horovod.spark.run(horovod_all_reduce, num_proc=WORLD, verbose=0),
    )


def xgboost_pair(spark):
    import xgboost
    from xgboost.spark import SparkXGBClassifier

    frame = xgb_data()
    features = list("abcd")
    data = spark.createDataFrame(frame).cache()
    data.count()
    spark_model = SparkXGBClassifier(features_col=features, label_col="label", num_workers=WORLD, n_estimators=10)
    return (
        lambda: xgboost.XGBClassifier(n_estimators=10, n_jobs=WORLD).fit(frame[features], frame["label"]),
        lambda: spark_model.fit(data),
    )


def joblib_pair(spark):
    from joblib import Parallel, delayed, parallel_backend
    from joblibspark import register_spark

    register_spark()

    def run(backend: str | None) -> Callable[[], object]:
        def call():
            if backend is None:
                return Parallel(n_jobs=WORLD)(delayed(square)(i) for i in range(8))
            with parallel_backend(backend, n_jobs=WORLD):
                return Parallel()(delayed(square)(i) for i in range(8))

        return call

    return run(None), run("spark")


def hyperopt_pair(spark):
    from hyperopt import SparkTrials, Trials, fmin, hp, tpe

    space = {"x": hp.uniform("x", -2, 2)}

    def run(trials: Callable[[], object]) -> Callable[[], object]:
        return lambda: fmin(objective, space, algo=tpe.suggest, max_evals=4, trials=trials(), show_progressbar=False)

    return run(Trials), run(lambda: SparkTrials(parallelism=WORLD))


def tensorflow_pair(spark):
    from spark_tensorflow_distributor import MirroredStrategyRunner

    # Local mode without a GPU runs one slot (more is refused, and spark-tensorflow-distributor 1.0.0 then hides
    # its own ValueError behind KeyError: 'CUDA_VISIBLE_DEVICES'); the cluster side runs WORLD.
    def run(local: bool) -> Callable[[], object]:
        slots = 1 if local else WORLD
        return lambda: MirroredStrategyRunner(num_slots=slots, use_gpu=False, local_mode=local).run(tf_reduce)

    return run(True), run(False)


def deepspeed_pair(spark):
    from pyspark.ml.deepspeed.deepspeed_distributor import DeepspeedTorchDistributor

    def run(local: bool) -> Callable[[], object]:
        nnodes = 1 if local else WORLD
        return lambda: DeepspeedTorchDistributor(numGpus=1, nnodes=nnodes, localMode=local, useGpu=False).run(
            torch_all_reduce
        )

    return run(True), run(False)


def spark_job_pair(spark):
    sc = spark.sparkContext
    return (lambda: sum(square(i) for i in range(8)), lambda: sc.parallelize(range(8), 8).map(square).sum())


# name -> (what is compared, the pair's builder)
PAIRS: dict[str, tuple[str, Callable]] = {
    "spark-job": ("8 tasks vs a local loop", spark_job_pair),
    "joblibspark": ("joblib spark backend vs loky", joblib_pair),
    "sparktrials": ("SparkTrials vs Trials, 4 evals", hyperopt_pair),
    "xgboost.spark": ("SparkXGBClassifier vs XGBClassifier, 10 trees, 2,000 rows", xgboost_pair),
    "torchdistributor": ("TorchDistributor local_mode False vs True, all_reduce", torch_pair),
    "deepspeed": ("DeepspeedTorchDistributor 2 nodes vs local, all_reduce", deepspeed_pair),
    "horovod.spark": ("horovod.spark.run vs horovod.run on the driver, allreduce", horovod_pair),
    "mirroredstrategy": ("MirroredStrategyRunner 2 slots vs local_mode (1 slot on CPU), reduce", tensorflow_pair),
}


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def session(conf: list[str] = ()):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("mlrt-bench").config("spark.ui.showConsoleProgress", "false")
    for item in conf:
        key, _, value = item.partition("=")
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def shared_or_new(args: argparse.Namespace, conf: list[str] = ()):
    """The session `quick` passes in (args.spark), else a new one; and whether the caller stops it."""
    spark = getattr(args, "spark", None)
    return (spark, False) if spark is not None else (session(conf), True)


def overhead(args: argparse.Namespace) -> dict:
    spark, own = shared_or_new(args)
    results = {}
    for name, (what, build) in PAIRS.items():
        if args.only and name not in args.only:
            continue
        row: dict = {"what": what, "local": [], "cluster": []}
        try:
            local, cluster = build(spark)
            for _ in range(args.warmup):
                local(), cluster()
            for _ in range(args.repeats):
                row["local"].append(timed(local))
                row["cluster"].append(timed(cluster))
        except Exception as error:  # noqa: BLE001 - one case's failure is reported, the others still run
            row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            traceback.print_exc()
        print(f"{name}: {row}", file=sys.stderr, flush=True)
        results[name] = row
    if own:
        spark.stop()
    return results


def burn(steps: int) -> int:
    total = 0
    for i in range(steps):
        total += i % 7
    return total


def executor_cores(sc) -> dict[str, int]:
    """Executor host -> cores, from the driver's own REST API."""
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/executors"
    with urllib.request.urlopen(url, timeout=30) as response:
        rows = json.load(response)
    return {row["hostPort"].rsplit(":", 1)[0]: row["totalCores"] for row in rows if row["id"] != "driver"}


def calibrate(args: argparse.Namespace) -> dict:
    """Loop steps a second on one executor core: a one-task job times `burn` inside the task (so scheduling and
    worker start are not counted), repeated; the session gets one core, so nothing else runs beside it."""
    spark, own = shared_or_new(args, ["spark.cores.max=1", *args.conf])
    sc = spark.sparkContext
    steps = int(args.steps)

    def timed(_):
        started = time.perf_counter()
        burn(steps)
        yield steps / (time.perf_counter() - started)

    rates = [sc.parallelize([0], 1).mapPartitions(timed).collect()[0] for _ in range(args.repeats)]
    if own:
        spark.stop()
    return {"rates": rates, "steps_per_second": sorted(rates)[len(rates) // 2]}


def scaling(args: argparse.Namespace) -> dict:
    """The same work in every setup: --steps loop steps (sized by `calibrate`) split into 16 tasks."""
    spark, own = shared_or_new(args, args.conf)
    sc = spark.sparkContext
    tasks = 16
    steps = round(args.steps / tasks)
    seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        sc.parallelize(range(tasks), tasks).map(lambda _: burn(steps)).sum()
        seconds.append(time.perf_counter() - started)
    executors = executor_cores(sc)
    if own:
        spark.stop()
    return {"seconds": seconds, "steps_per_task": steps, "tasks": tasks, "executors": executors}


def executor_imports(repeats: int):
    """On an executor: `import pyspark.ml` in a new Python process (what torchrun's ranks, Horovod's and DeepSpeed's
    processes do) from Spark's archives as the image has them (with bytecode) and as Spark ships them (sources
    only: a copy without the .pyc entries), in turn A B A B."""
    import glob
    import subprocess
    import tempfile
    import zipfile

    def timed_import(pythonpath: str) -> float:
        env = {**os.environ, "PYTHONPATH": pythonpath}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-B", "-c", "import pyspark.ml"], env=env, check=True)
        return time.perf_counter() - started

    def run(_):
        archives = sorted(glob.glob(os.path.join(os.environ["SPARK_HOME"], "python", "lib", "*.zip")))
        with tempfile.TemporaryDirectory() as scratch:
            stock = []
            for archive in archives:
                copy = os.path.join(scratch, os.path.basename(archive))
                with zipfile.ZipFile(archive) as old, zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as new:
                    for info in old.infolist():
                        if not info.filename.endswith(".pyc"):
                            new.writestr(info, old.read(info))
                stock.append(copy)
            image, shipped = [], []
            for _ in range(repeats):
                image.append(timed_import(":".join(archives)))
                shipped.append(timed_import(":".join(stock)))
        return [{"image": image, "shipped": shipped}]

    return run


def imports(args: argparse.Namespace) -> dict:
    spark, own = shared_or_new(args)
    rows = spark.sparkContext.parallelize(range(WORLD), WORLD).barrier().mapPartitions(executor_imports(args.repeats))
    per_executor = rows.collect()
    if own:
        spark.stop()
    return {key: [x for row in per_executor for x in row[key]] for key in ("image", "shipped")}


def session_start(args: argparse.Namespace) -> dict:
    """A fresh driver (this process) from SparkSession.builder.getOrCreate() until its executors are registered."""
    started = time.perf_counter()
    spark = session(getattr(args, "conf", []))
    created = time.perf_counter() - started
    sc = spark.sparkContext
    while len(executors := executor_cores(sc)) < args.executors:
        if time.perf_counter() - started > 300:
            raise SystemExit(f"{args.executors} executors were not registered after 300 s: {executors}")
        time.sleep(0.1)
    registered = time.perf_counter() - started
    asked = time.perf_counter()
    spark.sql("SHOW TABLES").collect()
    catalog = time.perf_counter() - asked
    implementation = spark.conf.get("spark.sql.catalogImplementation", "in-memory")
    if getattr(args, "keep", False):
        args.spark = spark
    else:
        spark.stop()
    return {
        "getOrCreate": created,
        "executors": registered,
        "count": len(executors),
        "catalog": catalog,
        "implementation": implementation,
    }


def first_job(args: argparse.Namespace) -> dict:
    """A fresh driver (this process) until its first small job is done: getOrCreate(), then an 8-task job, as a
    notebook's first two cells. With --conf spark.master=local[2]: the same in this container, no cluster."""
    started = time.perf_counter()
    spark = session(getattr(args, "conf", []))
    created = time.perf_counter() - started
    total = spark.sparkContext.parallelize(range(8), 8).map(lambda x: x * x).sum()
    ready = time.perf_counter() - started
    master = spark.sparkContext.master
    spark.stop()
    assert total == 140, total
    return {"getOrCreate": created, "ready": ready, "master": master}


QUICK_CORE_SECONDS = 4


def quick(args: argparse.Namespace) -> dict:
    """`make bench --quick`'s driver cases in one Spark application: the session start first (as `session`), then
    one small run of each of the others in that session."""
    shared = argparse.Namespace(executors=args.executors, keep=True)
    result = {"session": session_start(shared)}
    spark = shared.spark
    result["overhead"] = overhead(
        argparse.Namespace(spark=spark, repeats=1, warmup=0, only=["spark-job", "joblibspark"])
    )
    result["imports"] = imports(argparse.Namespace(spark=spark, repeats=1))
    result["calibration"] = calibrate(argparse.Namespace(spark=spark, steps=2e7, repeats=1, conf=[]))
    steps = round(QUICK_CORE_SECONDS * result["calibration"]["steps_per_second"])
    result["scaling"] = scaling(argparse.Namespace(spark=spark, steps=steps, repeats=1, conf=[]))
    spark.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--repeats", type=int, default=3)
    o.add_argument("--warmup", type=int, default=1)
    o.add_argument("--only", nargs="*", choices=sorted(PAIRS), default=[])
    conf = {"action": "append", "default": [], "help": "a Spark property of the session, key=value"}
    c = sub.add_parser("calibrate")
    c.add_argument("--steps", type=float, default=2e7)
    c.add_argument("--repeats", type=int, default=5)
    c.add_argument("--conf", **conf)
    s = sub.add_parser("scaling")
    s.add_argument("--steps", type=float, required=True)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--conf", **conf)
    e = sub.add_parser("session")
    e.add_argument("--executors", type=int, default=2)
    e.add_argument("--conf", **conf)
    f = sub.add_parser("first-job")
    f.add_argument("--conf", **conf)
    i = sub.add_parser("imports")
    i.add_argument("--repeats", type=int, default=3)
    q = sub.add_parser("quick")
    q.add_argument("--executors", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    commands = {
        "overhead": overhead,
        "calibrate": calibrate,
        "scaling": scaling,
        "session": session_start,
        "first-job": first_job,
        "imports": imports,
        "quick": quick,
    }
    result = commands[args.command](args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
