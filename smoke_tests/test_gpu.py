"""GPU executors: Spark hands each task its GPU, and torch, XGBoost, TorchDistributor (NCCL) and TensorFlow use it
on the executors. Runs where the cluster has GPU executors (`make up GPU=1` on a host with NVIDIA GPUs, the
chart's `spark.executor.gpus`, or any session with spark.executor.resource.gpu.amount set); everywhere else every
test reports skipped with the reason, never passed. docs/gpu.md says what the image carries for each framework."""

from __future__ import annotations

import pytest

from conftest import registered_executors

NO_GPU = (
    "no GPU executors on this cluster: spark.executor.resource.gpu.amount is not set (GPU workers: `make up GPU=1` "
    "on a host with NVIDIA GPUs and the NVIDIA Container Toolkit; Kubernetes: the chart's spark.executor.gpus)"
)


@pytest.fixture(scope="module")
def gpus(spark) -> dict:
    """The GPUs Spark manages for this session: per task, and the executors' count (skipped without GPUs)."""
    conf = spark.sparkContext.getConf()
    if float(conf.get("spark.executor.resource.gpu.amount", "0")) <= 0:
        pytest.skip(NO_GPU)
    return {
        "per_task": float(conf.get("spark.task.resource.gpu.amount", "1")),
        "executors": len(registered_executors(spark)),
    }


def on_each_gpu_task(spark, tasks: int, fn):
    """Run fn(the task's GPU addresses) in `tasks` barrier tasks (all at once, each holding its own GPUs); their
    results."""

    def run(_):
        from pyspark import BarrierTaskContext

        context = BarrierTaskContext.get()
        addresses = context.resources()["gpu"].addresses
        yield fn(addresses)

    return spark.sparkContext.parallelize(range(tasks), tasks).barrier().mapPartitions(run).collect()


def test_tasks_receive_their_gpu_addresses_from_spark(spark, gpus):
    def report(addresses):
        import socket

        return socket.gethostname(), list(addresses)

    rows = on_each_gpu_task(spark, gpus["executors"], report)
    assert len(rows) == gpus["executors"]
    per_host: dict[str, list[str]] = {}
    for host, addresses in rows:
        assert len(addresses) == max(1, int(gpus["per_task"])), (host, addresses)
        assert all(a.isdigit() for a in addresses), (host, addresses)
        per_host.setdefault(host, []).extend(addresses)
    # Tasks that run at once on one executor never share a GPU address.
    assert all(len(a) == len(set(a)) for a in per_host.values()), per_host


def test_torch_multiplies_matrices_on_the_tasks_gpu(spark, gpus):
    def matmul(addresses):
        import torch

        device = torch.device(f"cuda:{addresses[0]}")
        a = torch.arange(64 * 64, dtype=torch.float32).reshape(64, 64) / 4096
        on_gpu = (a.to(device) @ a.to(device)).cpu()
        return torch.version.cuda, torch.cuda.get_device_name(device), bool(torch.allclose(on_gpu, a @ a, rtol=1e-4))

    for cuda, name, same in on_each_gpu_task(spark, gpus["executors"], matmul):
        assert cuda and name and same, (cuda, name, same)


def test_xgboost_trains_on_cuda_across_executors(spark, gpus):
    from pyspark.ml.linalg import Vectors
    from xgboost.spark import SparkXGBClassifier

    rows = [(Vectors.dense([float(i % 7), float(i % 3)]), float(i % 7 > 3)) for i in range(2000)]
    df = spark.createDataFrame(rows, ["features", "label"]).repartition(gpus["executors"])
    model = SparkXGBClassifier(device="cuda", num_workers=gpus["executors"], n_estimators=10).fit(df)
    config = model.get_booster().save_config()
    assert '"device":"cuda' in config.replace(" ", ""), config[:500]
    accuracy = model.transform(df).where("prediction = label").count() / df.count()
    assert accuracy > 0.95, accuracy


def test_torch_distributor_all_reduces_over_nccl_on_the_executors_gpus(spark, gpus):
    if gpus["executors"] < 2:
        pytest.skip(f"NCCL needs a GPU per rank on two executors; this cluster has {gpus['executors']}")

    def uuid(addresses):
        import torch

        return str(torch.cuda.get_device_properties(int(addresses[0])).uuid)

    devices = set(on_each_gpu_task(spark, 2, uuid))
    if len(devices) < 2:
        pytest.skip(f"the two executors share one GPU ({devices}); NCCL needs a GPU of its own per rank")
    from pyspark.ml.torch.distributor import TorchDistributor

    def all_reduce():
        import os

        import torch
        import torch.distributed as dist

        dist.init_process_group("nccl")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        value = torch.tensor([float(dist.get_rank() + 1)], device="cuda")
        dist.all_reduce(value)
        backend = dist.get_backend()
        dist.destroy_process_group()
        return backend, value.item()

    backend, total = TorchDistributor(num_processes=2, local_mode=False, use_gpu=True).run(all_reduce)
    assert backend == "nccl" and total == 3.0, (backend, total)


def test_tensorflow_sees_the_gpu_and_steps_on_it(spark, gpus):
    def tf_step(addresses):
        from importlib import metadata

        try:
            metadata.version("nvidia-cuda-runtime-cu12")  # what TENSORFLOW_CUDA=yes locks
        except metadata.PackageNotFoundError:
            return None, None
        import tensorflow as tf

        devices = tf.config.list_physical_devices("GPU")
        if not devices:
            return [], None
        with tf.device(f"/GPU:{addresses[0]}"):
            w = tf.Variable(1.0)
            with tf.GradientTape() as tape:
                loss = (w * 3.0 - 1.0) ** 2
            w.assign_sub(0.1 * tape.gradient(loss, w))
            placed = w.device
        return [d.name for d in devices], placed

    devices, placed = on_each_gpu_task(spark, 1, tf_step)[0]
    if devices is None:
        pytest.skip(
            "the ml image's TensorFlow has no CUDA 12 libraries (its [and-cuda] extra would replace torch's CUDA 13 "
            "cuDNN and NCCL files), so it runs on CPU; for TensorFlow on GPUs set TENSORFLOW_CUDA=yes in "
            "versions.env and lock torch from a CUDA 12 build (docs/gpu.md)"
        )
    assert devices and "GPU" in placed, (devices, placed)
