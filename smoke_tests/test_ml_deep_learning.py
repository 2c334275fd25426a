"""Deep learning across executors: TorchDistributor (DDP over gloo), TF MultiWorkerMirroredStrategy through
spark-tensorflow-distributor, Horovod (TF and torch bindings) through horovod.spark.run and HorovodRunner."""

from __future__ import annotations

import pytest

from conftest import DRIVER_HOST


def torch_ddp_main():
    import socket

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    value = torch.tensor([float(rank + 1)])
    dist.all_reduce(value)
    hosts = [None] * world
    dist.all_gather_object(hosts, socket.gethostname())
    torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
    model = DistributedDataParallel(torch.nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(32, 4) + rank
    loss = ((model(x) - 1.0) ** 2).mean()
    loss.backward()
    optimizer.step()
    weights = [None] * world
    dist.all_gather_object(weights, model.module.weight.detach().tolist())
    dist.destroy_process_group()
    return {"world": world, "sum": value.item(), "hosts": hosts, "weights_equal": all(w == weights[0] for w in weights)}


@pytest.mark.example("06-torch-distributor")
def test_torch_distributor_ddp(spark):
    from pyspark.ml.torch.distributor import TorchDistributor

    result = TorchDistributor(num_processes=2, local_mode=False, use_gpu=False).run(torch_ddp_main)
    assert result["world"] == 2, f"TorchDistributor: world size {result['world']}"
    assert result["sum"] == 3.0, f"TorchDistributor: all_reduce gave {result['sum']}, want 1+2"
    assert len(set(result["hosts"])) == 2 and DRIVER_HOST not in result["hosts"], result["hosts"]
    assert result["weights_equal"], "TorchDistributor: DDP replicas diverged after a step"


def tf_mwms_main():
    import json
    import os

    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]["worker"]
    model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.RandomState(0).randn(256, 4).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    reduced = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)
    return {
        "replicas": strategy.num_replicas_in_sync,
        "reduced": float(reduced),
        "workers": cluster,
        "loss": history.history["loss"],
    }


@pytest.mark.example("07-tensorflow-mirrored-strategy")
def test_tensorflow_multi_worker_mirrored_strategy(spark):
    from spark_tensorflow_distributor import MirroredStrategyRunner

    result = MirroredStrategyRunner(num_slots=2, use_gpu=False, local_mode=False).run(tf_mwms_main)
    assert result["replicas"] == 2, f"MirroredStrategyRunner: {result['replicas']} replicas in sync"
    assert result["reduced"] == 2.0, f"MirroredStrategyRunner: cross-worker reduce gave {result['reduced']}"
    hosts = {address.rsplit(":", 1)[0] for address in result["workers"]}
    assert len(hosts) == 2, f"MirroredStrategyRunner: workers {result['workers']}"
    assert result["loss"][-1] < result["loss"][0], f"MirroredStrategyRunner: loss did not fall {result['loss']}"


def horovod_tf_main():
    import socket

    import horovod.tensorflow.keras as hvd
    import numpy as np
    import tensorflow as tf

    hvd.init()
    total = hvd.allreduce(tf.constant(float(hvd.rank() + 1)), op=hvd.Sum)
    tf.random.set_seed(hvd.rank())  # different initial weights: the broadcast callback must align them
    model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=hvd.DistributedOptimizer(tf.keras.optimizers.SGD(0.05)), loss="mse")
    rng = np.random.RandomState(hvd.rank())  # different data per rank: only averaged gradients keep weights equal
    x = rng.randn(64, 4).astype("float32")
    model.fit(
        x,
        x.sum(axis=1, keepdims=True) * (hvd.rank() + 1),
        epochs=2,
        batch_size=16,
        verbose=0,
        callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)],
    )
    weights = np.concatenate([w.ravel() for w in model.get_weights()])
    # Equal weights on every rank <=> each rank's weights equal their average across ranks.
    spread = float(np.abs(hvd.allreduce(tf.constant(weights), op=hvd.Average).numpy() - weights).max())
    return {
        "rank": hvd.rank(),
        "size": hvd.size(),
        "sum": float(total),
        "host": socket.gethostname(),
        "weight_gap": spread,
        "keras": tf.keras.__name__,
    }


def horovod_torch_main():
    import socket

    import horovod.torch as hvd
    import torch

    hvd.init()
    total = hvd.allreduce(torch.tensor([float(hvd.rank() + 1)]), op=hvd.Sum)
    return {"rank": hvd.rank(), "size": hvd.size(), "sum": total.item(), "host": socket.gethostname()}


def check_horovod(results, binding):
    assert len(results) == 2 and {r["size"] for r in results} == {2}, f"horovod {binding}: {results}"
    assert {r["sum"] for r in results} == {3.0}, f"horovod {binding}: allreduce gave {results}"
    hosts = {r["host"] for r in results}
    assert len(hosts) == 2 and DRIVER_HOST not in hosts, f"horovod {binding}: ran on {hosts}"


@pytest.mark.example("08-horovod")
def test_horovod_spark_run_tensorflow(spark):
    import horovod.spark

    results = horovod.spark.run(horovod_tf_main, num_proc=2, env={"TF_USE_LEGACY_KERAS": "1"}, verbose=0)
    check_horovod(results, "tensorflow")
    assert all(r["weight_gap"] < 1e-6 for r in results), f"horovod keras: replicas diverged {results}"


@pytest.mark.example("08-horovod")
def test_horovod_spark_run_torch(spark):
    import horovod.spark

    check_horovod(horovod.spark.run(horovod_torch_main, num_proc=2, verbose=0), "torch")


@pytest.mark.example("08-horovod")
def test_horovod_runner_api(spark):
    from sparkdl import HorovodRunner

    result = HorovodRunner(np=2).run(horovod_tf_main)
    assert result["rank"] == 0 and result["size"] == 2 and result["sum"] == 3.0, f"HorovodRunner: {result}"
    assert result["weight_gap"] < 1e-6 and result["keras"].startswith("tf_keras"), f"HorovodRunner: {result}"
